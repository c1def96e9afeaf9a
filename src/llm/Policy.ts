/**
 * The rules every provider request runs under: a timeout per attempt, retries with backoff and jitter
 * (retry-after honoured), the run's and the day's budgets, and the two ways a run stops early: a failure the
 * user must fix (a wrong key, an unknown model) and the circuit breaker for a failing provider.
 */
import { committedSince } from "../store/Spend.js"
import type { SqlClient } from "@effect/sql"
import { rememberedSpend } from "../store/Identity.js"
import { Clock, Duration, Effect, Ref } from "effect"
import { type AppConfig, SETTINGS } from "../config/Table.js"
import { isConfigFailure, isProviderFailure, LlmError } from "../Domain/Llm.js"
import { MODEL_SETTINGS } from "./Models.js"

/** Why the run's LLM stages were stopped; every later call fails at once with it, nothing is sent. */
export interface Halt {
  readonly kind: "config" | "provider"
  readonly detail: string
}

const KEY_VARIABLE: Record<string, string> = {
  anthropic: "ANTHROPIC_API_KEY",
  openrouter: "OPENROUTER_API_KEY",
  "openai-compatible": "OPENROUTER_API_KEY"
}

/** Structured answers asked of one model in this run, and how many could not be used. */
export interface ParseStats {
  readonly structured: number
  readonly unparsed: number
}

/** The variables a person changes to replace this model: every model setting that holds it. */
export const modelVariables = (config: AppConfig, model: string): string => {
  const names = MODEL_SETTINGS.filter((key) => config[key] === model).map((key) => SETTINGS[key].env[0]!)
  return names.length === 0 ? "the model settings" : names.join(" / ")
}

/** The one line for a failure the user must fix, naming the variable to change. */
export const configFailureLine = (config: AppConfig, provider: string, model: string, error: LlmError): string => {
  const status = error.status === undefined ? "" : `HTTP ${error.status}, `
  const detail = error.detail.replace(/\s+/g, " ").slice(0, 160)
  switch (error.reason) {
    case "Auth":
      return `${provider} rejected the API key (${status}${detail}); check ${KEY_VARIABLE[provider] ?? "the API key"}`
    case "NotFound":
      return `${provider} does not know the model ${JSON.stringify(model)} (${status}${detail}); check ${modelVariables(config, model)}`
    default:
      return `${provider} refused a request for model ${JSON.stringify(model)} (${status}${detail}); check ${modelVariables(config, model)} and the settings used with it`
  }
}

export const providerFailureLine = (provider: string, count: number, error: LlmError) =>
  `${provider} is failing: ${count} attempts in a row failed, the last with ${error.status === undefined ? error.reason : `HTTP ${error.status}`}: ` +
  `${JSON.stringify(error.detail.replace(/\s+/g, " ").slice(0, 120))}; this run's LLM stages stopped (nothing was scored 0, nothing shipped), the next run tries again`

/** One run's rules for calling a provider: the budget, the halt and its breaker, back-off and timeouts. */
export interface Policy {
  /** Dollars this run spent. */
  readonly spent: Ref.Ref<number>
  /** Why calls stopped for the rest of the run, if they did. */
  readonly halt: Ref.Ref<Halt | undefined>
  /** `proven`: a call has succeeded in this run. `failuresInARow`: provider failures since the last success. */
  readonly state: { proven: boolean; failuresInARow: number }
  /** What earlier runs spent in the last 24 hours (read once, at the first call). */
  readonly spentBefore: Effect.Effect<number>
  readonly budgetLeft: Effect.Effect<void, LlmError>
  readonly notHalted: Effect.Effect<void, LlmError>
  readonly stop: (next: Halt) => Effect.Effect<void>
  readonly observe: (model: string, error: LlmError) => Effect.Effect<void>
  readonly backoff: (attempt: number, error: LlmError) => Duration.Duration
  readonly timed: <A>(effect: Effect.Effect<A, LlmError>) => Effect.Effect<A, LlmError>
  readonly policed: <A>(model: string, effect: Effect.Effect<A, LlmError>) => Effect.Effect<A, LlmError>
}

export const makePolicy = ({
  sql,
  config,
  providerName
}: {
  readonly sql: SqlClient.SqlClient
  readonly config: AppConfig
  readonly providerName: string
}): Effect.Effect<Policy> =>
  Effect.gen(function* () {
    const spent = yield* Ref.make(0)
    const halt = yield* Ref.make<Halt | undefined>(undefined)
    /** `proven`: a call has succeeded in this run. `failuresInARow`: provider failures since the last success. */
    const state = { proven: false, failuresInARow: 0 }

    // What earlier runs spent in the last 24 hours counts against the daily budget; read once per run, at
    // its first call (a daemon builds a new runner every cycle; commands that make no call never read it).
    // A pending batch holds the most it can cost until its answers are collected and their real cost recorded.
    // The home's record of what this installation spent (store/Identity.ts) counts too: a store swapped or started
    // afresh cannot make the day's spend start again from zero.
    const spentBefore = yield* Effect.cached(
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        committedSince(sql, now - 86_400_000).pipe(
          Effect.map((usd) => Math.max(usd, rememberedSpend(config.home, now)))
        )
      ).pipe(
        Effect.catchAll((e) => Effect.as(Effect.logWarning(`could not read the last 24 hours' spend: ${e.detail}`), 0))
      )
    )

    // Stages ask in priority order (eval: canary turns first, then the rest newest first; optimize after
    // eval), so a budget that runs out leaves the least needed calls unmade.
    const budgetLeft = Effect.flatMap(Effect.zip(Ref.get(spent), spentBefore), ([usd, before]) =>
      config.maxCostUsd > 0 && usd >= config.maxCostUsd
        ? Effect.fail(
            new LlmError({
              reason: "BudgetExhausted",
              detail: `spent $${usd.toFixed(4)} of AUTOTUNE_MAX_COST_USD=$${config.maxCostUsd}`
            })
          )
        : config.dailyBudgetUsd > 0 && before + usd >= config.dailyBudgetUsd
          ? Effect.fail(
              new LlmError({
                reason: "BudgetExhausted",
                detail: `spent $${(before + usd).toFixed(4)} in the last 24 hours of AUTOTUNE_DAILY_BUDGET_USD=$${config.dailyBudgetUsd}`
              })
            )
          : Effect.void
    )

    const notHalted = Effect.flatMap(Ref.get(halt), (h) =>
      h === undefined ? Effect.void : Effect.fail(new LlmError({ reason: "Halted", detail: h.detail }))
    )

    const stop = (next: Halt) =>
      Ref.modify(halt, (current) => (current === undefined ? [true, next] : [false, current])).pipe(
        Effect.flatMap((first) => (first ? Effect.logDebug(`LLM stages stopped: ${next.detail}`) : Effect.void))
      )

    /** Classifies a failed attempt: it may stop the run (config) or trip the breaker (provider). */
    const observe = (model: string, error: LlmError) => {
      if (isConfigFailure(error))
        return stop({ kind: "config", detail: configFailureLine(config, providerName, model, error) })
      if (!isProviderFailure(error)) return Effect.void
      state.failuresInARow++
      return state.failuresInARow >= config.llmBreakerThreshold
        ? stop({ kind: "provider", detail: providerFailureLine(providerName, state.failuresInARow, error) })
        : Effect.void
    }

    const backoff = (attempt: number, error: LlmError) => {
      const exponential = Math.min(config.llmMaxRetryDelayMs, config.llmMinRetryDelayMs * 2 ** (attempt - 1))
      const jittered = exponential * (0.8 + Math.random() * 0.4)
      // A provider that names its own delay knows best, up to a minute.
      return Duration.millis(Math.round(Math.min(60_000, Math.max(jittered, error.retryAfterMs ?? 0))))
    }

    /** One attempt at the provider, cut off at AUTOTUNE_OPENROUTER_TIMEOUT_MS. */
    const timed = <A>(effect: Effect.Effect<A, LlmError>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: Duration.millis(config.llmTimeoutMs),
          onTimeout: () => new LlmError({ reason: "Timeout", detail: `no answer within ${config.llmTimeoutMs} ms` })
        })
      )

    /**
     * A provider call outside `call` (a batch's submission, status or answers) under the same policy: the
     * timeout, retries with the same backoff (retry-after honoured), and the stops. A 404 here is a batch the
     * provider no longer keeps, or a provider without the batch interface (a proxy at ANTHROPIC_BASE_URL): the
     * caller falls back; it says nothing about the model. One of these requests stands for every turn of a
     * batch: when its retries run out on a failing provider, that is as conclusive as the breaker's threshold
     * of direct calls, and the run stops the same way, with the same line.
     */
    const policed = <A>(model: string, effect: Effect.Effect<A, LlmError>) =>
      Effect.gen(function* () {
        for (let tries = 1; ; tries++) {
          yield* notHalted
          const result = yield* Effect.either(timed(effect))
          if (result._tag === "Right") {
            state.failuresInARow = 0
            return result.right
          }
          const error = result.left
          if (error.reason !== "NotFound") yield* observe(model, error)
          if (!error.retryable || tries > config.llmRetries) {
            if (isProviderFailure(error))
              yield* stop({ kind: "provider", detail: providerFailureLine(providerName, state.failuresInARow, error) })
            return yield* error
          }
          yield* Effect.sleep(backoff(tries, error))
        }
      })

    return { spent, halt, state, spentBefore, budgetLeft, notHalted, stop, observe, backoff, timed, policed } as const
  })

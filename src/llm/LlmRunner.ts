import { SqlClient } from "@effect/sql"
import { Duration, Effect, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { Settings } from "../Config.js"
import { LlmError, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import { chooseProvider, Llm, type ProviderChoice } from "./Llm.js"

/** USD per million tokens, input and output. Keys are bare model ids (provider prefix dropped). */
export const DEFAULT_PRICES: Readonly<Record<string, readonly [number, number]>> = {
  "claude-haiku-4-5": [1, 5],
  "claude-sonnet-4-5": [3, 15],
  "claude-sonnet-4": [3, 15],
  "claude-opus-4-5": [5, 25],
  "claude-opus-4-1": [15, 75],
  "claude-3-5-haiku": [0.8, 4]
}

const bareModel = (model: string) => model.slice(model.lastIndexOf("/") + 1).replace(/-\d{8}$/, "")

/** AUTOTUNE_PRICES: `model=in:out,model2=in:out`, USD per million tokens; merged over the defaults. */
export const parsePrices = (text: string): Record<string, readonly [number, number]> => {
  const prices: Record<string, readonly [number, number]> = { ...DEFAULT_PRICES }
  for (const entry of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const match = /^([^=]+)=([\d.]+):([\d.]+)$/.exec(entry)
    if (match === null) throw new Error(`AUTOTUNE_PRICES entry ${JSON.stringify(entry)} is not model=in:out`)
    prices[bareModel(match[1]!.trim())] = [Number(match[2]), Number(match[3])]
  }
  return prices
}

export interface StageUsage {
  readonly calls: number
  readonly failed: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

const emptyUsage: StageUsage = { calls: 0, failed: 0, tokensIn: 0, tokensOut: 0, costUsd: 0 }

/**
 * The one place where LLM policy lives, for every stage and provider: a timeout per attempt, retries with
 * exponential backoff and jitter on transient failures (honouring retry-after), a concurrency limit shared
 * by every stage, a cost budget per run, and a record of every call.
 */
export class LlmRunner extends Effect.Service<LlmRunner>()("autotune/LlmRunner", {
  effect: Effect.gen(function* () {
    const llm = yield* Llm
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const prices = parsePrices(config.prices)
    const semaphore = yield* Effect.makeSemaphore(config.llmConcurrency)
    const spent = yield* Ref.make(0)
    const usage = yield* Ref.make<Record<string, StageUsage>>({})
    const warnedModels = new Set<string>()
    const runId = randomUUID()
    const choice: ProviderChoice = llm.provider === "none" ? chooseProvider(config) : { available: true, provider: llm.provider }

    const costOf = (model: string, response: LlmResponse) => {
      if (response.reportedCostUsd !== undefined) return Effect.succeed(response.reportedCostUsd)
      const price = prices[bareModel(model)]
      if (price !== undefined) return Effect.succeed((response.tokensIn * price[0] + response.tokensOut * price[1]) / 1e6)
      if (warnedModels.has(model)) return Effect.succeed(0)
      warnedModels.add(model)
      return Effect.as(
        Effect.logWarning(`no price for model ${model}: its calls count as $0 toward AUTOTUNE_MAX_COST_USD; add it to AUTOTUNE_PRICES`),
        0
      )
    }

    const budgetLeft = Effect.flatMap(Ref.get(spent), (usd) =>
      config.maxCostUsd > 0 && usd >= config.maxCostUsd
        ? Effect.fail(new LlmError({ reason: "BudgetExhausted", detail: `spent $${usd.toFixed(4)} of AUTOTUNE_MAX_COST_USD=$${config.maxCostUsd}` }))
        : Effect.void
    )

    const backoff = (attempt: number, error: LlmError) => {
      const exponential = Math.min(config.llmMaxRetryDelayMs, config.llmMinRetryDelayMs * 2 ** (attempt - 1))
      const jittered = exponential * (0.8 + Math.random() * 0.4)
      // A provider that names its own delay knows best, up to a minute.
      return Duration.millis(Math.round(Math.min(60_000, Math.max(jittered, error.retryAfterMs ?? 0))))
    }

    const record = (request: LlmRequest, outcome: string, attempts: number, latencyMs: number, response?: LlmResponse, costUsd = 0, error?: LlmError) =>
      Effect.gen(function* () {
        yield* Ref.update(usage, (all) => {
          const u = all[request.stage] ?? emptyUsage
          return {
            ...all,
            [request.stage]: {
              calls: u.calls + 1,
              failed: u.failed + (outcome === "ok" ? 0 : 1),
              tokensIn: u.tokensIn + (response?.tokensIn ?? 0),
              tokensOut: u.tokensOut + (response?.tokensOut ?? 0),
              costUsd: u.costUsd + costUsd
            }
          }
        })
        yield* sql`INSERT INTO llm_calls ${sql.insert({
          run_id: runId,
          stage: request.stage,
          provider: llm.provider,
          model: request.model,
          tokens_in: response?.tokensIn ?? 0,
          tokens_out: response?.tokensOut ?? 0,
          cost_usd: costUsd,
          latency_ms: Math.round(latencyMs),
          attempts,
          outcome,
          error: error === undefined ? null : error.message.slice(0, 500),
          created_at: Date.now()
        })}`.pipe(Effect.catchAll((e) => Effect.logWarning(`could not record an LLM call: ${e.message}`)))
      })

    const attempt = (request: LlmRequest) =>
      llm.complete(request).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(config.llmTimeoutMs),
          onTimeout: () => new LlmError({ reason: "Timeout", detail: `no answer within ${config.llmTimeoutMs} ms` })
        })
      )

    const call = Effect.fn("LlmRunner.call")(function* (request: LlmRequest) {
      yield* budgetLeft
      const started = Date.now()
      let tries = 0
      for (;;) {
        tries++
        const result = yield* Effect.either(attempt(request))
        if (result._tag === "Right") {
          const cost = yield* costOf(request.model, result.right)
          yield* Ref.update(spent, (usd) => usd + cost)
          yield* record(request, "ok", tries, Date.now() - started, result.right, cost)
          return result.right
        }
        const error = result.left
        if (!error.retryable || tries > config.llmRetries) {
          yield* record(request, error.reason, tries, Date.now() - started, undefined, 0, error)
          return yield* error
        }
        yield* Effect.logDebug(`LLM ${request.stage} attempt ${tries} failed (${error.reason}); retrying`)
        yield* Effect.sleep(backoff(tries, error))
        // No new request starts once the budget is spent, retries included.
        yield* budgetLeft.pipe(Effect.tapError(() => record(request, "BudgetExhausted", tries, Date.now() - started, undefined, 0, error)))
      }
    })

    return {
      runId,
      provider: choice,
      /** One logical LLM call under the shared policy; waits for a concurrency slot. */
      call: (request: LlmRequest) => semaphore.withPermits(1)(call(request)),
      spentUsd: Ref.get(spent),
      usage: Ref.get(usage)
    } as const
  })
}) {}

/** Sums the usage of the stages whose name starts with `prefix`. */
export const usageOf = (all: Record<string, StageUsage>, prefix: string): StageUsage =>
  Object.entries(all)
    .filter(([stage]) => stage.startsWith(prefix))
    .reduce(
      (a, [, u]) => ({ calls: a.calls + u.calls, failed: a.failed + u.failed, tokensIn: a.tokensIn + u.tokensIn, tokensOut: a.tokensOut + u.tokensOut, costUsd: a.costUsd + u.costUsd }),
      emptyUsage
    )

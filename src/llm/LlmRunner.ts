import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { type AppConfig, Settings, SETTINGS } from "../config/Config.js"
import { LlmStopped } from "../Domain/Errors.js"
import { type BatchItem, isConfigFailure, isProviderFailure, LlmError, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import { chooseProvider, Llm, type ProviderChoice } from "./Llm.js"
import { deprecationWarnings, MODEL_SETTINGS } from "./Models.js"
import { bareModel, parsePrices } from "../config/Prices.js"
import { describeFindings, guardRequest } from "../privacy/EgressGuard.js"
import { emptyFindings } from "../privacy/Redactor.js"
import { storeError } from "../store/Db.js"

export { parsePrices }

export interface StageUsage {
  readonly calls: number
  readonly failed: number
  readonly tokensIn: number
  readonly tokensOut: number
  /** Null when a call went to a model without a known price: an unknown cost is never shown as $0. */
  readonly costUsd: number | null
  /** Values the egress guard replaced in this stage's requests before they were sent. */
  readonly egressRedactions: number
}

/** Anthropic's Message Batches bill half the standard price. */
export const BATCH_PRICE = 0.5

const emptyUsage: StageUsage = { calls: 0, failed: 0, tokensIn: 0, tokensOut: 0, costUsd: 0, egressRedactions: 0 }

const addCost = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b)

/** Why the run's LLM stages were stopped; every later call fails at once with it, nothing is sent. */
export interface Halt {
  readonly kind: "config" | "provider"
  readonly detail: string
}

const KEY_VARIABLE: Record<string, string> = { anthropic: "ANTHROPIC_API_KEY", openrouter: "OPENROUTER_API_KEY", "openai-compatible": "OPENROUTER_API_KEY" }

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

const providerFailureLine = (provider: string, count: number, error: LlmError) =>
  `${provider} is failing: ${count} attempts in a row failed, the last with ${error.status === undefined ? error.reason : `HTTP ${error.status}`}: ` +
  `${JSON.stringify(error.detail.replace(/\s+/g, " ").slice(0, 120))}; this run's LLM stages stopped (nothing was scored 0, nothing shipped), the next run tries again`

/**
 * The one place where LLM policy lives, for every stage and provider: a timeout per attempt, retries with
 * exponential backoff and jitter on transient failures (honouring retry-after), a concurrency limit shared
 * by every stage, a cost budget per run, a record of every call, and the two ways a run stops early: a
 * failure the user must fix (a wrong key, an unknown model) and a circuit breaker for a failing provider.
 * Until one call has succeeded, calls go one at a time, so a wrong key costs one request, not one per trace.
 */
export class LlmRunner extends Effect.Service<LlmRunner>()("autotune/LlmRunner", {
  effect: Effect.gen(function* () {
    const llm = yield* Llm
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const prices = parsePrices(config.prices)
    const semaphore = yield* Effect.makeSemaphore(config.llmConcurrency)
    const probe = yield* Effect.makeSemaphore(1)
    const spent = yield* Ref.make(0)
    const usage = yield* Ref.make<Record<string, StageUsage>>({})
    const halt = yield* Ref.make<Halt | undefined>(undefined)
    let proven = false
    let failuresInARow = 0
    const warnedModels = new Set<string>()
    const parsing = new Map<string, { structured: number; unparsed: number }>()
    const runId = randomUUID()
    // Once per run, not once per call as the SDK would: a deprecated model names the variable to change.
    if (llm.provider !== "none") for (const line of deprecationWarnings(config)) yield* Effect.logWarning(line)
    const choice: ProviderChoice = llm.provider === "none" ? chooseProvider(config) : { available: true, provider: llm.provider }
    const providerName = choice.available ? choice.provider : "the provider"

    const costOf = (model: string, response: LlmResponse): Effect.Effect<number | null> => {
      if (response.reportedCostUsd !== undefined) return Effect.succeed(response.reportedCostUsd)
      const price = prices[bareModel(model)]
      if (price !== undefined) return Effect.succeed((response.tokensIn * price[0] + response.tokensOut * price[1]) / 1e6)
      if (warnedModels.has(model)) return Effect.succeed(null)
      warnedModels.add(model)
      const budget = config.maxCostUsd > 0 ? `; AUTOTUNE_MAX_COST_USD cannot be enforced in dollars for its calls` : ""
      return Effect.as(Effect.logWarning(`no price for model ${model}: its cost is reported as unknown${budget}; add it to AUTOTUNE_PRICES`), null)
    }

    // What earlier runs spent in the last 24 hours counts against the daily budget; read once per run, at
    // its first call (a daemon builds a new runner every cycle; commands that make no call never read it).
    // A pending batch holds the most it can cost until its answers are collected and their real cost recorded.
    const spentBefore = yield* Effect.cached(
      sql<{ usd: number | null }>`SELECT COALESCE((SELECT SUM(cost_usd) FROM llm_calls WHERE created_at >= ${Date.now() - 86_400_000}), 0)
                                       + COALESCE((SELECT SUM(estimated_usd) FROM llm_batches WHERE status = 'pending'), 0) AS usd`.pipe(
        Effect.map((rows) => Number(rows[0]?.usd ?? 0)),
        Effect.catchAll((e) => Effect.as(Effect.logWarning(`could not read the last 24 hours' spend: ${e.message}`), 0))
      )
    )

    // Stages ask in priority order (eval: canary turns first, then the rest newest first; optimize after
    // eval), so a budget that runs out leaves the least needed calls unmade.
    const budgetLeft = Effect.flatMap(Effect.zip(Ref.get(spent), spentBefore), ([usd, before]) =>
      config.maxCostUsd > 0 && usd >= config.maxCostUsd
        ? Effect.fail(new LlmError({ reason: "BudgetExhausted", detail: `spent $${usd.toFixed(4)} of AUTOTUNE_MAX_COST_USD=$${config.maxCostUsd}` }))
        : config.dailyBudgetUsd > 0 && before + usd >= config.dailyBudgetUsd
          ? Effect.fail(new LlmError({ reason: "BudgetExhausted", detail: `spent $${(before + usd).toFixed(4)} in the last 24 hours of AUTOTUNE_DAILY_BUDGET_USD=$${config.dailyBudgetUsd}` }))
          : Effect.void
    )

    const notHalted = Effect.flatMap(Ref.get(halt), (h) => (h === undefined ? Effect.void : Effect.fail(new LlmError({ reason: "Halted", detail: h.detail }))))

    const stop = (next: Halt) =>
      Ref.modify(halt, (current) => (current === undefined ? [true, next] : [false, current])).pipe(
        Effect.flatMap((first) => (first ? Effect.logDebug(`LLM stages stopped: ${next.detail}`) : Effect.void))
      )

    /** Classifies a failed attempt: it may stop the run (config) or trip the breaker (provider). */
    const observe = (model: string, error: LlmError) => {
      if (isConfigFailure(error)) return stop({ kind: "config", detail: configFailureLine(config, providerName, model, error) })
      if (!isProviderFailure(error)) return Effect.void
      failuresInARow++
      return failuresInARow >= config.llmBreakerThreshold
        ? stop({ kind: "provider", detail: providerFailureLine(providerName, failuresInARow, error) })
        : Effect.void
    }

    const backoff = (attempt: number, error: LlmError) => {
      const exponential = Math.min(config.llmMaxRetryDelayMs, config.llmMinRetryDelayMs * 2 ** (attempt - 1))
      const jittered = exponential * (0.8 + Math.random() * 0.4)
      // A provider that names its own delay knows best, up to a minute.
      return Duration.millis(Math.round(Math.min(60_000, Math.max(jittered, error.retryAfterMs ?? 0))))
    }

    /** Whether a structured answer was usable: null when none was asked for. */
    const parsedOf = (request: LlmRequest, response: LlmResponse | undefined): boolean | null => {
      if (request.output === undefined || response === undefined) return null
      const ok = response.structured !== undefined && (request.output.accepts?.(response.structured) ?? true)
      const stats = parsing.get(request.model) ?? { structured: 0, unparsed: 0 }
      parsing.set(request.model, { structured: stats.structured + 1, unparsed: stats.unparsed + (ok ? 0 : 1) })
      return ok
    }

    const egressRedactions = new WeakMap<LlmRequest, number>()
    let egressWarned = false

    /** The request as it may leave: the guard's replacements applied, counted, logged without values. */
    const guarded = (request: LlmRequest) =>
      Effect.suspend(() => {
        const { request: safe, findings } = guardRequest(request)
        egressRedactions.set(safe, findings.count)
        if (findings.count === 0) return Effect.succeed(safe)
        const line = `egress guard replaced ${findings.count} value(s) in a ${request.stage.split(":")[0]} request before sending (${describeFindings(findings)})`
        const log = egressWarned ? Effect.logDebug(line) : Effect.logWarning(`${line}; stored text was not redacted with the current rules: run autotune redact --rescan`)
        egressWarned = true
        return Effect.as(log, safe)
      })

    const record = (request: LlmRequest, outcome: string, attempts: number, latencyMs: number, response?: LlmResponse, costUsd: number | null = 0, error?: LlmError) =>
      Effect.gen(function* () {
        const parsed = parsedOf(request, response)
        yield* Ref.update(usage, (all) => {
          const u = all[request.stage] ?? emptyUsage
          return {
            ...all,
            [request.stage]: {
              calls: u.calls + 1,
              failed: u.failed + (outcome === "ok" ? 0 : 1),
              tokensIn: u.tokensIn + (response?.tokensIn ?? 0),
              tokensOut: u.tokensOut + (response?.tokensOut ?? 0),
              costUsd: addCost(u.costUsd, costUsd),
              egressRedactions: u.egressRedactions + (egressRedactions.get(request) ?? 0)
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
          cost_usd: costUsd ?? 0,
          cost_known: costUsd === null ? 0 : 1,
          parsed: parsed === null ? null : parsed ? 1 : 0,
          egress_redactions: egressRedactions.get(request) ?? 0,
          latency_ms: Math.round(latencyMs),
          attempts,
          outcome,
          error: error === undefined ? null : error.message.slice(0, 500),
          created_at: Date.now()
        })}`.pipe(Effect.catchAll((e) => Effect.logWarning(`could not record an LLM call: ${e.message}`)))
      })

    /** One attempt at the provider, cut off at AUTOTUNE_OPENROUTER_TIMEOUT_MS. */
    const timed = <A>(effect: Effect.Effect<A, LlmError>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: Duration.millis(config.llmTimeoutMs),
          onTimeout: () => new LlmError({ reason: "Timeout", detail: `no answer within ${config.llmTimeoutMs} ms` })
        })
      )

    const attempt = (request: LlmRequest) => timed(llm.complete(request))

    const call = Effect.fn("LlmRunner.call")(function* (unguarded: LlmRequest) {
      yield* notHalted
      yield* budgetLeft
      const request = yield* guarded(unguarded)
      const started = Date.now()
      let tries = 0
      for (;;) {
        tries++
        const result = yield* Effect.either(attempt(request))
        if (result._tag === "Right") {
          failuresInARow = 0
          proven = true
          const cost = yield* costOf(request.model, result.right)
          yield* Ref.update(spent, (usd) => usd + (cost ?? 0))
          yield* record(request, "ok", tries, Date.now() - started, result.right, cost)
          return result.right
        }
        const error = result.left
        yield* observe(request.model, error)
        if (!error.retryable || tries > config.llmRetries) {
          yield* record(request, error.reason, tries, Date.now() - started, undefined, 0, error)
          return yield* error
        }
        const stopped = yield* Effect.either(notHalted)
        if (stopped._tag === "Left") {
          yield* record(request, error.reason, tries, Date.now() - started, undefined, 0, error)
          return yield* stopped.left
        }
        yield* Effect.logDebug(`LLM ${request.stage} attempt ${tries} failed (${error.reason}); retrying`)
        yield* Effect.sleep(backoff(tries, error))
        // No new request starts once the budget is spent or the run is stopped, retries included.
        yield* Effect.zipRight(notHalted, budgetLeft).pipe(Effect.tapError((e) => record(request, e.reason, tries, Date.now() - started, undefined, 0, error)))
      }
    })

    const limited = (request: LlmRequest) => semaphore.withPermits(1)(call(request))

    /**
     * Until a call has succeeded, one at a time: the first answer tells whether the key and model work. Calls
     * that queued meanwhile pass the gate at once when it opens and run side by side again.
     */
    const gated = (request: LlmRequest) =>
      Effect.suspend(() =>
        proven
          ? limited(request)
          : probe
              .withPermits(1)(Effect.suspend(() => (proven ? Effect.succeed(Option.none<LlmResponse>()) : Effect.map(limited(request), Option.some))))
              .pipe(Effect.flatMap(Option.match({ onNone: () => limited(request), onSome: Effect.succeed })))
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
            failuresInARow = 0
            return result.right
          }
          const error = result.left
          if (error.reason !== "NotFound") yield* observe(model, error)
          if (!error.retryable || tries > config.llmRetries) {
            if (isProviderFailure(error)) yield* stop({ kind: "provider", detail: providerFailureLine(providerName, failuresInARow, error) })
            return yield* error
          }
          yield* Effect.sleep(backoff(tries, error))
        }
      })

    /** The most a request can cost at batch price: its input (about 4 characters a token) and every output token it may use. */
    const batchCeiling = (request: LlmRequest): number => {
      const price = prices[bareModel(request.model)]
      if (price === undefined) return 0
      const chars = request.system.length + request.messages.reduce((n, m) => n + m.content.length, 0) + (request.output === undefined ? 0 : JSON.stringify(request.output.inputSchema).length)
      return (BATCH_PRICE * (Math.ceil(chars / 4) * price[0] + request.maxTokens * price[1])) / 1e6
    }

    /**
     * Sends requests (in priority order) through the provider's batch interface. As many as the budgets can
     * pay at their most go; the rest are left for a later run. Each request passes the egress guard first.
     */
    const submitBatch = Effect.fn("LlmRunner.submitBatch")(function* (stage: string, items: ReadonlyArray<BatchItem>) {
      const batches = llm.batches
      if (batches === undefined || items.length === 0) return undefined
      yield* notHalted
      yield* budgetLeft
      const [usd, before] = yield* Effect.zip(Ref.get(spent), spentBefore)
      const room = Math.min(config.maxCostUsd > 0 ? config.maxCostUsd - usd : Infinity, config.dailyBudgetUsd > 0 ? config.dailyBudgetUsd - before - usd : Infinity)
      const safe: Array<BatchItem> = []
      let estimate = 0
      const findings = emptyFindings()
      for (const item of items) {
        const ceiling = batchCeiling(item.request)
        if (estimate + ceiling > room) break
        estimate += ceiling
        safe.push({ customId: item.customId, request: guardRequest(item.request, findings).request })
      }
      if (safe.length === 0) return { submitted: 0, skipped: items.length }
      const found = findings.count
      if (found > 0) {
        yield* Effect.logWarning(`egress guard replaced ${found} value(s) in a ${stage.split(":")[0]} request batch of ${safe.length} before sending (${describeFindings(findings)}); stored text was not redacted with the current rules: run autotune redact --rescan`)
      }
      const started = Date.now()
      const status = yield* policed(safe[0]!.request.model, batches.submit(safe))
      proven = true
      yield* Ref.update(spent, (u) => u + estimate)
      yield* Ref.update(usage, (all) => {
        const u = all[stage] ?? emptyUsage
        return { ...all, [stage]: { ...u, calls: u.calls + 1, egressRedactions: u.egressRedactions + found } }
      })
      yield* sql`INSERT INTO llm_batches ${sql.insert({
        batch_id: status.id, provider: llm.provider, stage, requests: safe.length, estimated_usd: estimate,
        submitted_at: started, expires_at: status.expiresAt, status: "pending", collected_at: null, succeeded: null, errored: null, expired: null
      })}`
      // The submission is a call of its own: the egress guard's count and the time are on record with the others.
      yield* sql`INSERT INTO llm_calls ${sql.insert({
        run_id: runId, stage, provider: llm.provider, model: safe[0]!.request.model, tokens_in: 0, tokens_out: 0, cost_usd: 0, cost_known: 1,
        parsed: null, egress_redactions: found, latency_ms: Date.now() - started, attempts: 1, outcome: "ok", error: null, created_at: Date.now()
      })}`
      return { submitted: safe.length, skipped: items.length - safe.length, id: status.id }
    }, (effect) => Effect.catchTag(effect, "SqlError", (e) => Effect.fail(new LlmError({ reason: "Unavailable", detail: `could not record a submitted batch: ${e.message}` }))))

    /** Batches submitted earlier whose answers are not collected yet, oldest first. */
    const pendingBatches = (stage: string) =>
      sql<{ id: string; provider: string; submittedAt: number; requests: number }>`
        SELECT batch_id AS id, provider, submitted_at AS "submittedAt", requests FROM llm_batches
        WHERE status = 'pending' AND stage = ${stage} ORDER BY submitted_at`.pipe(Effect.mapError(storeError("read pending batches")))

    const batchStatus = (id: string, model: string) =>
      llm.batches === undefined ? Effect.fail(new LlmError({ reason: "Unavailable", detail: `${llm.provider} has no batch interface` })) : policed(model, llm.batches.status(id))

    /**
     * The answers of an ended batch, each recorded as a call at batch price. The batch is marked collected
     * (or lost) by `closeBatch` once the caller has stored what it needs, so a crash in between collects again.
     */
    const collectBatch = Effect.fn("LlmRunner.collectBatch")(function* (id: string, submittedAt: number, model: string, requestOf: (customId: string) => LlmRequest | undefined) {
      if (llm.batches === undefined) return yield* new LlmError({ reason: "Unavailable", detail: `${llm.provider} has no batch interface` })
      const results = yield* policed(model, llm.batches.results(id, requestOf))
      const latency = Date.now() - submittedAt
      for (const result of results) {
        const request = requestOf(result.customId)
        if (request === undefined) continue
        if (result.type === "succeeded") {
          const cost = yield* costOf(request.model, result.response)
          const batchCost = cost === null ? null : cost * BATCH_PRICE
          yield* Ref.update(spent, (usd) => usd + (batchCost ?? 0))
          yield* record(request, "ok", 1, latency, result.response, batchCost)
        } else if (result.type === "errored") {
          yield* observe(request.model, result.error)
          yield* record(request, result.error.reason, 1, latency, undefined, 0, result.error)
        }
      }
      return results
    })

    const closeBatch = (id: string, status: "collected" | "lost", counts: { succeeded: number; errored: number; expired: number }) =>
      sql`UPDATE llm_batches SET status = ${status}, collected_at = ${Date.now()}, succeeded = ${counts.succeeded}, errored = ${counts.errored}, expired = ${counts.expired}
          WHERE batch_id = ${id}`.pipe(Effect.mapError(storeError("close a batch")))

    return {
      runId,
      provider: choice,
      /** One logical LLM call under the shared policy; waits for a concurrency slot. */
      call: gated,
      /** Whether the provider has a batch interface (Anthropic's Message Batches). */
      batching: llm.batches !== undefined,
      /** The provider this run's calls and batches go to. */
      providerName: llm.provider,
      submitBatch,
      pendingBatches,
      batchStatus,
      collectBatch,
      closeBatch,
      spentUsd: Ref.get(spent),
      /** The daily budget, what the last 24 hours spent with this run, and whether it ran out. */
      budget: Effect.map(Effect.zip(Ref.get(spent), spentBefore), ([usd, before]) => ({
        dailyBudgetUsd: config.dailyBudgetUsd,
        spentLast24hUsd: before + usd,
        exhausted: config.dailyBudgetUsd > 0 && before + usd >= config.dailyBudgetUsd
      })),
      usage: Ref.get(usage),
      /** Per model: structured answers asked for in this run and how many could not be used. */
      parseStats: Effect.sync((): Record<string, ParseStats> => Object.fromEntries(parsing)),
      /** Why the LLM stages were stopped in this run, if they were. */
      halt: Ref.get(halt),
      /** Fails with LlmStopped when the run's LLM stages were stopped: a stage checks it before it records a result. */
      ensureRunning: Effect.flatMap(Ref.get(halt), (h) => (h === undefined ? Effect.void : Effect.fail(new LlmStopped(h))))
    } as const
  })
}) {}

/** Sums the usage of the stages whose name starts with `prefix`. */
export const usageOf = (all: Record<string, StageUsage>, prefix: string): StageUsage =>
  Object.entries(all)
    .filter(([stage]) => stage.startsWith(prefix))
    .reduce(
      (a, [, u]) => ({
        calls: a.calls + u.calls,
        failed: a.failed + u.failed,
        tokensIn: a.tokensIn + u.tokensIn,
        tokensOut: a.tokensOut + u.tokensOut,
        costUsd: addCost(a.costUsd, u.costUsd),
        egressRedactions: a.egressRedactions + u.egressRedactions
      }),
      emptyUsage
    )

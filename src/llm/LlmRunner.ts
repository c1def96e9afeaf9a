/**
 * The one place where LLM policy lives, for every stage and provider: a timeout per attempt, retries with
 * exponential backoff and jitter on transient failures (honouring retry-after), a concurrency limit shared
 * by every stage, a cost budget per run, a record of every call, and the two ways a run stops early: a
 * failure the user must fix (a wrong key, an unknown model) and a circuit breaker for a failing provider.
 * Until one call has succeeded, calls go one at a time, so a wrong key costs one request, not one per trace.
 * Policy.ts holds the rules, Ledger.ts the record, BatchCalls.ts the batch interface under the same rules.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { Settings } from "../config/Config.js"
import { LlmStopped } from "../Domain/Errors.js"
import type { LlmRequest, LlmResponse } from "../Domain/Llm.js"
import { makeBatchCalls } from "./BatchCalls.js"
import { makeLedger, type ParseStats } from "./Ledger.js"
import { chooseProvider, Llm, type ProviderChoice } from "./Llm.js"
import { deprecationWarnings } from "./Models.js"
import { makePolicy } from "./Policy.js"
import { rememberSpend } from "../store/Identity.js"

export { parsePrices } from "../config/Prices.js"
export { BATCH_PRICE } from "./BatchCalls.js"
export type { ParseStats } from "./Ledger.js"
export { configFailureLine, type Halt, modelVariables } from "./Policy.js"
export { type StageUsage, usageBetween, usageOf } from "./Usage.js"

export class LlmRunner extends Effect.Service<LlmRunner>()("autotune/LlmRunner", {
  scoped: Effect.gen(function* () {
    const llm = yield* Llm
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const semaphore = yield* Effect.makeSemaphore(config.llmConcurrency)
    const probe = yield* Effect.makeSemaphore(1)
    const runId = randomUUID()
    // Once per run, not once per call as the SDK would: a deprecated model names the variable to change.
    if (llm.provider !== "none") for (const line of deprecationWarnings(config)) yield* Effect.logWarning(line)
    const choice: ProviderChoice =
      llm.provider === "none" ? chooseProvider(config) : { available: true, provider: llm.provider }
    const providerName = choice.available ? choice.provider : "the provider"
    const policy = yield* makePolicy({ sql, config, providerName })
    const { spent, halt, state, spentBefore, budgetLeft, notHalted, observe, backoff, timed } = policy
    const ledger = yield* makeLedger({ sql, config, llm, runId })
    const { usage, costOf, guarded, record } = ledger
    const { submitBatch, pendingBatches, batchStatus, collectBatch, closeBatch } = makeBatchCalls(
      { sql, config, llm, runId },
      policy,
      ledger
    )
    // When the command ends, what it spent is added to the home's record too (store/Identity.ts).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Ref.get(spent), (usd) => rememberSpend(config.home, usd)).pipe(
        Effect.catchAll((e) => Effect.logWarning(`could not remember this run's spend: ${e.message}`))
      )
    )

    const attempt = (request: LlmRequest) => timed(llm.complete(request))

    const call = Effect.fn("LlmRunner.call")(function* (unguarded: LlmRequest) {
      // The span says which stage and model, never what was asked (OpenTelemetry's GenAI attribute names).
      yield* Effect.annotateCurrentSpan({
        "autotune.stage": unguarded.stage,
        "gen_ai.system": llm.provider,
        "gen_ai.request.model": unguarded.model
      })
      yield* notHalted
      yield* budgetLeft
      const request = yield* guarded(unguarded)
      const started = yield* Clock.currentTimeMillis
      const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - started)
      let tries = 0
      for (;;) {
        tries++
        const result = yield* Effect.either(attempt(request))
        if (result._tag === "Right") {
          state.failuresInARow = 0
          state.proven = true
          const cost = yield* costOf(request.model, result.right)
          yield* Ref.update(spent, (usd) => usd + (cost ?? 0))
          yield* record(request, "ok", tries, yield* elapsed, result.right, cost)
          yield* Effect.annotateCurrentSpan({
            "gen_ai.usage.input_tokens": result.right.tokensIn,
            "gen_ai.usage.output_tokens": result.right.tokensOut,
            "autotune.attempts": tries
          })
          return result.right
        }
        const error = result.left
        yield* observe(request.model, error)
        if (!error.retryable || tries > config.llmRetries) {
          yield* record(request, error.reason, tries, yield* elapsed, undefined, 0, error)
          return yield* error
        }
        const stopped = yield* Effect.either(notHalted)
        if (stopped._tag === "Left") {
          yield* record(request, error.reason, tries, yield* elapsed, undefined, 0, error)
          return yield* stopped.left
        }
        yield* Effect.logDebug(`LLM ${request.stage} attempt ${tries} failed (${error.reason}); retrying`)
        yield* Effect.sleep(backoff(tries, error))
        // No new request starts once the budget is spent or the run is stopped, retries included.
        yield* Effect.zipRight(notHalted, budgetLeft).pipe(
          Effect.tapError((e) =>
            Effect.flatMap(elapsed, (ms) => record(request, e.reason, tries, ms, undefined, 0, error))
          )
        )
      }
    })

    const limited = (request: LlmRequest) => semaphore.withPermits(1)(call(request))

    /**
     * Until a call has succeeded, one at a time: the first answer tells whether the key and model work. Calls
     * that queued meanwhile pass the gate at once when it opens and run side by side again.
     */
    const gated = (request: LlmRequest) =>
      Effect.suspend(() =>
        state.proven
          ? limited(request)
          : probe
              .withPermits(1)(
                Effect.suspend(() =>
                  state.proven ? Effect.succeed(Option.none<LlmResponse>()) : Effect.map(limited(request), Option.some)
                )
              )
              .pipe(Effect.flatMap(Option.match({ onNone: () => limited(request), onSome: Effect.succeed })))
      )

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
      parseStats: Effect.sync((): Record<string, ParseStats> => Object.fromEntries(ledger.parsing)),
      /** Why the LLM stages were stopped in this run, if they were. */
      halt: Ref.get(halt),
      /** Fails with LlmStopped when the run's LLM stages were stopped: a stage checks it before it records a result. */
      ensureRunning: Effect.flatMap(Ref.get(halt), (h) =>
        h === undefined ? Effect.void : Effect.fail(new LlmStopped(h))
      )
    } as const
  })
}) {}

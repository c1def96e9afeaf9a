/**
 * The provider's batch interface (Anthropic's Message Batches, half price) under the runner's policy:
 * submitting as many requests as the budgets can pay at their most, asking where a batch stands, collecting
 * its answers as calls at batch price, and closing it once the caller has stored what it needs.
 */
import {
  closeBatch as closeBatchRow,
  pendingBatches as pendingBatchRows,
  recordBatch,
  recordCall
} from "../store/Spend.js"
import type { SqlClient } from "@effect/sql"
import { Clock, type Context, Effect, Ref } from "effect"
import type { AppConfig } from "../config/Table.js"
import { costAt } from "../config/Prices.js"
import { type BatchItem, LlmError, type LlmRequest } from "../Domain/Llm.js"
import { describeFindings, guardRequest } from "../privacy/EgressGuard.js"
import { emptyFindings } from "../privacy/Redactor.js"
import type { Ledger } from "./Ledger.js"
import type { Llm } from "./Llm.js"
import type { Policy } from "./Policy.js"
import { emptyUsage } from "./Usage.js"

/** Anthropic's Message Batches bill half the standard price. */
export const BATCH_PRICE = 0.5

export const makeBatchCalls = (
  {
    sql,
    config,
    llm,
    runId
  }: {
    readonly sql: SqlClient.SqlClient
    readonly config: AppConfig
    readonly llm: Context.Tag.Service<Llm>
    readonly runId: string
  },
  { spent, state, spentBefore, budgetLeft, notHalted, observe, policed }: Policy,
  { prices, usage, costOf, record }: Ledger
) => {
  /** The most a request can cost at batch price: its input (about 4 characters a token) and every output token it may use. */
  const batchCeiling = (request: LlmRequest): number => {
    const chars =
      request.system.length +
      request.messages.reduce((n, m) => n + m.content.length, 0) +
      (request.output === undefined ? 0 : JSON.stringify(request.output.inputSchema).length)
    return BATCH_PRICE * (costAt(prices, request.model, Math.ceil(chars / 4), request.maxTokens) ?? 0)
  }

  /**
   * Sends requests (in priority order) through the provider's batch interface. As many as the budgets can
   * pay at their most go; the rest are left for a later run. Each request passes the egress guard first.
   */
  const submitBatch = Effect.fn("LlmRunner.submitBatch")(
    function* (stage: string, items: ReadonlyArray<BatchItem>) {
      const batches = llm.batches
      if (batches === undefined || items.length === 0) return undefined
      yield* notHalted
      yield* budgetLeft
      const [usd, before] = yield* Effect.zip(Ref.get(spent), spentBefore)
      const room = Math.min(
        config.maxCostUsd > 0 ? config.maxCostUsd - usd : Infinity,
        config.dailyBudgetUsd > 0 ? config.dailyBudgetUsd - before - usd : Infinity
      )
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
        yield* Effect.logWarning(
          `egress guard replaced ${found} value(s) in a ${stage.split(":")[0]} request batch of ${safe.length} before sending (${describeFindings(findings)}); stored text was not redacted with the current rules: run autotune redact --rescan`
        )
      }
      const started = yield* Clock.currentTimeMillis
      const status = yield* policed(safe[0]!.request.model, batches.submit(safe))
      state.proven = true
      yield* Ref.update(spent, (u) => u + estimate)
      yield* Ref.update(usage, (all) => {
        const u = all[stage] ?? emptyUsage
        return { ...all, [stage]: { ...u, calls: u.calls + 1, egressRedactions: u.egressRedactions + found } }
      })
      yield* recordBatch(sql, {
        id: status.id,
        provider: llm.provider,
        stage,
        requests: safe.length,
        estimatedUsd: estimate,
        submittedAt: started,
        expiresAt: status.expiresAt
      })
      // The submission is a call of its own: the egress guard's count and the time are on record with the others.
      yield* recordCall(sql, {
        runId,
        stage,
        provider: llm.provider,
        model: safe[0]!.request.model,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        parsed: null,
        egressRedactions: found,
        latencyMs: (yield* Clock.currentTimeMillis) - started,
        attempts: 1,
        outcome: "ok",
        error: null
      })
      return { submitted: safe.length, skipped: items.length - safe.length, id: status.id }
    },
    (effect) =>
      Effect.catchTag(effect, "StoreError", (e) =>
        Effect.fail(new LlmError({ reason: "Unavailable", detail: `could not record a submitted batch: ${e.detail}` }))
      )
  )

  /** Batches submitted earlier whose answers are not collected yet, oldest first. */
  const pendingBatches = (stage: string) => pendingBatchRows(sql, stage)

  const batchStatus = (id: string, model: string) =>
    llm.batches === undefined
      ? Effect.fail(new LlmError({ reason: "Unavailable", detail: `${llm.provider} has no batch interface` }))
      : policed(model, llm.batches.status(id))

  /**
   * The answers of an ended batch, each recorded as a call at batch price. The batch is marked collected
   * (or lost) by `closeBatch` once the caller has stored what it needs, so a crash in between collects again.
   */
  const collectBatch = Effect.fn("LlmRunner.collectBatch")(function* (
    id: string,
    submittedAt: number,
    model: string,
    requestOf: (customId: string) => LlmRequest | undefined
  ) {
    if (llm.batches === undefined)
      return yield* new LlmError({ reason: "Unavailable", detail: `${llm.provider} has no batch interface` })
    const results = yield* policed(model, llm.batches.results(id, requestOf))
    const latency = (yield* Clock.currentTimeMillis) - submittedAt
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

  const closeBatch = (
    id: string,
    status: "collected" | "lost",
    counts: { succeeded: number; errored: number; expired: number }
  ) => closeBatchRow(sql, id, status, counts)

  return { submitBatch, pendingBatches, batchStatus, collectBatch, closeBatch } as const
}

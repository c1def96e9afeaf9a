/**
 * The run's record of its LLM calls: usage per stage, the cost of each answer (a model without a price is
 * unknown, said once), how many structured answers could not be used, the egress guard's replacements, and a
 * row per call in llm_calls.
 */
import { recordCall } from "../store/Spend.js"
import type { SqlClient } from "@effect/sql"
import { type Context, Effect, Ref } from "effect"
import type { AppConfig } from "../config/Table.js"
import { costAt, parsePrices, type PriceTable } from "../config/Prices.js"
import type { LlmRequest, LlmResponse, LlmError } from "../Domain/Llm.js"
import { describeFindings, guardRequest } from "../privacy/EgressGuard.js"
import type { Llm } from "./Llm.js"
import { addCost, emptyUsage, type StageUsage } from "./Usage.js"

/** Structured answers asked of one model in this run, and how many could not be used. */
export interface ParseStats {
  readonly structured: number
  readonly unparsed: number
}

/** One run's record of its calls: prices, usage per stage, structured answers that could not be used, the egress guard. */
export interface Ledger {
  readonly prices: PriceTable
  readonly usage: Ref.Ref<Record<string, StageUsage>>
  readonly parsing: Map<string, { structured: number; unparsed: number }>
  /** null: the model has no known price (never counted as $0). */
  readonly costOf: (model: string, response: LlmResponse) => Effect.Effect<number | null>
  /** The request with whatever the egress guard replaced. */
  readonly guarded: (request: LlmRequest) => Effect.Effect<LlmRequest>
  readonly record: (
    request: LlmRequest,
    outcome: string,
    attempts: number,
    latencyMs: number,
    response?: LlmResponse,
    costUsd?: number | null,
    error?: LlmError
  ) => Effect.Effect<void>
}

export const makeLedger = ({
  sql,
  config,
  llm,
  runId
}: {
  readonly sql: SqlClient.SqlClient
  readonly config: AppConfig
  readonly llm: Context.Tag.Service<Llm>
  readonly runId: string
}): Effect.Effect<Ledger> =>
  Effect.gen(function* () {
    const prices = parsePrices(config.prices)
    const usage = yield* Ref.make<Record<string, StageUsage>>({})
    const warnedModels = new Set<string>()
    const parsing = new Map<string, { structured: number; unparsed: number }>()

    const costOf = (model: string, response: LlmResponse): Effect.Effect<number | null> => {
      if (response.reportedCostUsd !== undefined) return Effect.succeed(response.reportedCostUsd)
      const priced = costAt(prices, model, response.tokensIn, response.tokensOut)
      if (priced !== null) return Effect.succeed(priced)
      if (warnedModels.has(model)) return Effect.succeed(null)
      warnedModels.add(model)
      const budget = config.maxCostUsd > 0 ? `; AUTOTUNE_MAX_COST_USD cannot be enforced in dollars for its calls` : ""
      return Effect.as(
        Effect.logWarning(
          `no price for model ${model}: its cost is reported as unknown${budget}; add it to AUTOTUNE_PRICES`
        ),
        null
      )
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
        const log = egressWarned
          ? Effect.logDebug(line)
          : Effect.logWarning(
              `${line}; stored text was not redacted with the current rules: run autotune redact --rescan`
            )
        egressWarned = true
        return Effect.as(log, safe)
      })

    const record = (
      request: LlmRequest,
      outcome: string,
      attempts: number,
      latencyMs: number,
      response?: LlmResponse,
      costUsd: number | null = 0,
      error?: LlmError
    ) =>
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
        yield* recordCall(sql, {
          runId,
          stage: request.stage,
          provider: llm.provider,
          model: request.model,
          tokensIn: response?.tokensIn ?? 0,
          tokensOut: response?.tokensOut ?? 0,
          costUsd,
          parsed,
          egressRedactions: egressRedactions.get(request) ?? 0,
          latencyMs,
          attempts,
          outcome,
          error: error === undefined ? null : error.message
        }).pipe(Effect.catchAll((e) => Effect.logWarning(`could not record an LLM call: ${e.detail}`)))
      })

    return { prices, usage, parsing, costOf, guarded, record } as const
  })

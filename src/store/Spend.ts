/**
 * What autotune spent on models: a row per call (`llm_calls`, never pruned), its daily rollup (`llm_daily`, kept
 * by a trigger) and the batches sent through a provider's batch interface (`llm_batches`). Totals over long spans
 * are read from the rollup, the last 24 hours from the calls' time index.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import { storeError } from "./Db.js"
import { decodeFirst, decodeRows, NullableNumber } from "./Rows.js"

/** One call to a model as the ledger records it. */
export interface CallRow {
  readonly runId: string
  readonly stage: string
  readonly provider: string
  readonly model: string
  readonly tokensIn: number
  readonly tokensOut: number
  /** null: no known price, kept apart from $0. */
  readonly costUsd: number | null
  /** For a call that asked for a structured answer, whether the answer could be used. */
  readonly parsed: boolean | null
  readonly egressRedactions: number
  readonly latencyMs: number
  readonly attempts: number
  readonly outcome: string
  readonly error: string | null
}

export const recordCall = (sql: SqlClient.SqlClient, c: CallRow) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    sql`INSERT INTO llm_calls ${sql.insert({
      run_id: c.runId,
      stage: c.stage,
      provider: c.provider,
      model: c.model,
      tokens_in: c.tokensIn,
      tokens_out: c.tokensOut,
      cost_usd: c.costUsd ?? 0,
      cost_known: c.costUsd === null ? 0 : 1,
      parsed: c.parsed === null ? null : c.parsed ? 1 : 0,
      egress_redactions: c.egressRedactions,
      latency_ms: Math.round(c.latencyMs),
      attempts: c.attempts,
      outcome: c.outcome,
      error: c.error === null ? null : c.error.slice(0, 500),
      created_at: now
    })}`.pipe(Effect.asVoid, Effect.mapError(storeError("record an LLM call")))
  )

/** A batch just submitted: the most it can cost is held against the daily budget until it is collected. */
export const recordBatch = (
  sql: SqlClient.SqlClient,
  b: {
    readonly id: string
    readonly provider: string
    readonly stage: string
    readonly requests: number
    readonly estimatedUsd: number
    readonly submittedAt: number
    readonly expiresAt: number
  }
) =>
  sql`INSERT INTO llm_batches ${sql.insert({
    batch_id: b.id,
    provider: b.provider,
    stage: b.stage,
    requests: b.requests,
    estimated_usd: b.estimatedUsd,
    submitted_at: b.submittedAt,
    expires_at: b.expiresAt,
    status: "pending",
    collected_at: null,
    succeeded: null,
    errored: null,
    expired: null
  })}`.pipe(Effect.asVoid, Effect.mapError(storeError("record a submitted batch")))

/** Batches of a stage whose answers are not collected yet, oldest first. */
export const pendingBatches = (sql: SqlClient.SqlClient, stage: string) =>
  sql`
    SELECT batch_id AS id, provider, submitted_at AS "submittedAt", requests FROM llm_batches
    WHERE status = 'pending' AND stage = ${stage} ORDER BY submitted_at`.pipe(
    decodeRows(
      Schema.Struct({
        id: Schema.String,
        provider: Schema.String,
        submittedAt: Schema.Number,
        requests: Schema.Number
      }),
      "read pending batches"
    )
  )

export const closeBatch = (
  sql: SqlClient.SqlClient,
  id: string,
  status: "collected" | "lost",
  counts: { readonly succeeded: number; readonly errored: number; readonly expired: number }
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    sql`UPDATE llm_batches SET status = ${status}, collected_at = ${now}, succeeded = ${counts.succeeded}, errored = ${counts.errored}, expired = ${counts.expired}
        WHERE batch_id = ${id}`.pipe(Effect.asVoid, Effect.mapError(storeError("close a batch")))
  )

/** Dollars spent on calls since `since`, plus the most the pending batches can still cost. */
export const committedSince = (sql: SqlClient.SqlClient, since: number) =>
  sql`SELECT COALESCE((SELECT SUM(cost_usd) FROM llm_calls WHERE created_at >= ${since}), 0)
           + COALESCE((SELECT SUM(estimated_usd) FROM llm_batches WHERE status = 'pending'), 0) AS usd`.pipe(
    decodeFirst(Schema.Struct({ usd: NullableNumber }), "read the last 24 hours' spend"),
    Effect.map((r) => r?.usd ?? 0)
  )

/** Dollars spent on calls since `since` (0 when none). */
export const spentSince = (sql: SqlClient.SqlClient, since: number) =>
  sql`SELECT SUM(cost_usd) AS usd FROM llm_calls WHERE created_at >= ${since}`.pipe(
    decodeFirst(Schema.Struct({ usd: NullableNumber }), "read the spend"),
    Effect.map((r) => r?.usd ?? 0)
  )

/** Dollars spent on the UTC days from `day` on, from the rollup. */
export const spentFromDay = (sql: SqlClient.SqlClient, day: string) =>
  sql`SELECT SUM(cost_usd) AS usd FROM llm_daily WHERE day >= ${day}`.pipe(
    decodeFirst(Schema.Struct({ usd: NullableNumber }), "read the spend"),
    Effect.map((r) => r?.usd ?? 0)
  )

/** Dollars spent over the store's life, from the rollup. */
export const spentInAll = (sql: SqlClient.SqlClient) =>
  sql`SELECT SUM(cost_usd) AS usd FROM llm_daily`.pipe(
    decodeFirst(Schema.Struct({ usd: NullableNumber }), "read the spend"),
    Effect.map((r) => r?.usd ?? 0)
  )

/** Dollars a behavior's stages (`<stage>:<behavior>:…`) spent over the store's life. */
export const behaviorSpend = (sql: SqlClient.SqlClient, behavior: string) =>
  sql`SELECT SUM(cost_usd) AS usd FROM llm_daily WHERE stage LIKE ${`%:${behavior}:%`}`.pipe(
    decodeFirst(Schema.Struct({ usd: NullableNumber }), "read a behavior's spend"),
    Effect.map((r) => r?.usd ?? 0)
  )

/** Calls and tokens of the optimizer's successful calls, by stage (`optimize:<behavior>:<kind>`). */
export const optimizerCallTokens = (sql: SqlClient.SqlClient) =>
  sql`
    SELECT stage, COUNT(*) AS n, SUM(tokens_in) AS "tokensIn", SUM(tokens_out) AS "tokensOut"
    FROM llm_calls WHERE stage LIKE 'optimize:%' AND outcome = 'ok' GROUP BY stage`.pipe(
    decodeRows(
      Schema.Struct({ stage: Schema.String, n: Schema.Number, tokensIn: Schema.Number, tokensOut: Schema.Number }),
      "read earlier optimizer calls"
    )
  )

/** Per model since `day`: answers that asked for a structure, and those that could not be used. */
export const structuredAnswers = (sql: SqlClient.SqlClient, day: string) =>
  sql`
    SELECT model, SUM(structured) AS structured, SUM(unparsed) AS unparsed FROM llm_daily
    WHERE day >= ${day} GROUP BY model HAVING SUM(structured) > 0 ORDER BY model`.pipe(
    decodeRows(
      Schema.Struct({ model: Schema.String, structured: Schema.Number, unparsed: Schema.Number }),
      "read the structured answers"
    )
  )

/** Values the egress guard replaced in requests since `day`. */
export const egressRedactionsSince = (sql: SqlClient.SqlClient, day: string) =>
  sql`SELECT SUM(egress_redactions) AS n FROM llm_daily WHERE day >= ${day}`.pipe(
    decodeFirst(Schema.Struct({ n: NullableNumber }), "read the egress guard's count"),
    Effect.map((r) => r?.n ?? 0)
  )

/** The batches still pending: how many, their requests, the dollars they hold, and the oldest's submission. */
export const pendingBatchTotals = (sql: SqlClient.SqlClient) =>
  sql`SELECT COUNT(*) AS batches, SUM(requests) AS requests, SUM(estimated_usd) AS reserved, MIN(submitted_at) AS oldest FROM llm_batches WHERE status = 'pending'`.pipe(
    decodeFirst(
      Schema.Struct({
        batches: Schema.Number,
        requests: NullableNumber,
        reserved: NullableNumber,
        oldest: NullableNumber
      }),
      "read pending batches"
    ),
    Effect.map((r) => ({
      batches: r?.batches ?? 0,
      requests: r?.requests ?? 0,
      reservedUsd: r?.reserved ?? 0,
      oldest: r?.oldest ?? null
    }))
  )

/** The rollup's days from `day` on, per stage and model. */
export const dailySpend = (sql: SqlClient.SqlClient, day: string) =>
  sql`
    SELECT day, stage, model, calls, failed, tokens_in AS "tokensIn", tokens_out AS "tokensOut", cost_usd AS "costUsd", unknown_cost AS "unknownCost"
    FROM llm_daily WHERE day >= ${day} ORDER BY day`.pipe(
    decodeRows(
      Schema.Struct({
        day: Schema.String,
        stage: Schema.String,
        model: Schema.String,
        calls: Schema.Number,
        failed: Schema.Number,
        tokensIn: Schema.Number,
        tokensOut: Schema.Number,
        costUsd: Schema.Number,
        unknownCost: Schema.Number
      }),
      "read the daily spend"
    )
  )

/** Every stage and model's totals over the store's life, from the rollup (/metrics' counters). */
export const spendByStage = (sql: SqlClient.SqlClient) =>
  sql`
    SELECT stage, model, SUM(calls) AS calls, SUM(failed) AS failed, SUM(tokens_in) AS "tokensIn", SUM(tokens_out) AS "tokensOut",
      SUM(cost_usd) AS "costUsd", SUM(egress_redactions) AS "egressRedactions"
    FROM llm_daily GROUP BY stage, model ORDER BY stage, model`.pipe(
    decodeRows(
      Schema.Struct({
        stage: Schema.String,
        model: Schema.String,
        calls: Schema.Number,
        failed: Schema.Number,
        tokensIn: Schema.Number,
        tokensOut: Schema.Number,
        costUsd: Schema.Number,
        egressRedactions: Schema.Number
      }),
      "read the spend by stage"
    )
  )

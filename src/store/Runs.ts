/**
 * The record of each cycle (`runs`): when it ran, whether it failed, and its summary as `once --json` gives it,
 * written together with what it adds to the running totals /metrics reports (Totals.ts).
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import type { BehaviorFaultAt } from "../Domain/Errors.js"
import { storeError, writeTransaction } from "./Db.js"
import { decodeFirst, NullableNumber } from "./Rows.js"
import { LEADER_LOCK } from "./Postgres.js"
import { addTotals, type TotalDelta } from "./Totals.js"

export const recordRun = (
  sql: SqlClient.SqlClient,
  run: {
    readonly runId: string
    readonly command: string
    readonly startedAt: number
    readonly failed: boolean
    readonly summary: unknown
  },
  totals: ReadonlyArray<TotalDelta>
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO runs ${sql.insert({
        run_id: run.runId,
        command: run.command,
        started_at: run.startedAt,
        finished_at: now,
        status: run.failed ? "failed" : "ok",
        summary_json: JSON.stringify(run.summary)
      })}`.pipe(Effect.zipRight(addTotals(sql, totals)))
    ).pipe(Effect.asVoid, Effect.mapError(storeError("record the run")))
  )

/** When the newest turn was stored and the last cycle succeeded (null when never), and the last 24 hours' spend. */
export const freshness = (sql: SqlClient.SqlClient, since: number) =>
  sql`
    SELECT (SELECT MAX(created_at) FROM traces) AS newest, (SELECT MAX(finished_at) FROM runs WHERE status = 'ok') AS success,
      (SELECT SUM(cost_usd) FROM llm_calls WHERE created_at >= ${since}) AS spent`.pipe(
    decodeFirst(
      Schema.Struct({ newest: NullableNumber, success: NullableNumber, spent: NullableNumber }),
      "read the metrics"
    ),
    Effect.map((r) => ({ newestTraceAt: r?.newest ?? null, lastSuccessAt: r?.success ?? null, spent: r?.spent ?? 0 }))
  )

const FaultAt = Schema.Struct({ stage: Schema.String, behavior: Schema.String, fault: Schema.String })
const CycleSummary = Schema.Struct({
  summary: Schema.parseJson(Schema.Struct({ behaviorFaults: Schema.optional(Schema.Array(FaultAt)) }))
})

/** The behavior faults the last recorded cycle reported (none before the first, or in older cycles' records). */
export const lastCycleFaults = (sql: SqlClient.SqlClient) =>
  sql`SELECT summary_json AS "summary" FROM runs WHERE command = 'once' ORDER BY finished_at DESC LIMIT 1`.pipe(
    decodeFirst(CycleSummary, "read the last cycle"),
    Effect.map((r): ReadonlyArray<BehaviorFaultAt> => r?.summary.behaviorFaults ?? [])
  )

/** PostgreSQL: whether some host's cycle holds the leader lock right now. */
export const leaderCycleRunning = (sql: SqlClient.SqlClient) =>
  sql`SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = ${LEADER_LOCK} AND granted`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "read the leader lock"),
    Effect.map((r) => (r?.n ?? 0) > 0)
  )

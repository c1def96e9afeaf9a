/**
 * The canary's side of the store: the turns a pack version served with what the monitor weighs of each (score,
 * error, tool failures, the user's 👎, whether the judge still owes a score), and every decision the monitor
 * took (`canary_decisions`) with the figures it took it on.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { storeError, writeTransaction } from "./Db.js"
import { decodeRows, JsonObject, NullableNumber } from "./Rows.js"
import { appliesTo } from "./Traces.js"

/** A served turn as the canary test reads it: compact, and numbers only. */
export const ArmTurn = Schema.Struct({
  at: Schema.Number,
  score: NullableNumber,
  isError: Schema.Number,
  draw: Schema.Number,
  toolCalls: Schema.Number,
  toolFailures: Schema.Number,
  negative: NullableNumber,
  /** Not judged yet, and the judge will: a reply the rubric applies to, with no verdict on record. */
  pending: Schema.Number
})
export type ArmTurn = typeof ArmTurn.Type

/**
 * The turns one pack version served for a behavior since `since`, oldest first (at most `cap`): the indexed
 * (behavior, version) table does the filtering, and the cap bounds memory.
 */
export const armTurns = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  rubricVersion: string,
  q: { readonly version: string; readonly since: number; readonly cap: number }
) =>
  sql`
    SELECT t.created_at AS "at", s.score AS "score", t.is_error AS "isError", t.sample_draw AS "draw",
           t.tool_call_count AS "toolCalls", t.tool_failure_count AS "toolFailures",
           (SELECT CASE WHEN f.feedback_type = 'negative' THEN 1 ELSE 0 END FROM feedback f WHERE f.trace_id = t.trace_id ORDER BY f.created_ms DESC LIMIT 1) AS "negative",
           CASE WHEN (s.score IS NULL AND t.is_error = 0 AND t.output_text IS NOT NULL AND ${appliesTo(sql, behavior)}
            AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${behavior}
                            AND j.rubric_version = ${rubricVersion} AND j.stage = 1)) THEN 1 ELSE 0 END AS "pending"
    FROM trace_packs p
    JOIN traces t ON t.trace_id = p.trace_id
    LEFT JOIN trace_scores s ON s.trace_id = p.trace_id AND s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion}
    WHERE p.behavior IN (${behavior}, '*') AND p.version = ${q.version} AND p.created_at >= ${q.since}
    ORDER BY p.created_at LIMIT ${q.cap}`.pipe(decodeRows(ArmTurn, "read canary samples"))

export const recordDecision = (
  sql: SqlClient.SqlClient,
  d: {
    readonly behavior: Behavior
    readonly canaryVersion: string
    readonly activeVersion: string | null
    readonly action: string
    readonly reason: string
    readonly figures: Record<string, unknown>
  }
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO canary_decisions ${sql.insert({
        behavior: d.behavior,
        canary_version: d.canaryVersion,
        active_version: d.activeVersion,
        action: d.action,
        reason: d.reason,
        figures_json: JSON.stringify(d.figures),
        created_at: now
      })}`
    )
  ).pipe(Effect.asVoid, Effect.mapError(storeError("record the canary decision")))

export const DecisionRow = Schema.Struct({
  at: Schema.Number,
  version: Schema.String,
  activeVersion: Schema.NullOr(Schema.String),
  action: Schema.String,
  reason: Schema.String,
  figures: JsonObject
})
export type DecisionRow = typeof DecisionRow.Type

/**
 * A behavior's decisions, newest first (at most `limit`), of one canary version or of any. The figures are as
 * the monitor recorded them: each reader takes the ones it shows.
 */
export const decisions = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  q: { readonly version?: string; readonly limit: number }
) =>
  sql`
    SELECT created_at AS "at", canary_version AS "version", active_version AS "activeVersion", action, reason, figures_json AS "figures"
    FROM canary_decisions
    WHERE behavior = ${behavior} ${q.version === undefined ? sql`` : sql`AND canary_version = ${q.version}`}
    ORDER BY created_at DESC, id DESC LIMIT ${q.limit}`.pipe(decodeRows(DecisionRow, "read canary decisions"))

/**
 * The judge's verdicts as stored: every answer per stage (`judge_scores`), the score a turn counts with
 * (`trace_scores`), their daily rollups (`score_daily`, `judge_daily`, kept by triggers), and the requests a
 * pending batch holds (`judge_batch_items`). What capabilities ask of them is here.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import { Behavior, BEHAVIORS } from "../Domain/Behavior.js"
import { storeError, writeTransaction } from "./Db.js"
import { upsert } from "./Dialect.js"
import { decodeFirst, decodeRows, NullableNumber } from "./Rows.js"
import { chunks } from "./TraceRows.js"
import { Need, StoredTurn, TURN_COLUMNS } from "./Traces.js"

/** Stage-1/stage-2 pairs of a rubric's turns since `since`, by stage-1 level (a quarter point): how often stage 2 moved it. */
export const stagePairs = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string, since: number) =>
  sql`
    SELECT ROUND(stage1_score * 4) / 4.0 AS level, COUNT(*) AS n, SUM(CASE WHEN ABS(stage1_score - stage2_score) >= 0.2499 THEN 1 ELSE 0 END) AS flips
    FROM trace_scores WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion} AND turn_at >= ${since}
      AND stage1_score IS NOT NULL AND stage2_score IS NOT NULL
    GROUP BY 1`.pipe(
    decodeRows(
      Schema.Struct({ level: Schema.Number, n: Schema.Number, flips: Schema.Number }),
      "read the judges' agreement"
    )
  )

/** How many answered turns hold a score under this rubric version. */
export const scoredTurnCount = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT COUNT(*) AS n FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id
    WHERE s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion} AND t.output_text IS NOT NULL`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "count scored turns"),
    Effect.map((r) => r?.n ?? 0)
  )

/** A scored turn as the optimizer learns from it: the turn, its score and the judge's reason, the user's latest reaction. */
export const ScoredTurn = Schema.Struct({
  ...StoredTurn.fields,
  score: Schema.Number,
  reason: Schema.String,
  reaction: Schema.NullOr(Schema.Literal("positive", "negative"))
})
export type ScoredTurn = typeof ScoredTurn.Type

/** The newest 2,000 answered turns scored under this rubric version, newest first. */
export const scoredTurns = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT ${sql.unsafe(TURN_COLUMNS)}, s.score, s.reason,
           (SELECT f.feedback_type FROM feedback f WHERE f.trace_id = t.trace_id ORDER BY f.created_ms DESC LIMIT 1) AS reaction
    FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id
    WHERE s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion} AND t.output_text IS NOT NULL
    ORDER BY t.created_at DESC LIMIT 2000`.pipe(decodeRows(ScoredTurn, "read scored traces"))

/** One request of a pending batch, with the turn it judges. */
export const BatchItem = Schema.Struct({
  ...StoredTurn.fields,
  customId: Schema.String,
  behavior: Behavior,
  rubricVersion: Schema.String,
  need: Need,
  isCanary: Schema.Number,
  packVersion: Schema.NullOr(Schema.String),
  turnAt: Schema.Number
})

/** A pending batch's requests, from the store; turns pruned since are left out by the join. */
export const batchItems = (sql: SqlClient.SqlClient, batchId: string) =>
  sql`
    SELECT ${sql.unsafe(TURN_COLUMNS)}, b.custom_id AS "customId", b.behavior, b.rubric_version AS "rubricVersion", b.need,
           b.is_canary AS "isCanary", b.pack_version AS "packVersion", t.created_at AS "turnAt"
    FROM judge_batch_items b JOIN traces t ON t.trace_id = b.trace_id WHERE b.batch_id = ${batchId} ORDER BY b.custom_id, b.behavior`.pipe(
    decodeRows(BatchItem, "read a pending batch")
  )

/** The turns a batch holds become free to be selected again (unless they were scored). */
export const forgetBatchItems = (sql: SqlClient.SqlClient, batchId: string) =>
  sql`DELETE FROM judge_batch_items WHERE batch_id = ${batchId}`.pipe(
    Effect.asVoid,
    Effect.mapError(storeError("forget a collected batch"))
  )

/** The requests of a batch just sent, each standing for one rubric on one turn, so they are neither judged twice nor lost. */
export const recordBatchItems = (
  sql: SqlClient.SqlClient,
  items: ReadonlyArray<{
    readonly batchId: string
    readonly customId: string
    readonly traceId: string
    readonly behavior: Behavior
    readonly rubricVersion: string
    readonly model: string
    readonly need: Need
    readonly isCanary: number
    readonly packVersion: string | null
  }>
) =>
  Effect.forEach(
    chunks(
      items.map((i) => ({
        batch_id: i.batchId,
        custom_id: i.customId,
        trace_id: i.traceId,
        behavior: i.behavior,
        rubric_version: i.rubricVersion,
        model: i.model,
        need: i.need,
        is_canary: i.isCanary,
        pack_version: i.packVersion
      })),
      500
    ),
    (rows) => upsert(sql, "judge_batch_items", rows, ["batch_id", "custom_id", "behavior"]),
    { discard: true }
  ).pipe(Effect.mapError(storeError("record a submitted batch")))

/**
 * Distinct turns judged at stage 1 since `since` (of one behavior, or any) whose text addressed the evaluator.
 * `stage = 1 AND addressed_masked > 0` stay literals and the behaviors are named (all six when none is given):
 * that is what lets the partial index of migration 0018 (judge_scores_masked) answer the count instead of a
 * scan of every verdict.
 */
export const maskedTurnsSince = (sql: SqlClient.SqlClient, since: number, behavior?: Behavior) =>
  sql`
    SELECT COUNT(DISTINCT trace_id) AS n FROM judge_scores
    WHERE ${behavior === undefined ? sql`behavior IN ${sql.in(BEHAVIORS)}` : sql`behavior = ${behavior}`} AND stage = 1 AND addressed_masked > 0 AND created_at >= ${since}`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "count masked turns"),
    Effect.map((r) => r?.n ?? 0)
  )

/** Turns judged under a rubric version on the days from `day` on, from the rollup. */
export const judgedSince = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string, day: string) =>
  sql`SELECT SUM(n) AS n FROM score_daily WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion} AND day >= ${day}`.pipe(
    decodeFirst(Schema.Struct({ n: NullableNumber }), "count judged turns"),
    Effect.map((r) => r?.n ?? 0)
  )

/** Per pack version, turns judged under a rubric version on the days from `day` on and their sum, from the rollup. */
export const scoresByVersion = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string, day: string) =>
  sql`
    SELECT version, SUM(n) AS n, SUM(sum) AS sum FROM score_daily
    WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion} AND day >= ${day} AND version <> ''
    GROUP BY version HAVING SUM(n) > 0 ORDER BY version`.pipe(
    decodeRows(
      Schema.Struct({ version: Schema.String, n: Schema.Number, sum: Schema.Number }),
      "read scores by version"
    )
  )

/** Per day and pack version since `day`, from the rollup (never a row per turn): the report's trend. */
export const dailyScores = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string, day: string) =>
  sql`
    SELECT day, version, n, sum, sum_sq AS "sumSq", "both", gap_sum AS "gapSum"
    FROM score_daily WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion} AND day >= ${day} AND n > 0 ORDER BY day`.pipe(
    decodeRows(
      Schema.Struct({
        day: Schema.String,
        version: Schema.String,
        n: Schema.Number,
        sum: Schema.Number,
        sumSq: Schema.Number,
        both: Schema.Number,
        gapSum: Schema.Number
      }),
      "read the daily scores"
    )
  )

/** Per day and stage since `day`: verdicts given and answers that could not be read, from the rollup. */
export const dailyVerdicts = (sql: SqlClient.SqlClient, behavior: Behavior, day: string) =>
  sql`SELECT day, stage, scored, unscored FROM judge_daily WHERE behavior = ${behavior} AND day >= ${day} ORDER BY day`.pipe(
    decodeRows(
      Schema.Struct({ day: Schema.String, stage: Schema.Number, scored: Schema.Number, unscored: Schema.Number }),
      "read the daily verdicts"
    )
  )

/** The five lowest-scored turns since `since` under a rubric version, lowest first, with their text. */
export const lowestScored = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string, since: number) =>
  sql`
    SELECT s.trace_id AS "traceId", s.turn_at AS at, s.score, s.reason, t.input_text AS input, t.output_text AS output
    FROM (SELECT trace_id, turn_at, score FROM trace_scores WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion} AND turn_at >= ${since}
          ORDER BY score, turn_at DESC LIMIT 5) low
    JOIN trace_scores s ON s.trace_id = low.trace_id AND s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion}
    JOIN traces t ON t.trace_id = s.trace_id ORDER BY s.score, s.turn_at DESC`.pipe(
    decodeRows(
      Schema.Struct({
        traceId: Schema.String,
        at: Schema.Number,
        score: Schema.Number,
        reason: Schema.String,
        input: Schema.NullOr(Schema.String),
        output: Schema.NullOr(Schema.String)
      }),
      "read the lowest scores"
    )
  )

/** One stage's answer as stored: a score, or "unscored" with NULL (never a fake 0), and the judge's reason. */
export interface StageVerdict {
  readonly stage: 1 | 2
  readonly model: string
  readonly score: number | null
  readonly reason: string
}

/**
 * A turn's verdicts under a rubric version, in one transaction: every stage's answer (`judge_scores`) and, when
 * a stage scored, the score the turn counts with (`trace_scores`: stage 2's where there is one). Reasons come
 * already redacted; `masked` is how many sentences were masked as addressed to the evaluator.
 */
export const storeVerdicts = (
  sql: SqlClient.SqlClient,
  v: {
    readonly traceId: string
    readonly behavior: Behavior
    readonly rubricVersion: string
    readonly turnAt: number
    readonly packVersion: string | null
    readonly stages: ReadonlyArray<StageVerdict>
    readonly masked: number
    readonly redactionVersion: number
  }
) =>
  writeTransaction(
    sql,
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const key = { trace_id: v.traceId, behavior: v.behavior, rubric_version: v.rubricVersion }
      yield* upsert(
        sql,
        "judge_scores",
        v.stages.map((s) => ({
          ...key,
          stage: s.stage,
          model: s.model,
          status: s.score === null ? "unscored" : "scored",
          score: s.score,
          reason: s.reason,
          created_at: now,
          redaction_version: v.redactionVersion,
          addressed_masked: v.masked
        })),
        ["trace_id", "behavior", "rubric_version", "stage", "model"]
      )
      const stage1 = v.stages.find((s) => s.stage === 1)?.score ?? null
      const stage2 = v.stages.find((s) => s.stage === 2)?.score ?? null
      const final = [...v.stages].reverse().find((s) => s.score !== null)
      if (final === undefined) return
      yield* upsert(
        sql,
        "trace_scores",
        {
          ...key,
          turn_at: v.turnAt,
          pack_version: v.packVersion,
          score: final.score,
          stage1_score: stage1,
          stage2_score: stage2,
          reason: final.reason,
          created_at: now,
          redaction_version: v.redactionVersion
        },
        ["trace_id", "behavior", "rubric_version"]
      )
    })
  ).pipe(Effect.mapError(storeError("store judge scores")))

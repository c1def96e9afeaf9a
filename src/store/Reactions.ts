/**
 * What people said about turns: users' 👍/👎 imported from DotClaw (`feedback`, with who reacted), a person's
 * grades (`labels`, `autotune label`), and alignment's attempts at a rubric (`align_attempts`), each read with
 * the judge's score of the turn where a figure compares the two.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import type { Behavior } from "../Domain/Behavior.js"
import { rowsChanged, storeError, writeTransaction } from "./Db.js"
import { insertIgnore, orderedJoin, upsert } from "./Dialect.js"
import { decodeFirst, decodeRows, NullableNumber } from "./Rows.js"
import { StoredTurn, TURN_COLUMNS } from "./Traces.js"

/** Each reacted turn's latest reaction (1 for 👎, 0 for 👍) and who gave it, as a subquery: what every agreement figure reads. */
const LATEST_REACTIONS = `(SELECT f.trace_id, f.user_id, CASE WHEN f.feedback_type = 'negative' THEN 1 ELSE 0 END AS negative FROM feedback f
  WHERE f.id = (SELECT g.id FROM feedback g WHERE g.trace_id = f.trace_id ORDER BY g.created_ms DESC, g.id DESC LIMIT 1))`

// Reactions ------------------------------------------------------------------------------------------------

/** A reaction as imported from DotClaw's user_feedback, its reason already redacted. */
export interface ReactionRow {
  readonly id: string
  readonly traceId: string
  readonly type: "positive" | "negative"
  readonly reason: string | null
  readonly userId: string | null
  readonly createdAt: string
  readonly redactionVersion: number
}

/** Stores new reactions (one already stored by its DotClaw id is kept as it is); how many were new. */
export const storeReactions = (sql: SqlClient.SqlClient, rows: ReadonlyArray<ReactionRow>) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const values = rows.map((r) => ({
      id: r.id,
      trace_id: r.traceId,
      feedback_type: r.type,
      reason: r.reason,
      user_id: r.userId,
      created_at: r.createdAt,
      created_ms: Date.parse(r.createdAt) || now,
      imported_at: now,
      redaction_version: r.redactionVersion
    }))
    return (
      values.length === 0
        ? Effect.succeed(0)
        : writeTransaction(sql, Effect.map(insertIgnore(sql, "feedback", values).raw, rowsChanged))
    ).pipe(Effect.mapError(storeError("store feedback")))
  })

/** The newest imported reaction's time as DotClaw wrote it, if any: where the next import starts. */
export const newestReactionAt = (sql: SqlClient.SqlClient) =>
  sql`SELECT MAX(created_at) AS at FROM feedback`.pipe(
    decodeFirst(Schema.Struct({ at: Schema.NullOr(Schema.String) }), "read feedback"),
    Effect.map((r) => r?.at ?? null)
  )

/** Reactions to turns not stored (yet): DotClaw's feedback can arrive before its trace is read. */
export const reactionsWithoutTurn = (sql: SqlClient.SqlClient) =>
  sql`SELECT COUNT(*) AS n FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.trace_id = f.trace_id)`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "count feedback"),
    Effect.map((r) => r?.n ?? 0)
  )

/** Every reaction stored, and the 👎 among them. */
export const reactionCounts = (sql: SqlClient.SqlClient) =>
  sql`SELECT COUNT(*) AS n, SUM(CASE WHEN feedback_type = 'negative' THEN 1 ELSE 0 END) AS negative FROM feedback`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number, negative: NullableNumber }), "count feedback"),
    Effect.map((r) => ({ total: r?.n ?? 0, negative: r?.negative ?? 0 }))
  )

/** The judge's scores of the turns users reacted to (their latest reaction), under this rubric version. */
export const reactionScores = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT s.score AS score, r.negative AS negative, r.trace_id AS "traceId"
    FROM ${sql.literal(LATEST_REACTIONS)} r
    -- SQLite's CROSS JOIN fixes the order: from the few reacted turns to their scores (it otherwise scanned
    -- every score of the behavior: 110 ms per behavior on 200,000 traces, now under 1 ms).
    ${orderedJoin(sql)} trace_scores s ON s.trace_id = r.trace_id AND s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion}`.pipe(
    decodeRows(
      Schema.Struct({ score: Schema.Number, negative: Schema.Number, traceId: Schema.String }),
      "read judge agreement with users"
    )
  )

/** A turn with a person's signal on it, as alignment reads it: the turn, who, the signal, the judge's score and reason. */
export const SignalRow = Schema.Struct({
  ...StoredTurn.fields,
  user: Schema.String,
  signal: Schema.Number,
  score: Schema.Number,
  reason: Schema.String
})
export type SignalRow = typeof SignalRow.Type

/** Users' latest reactions to turns the rubric version scored, with who reacted (the chat when DotClaw did not say). */
export const reactionSignals = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT ${sql.literal(TURN_COLUMNS)}, COALESCE(r.user_id, t.user_id, t.chat_id, 'unknown') AS "user", 1 - r.negative AS signal,
      COALESCE(s.stage1_score, s.score) AS score, s.reason AS reason
    FROM ${sql.literal(LATEST_REACTIONS)} r
    JOIN trace_scores s ON s.trace_id = r.trace_id AND s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion}
    JOIN traces t ON t.trace_id = r.trace_id
    ORDER BY r.trace_id`.pipe(decodeRows(SignalRow, "read the human signal for alignment"))

// Grades ---------------------------------------------------------------------------------------------------

/**
 * A person's grades of turns the rubric version scored, the latest per turn: a grade is a person's view of the
 * turn, whichever rubric version was active when it was given.
 */
export const gradeSignals = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT ${sql.literal(TURN_COLUMNS)}, 'operator' AS "user", l.grade AS signal, COALESCE(s.stage1_score, s.score) AS score,
      s.reason AS reason, l.labeled_at AS "labeledAt"
    FROM labels l
    JOIN trace_scores s ON s.trace_id = l.trace_id AND s.behavior = l.behavior AND s.rubric_version = ${rubricVersion}
    JOIN traces t ON t.trace_id = l.trace_id
    WHERE l.behavior = ${behavior}
    ORDER BY l.trace_id, l.labeled_at`.pipe(
    decodeRows(Schema.Struct({ ...SignalRow.fields, labeledAt: Schema.Number }), "read the human signal for alignment"),
    Effect.map((rows) => [...new Map(rows.map((r) => [r.traceId, r])).values()])
  )

/** The judge's scores against a person's grades, under this rubric version. */
export const gradeScores = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT l.grade AS grade, s.score AS score, l.trace_id AS "traceId" FROM labels l
    JOIN trace_scores s ON s.trace_id = l.trace_id AND s.behavior = l.behavior AND s.rubric_version = l.rubric_version
    WHERE l.behavior = ${behavior} AND l.rubric_version = ${rubricVersion}`.pipe(
    decodeRows(
      Schema.Struct({ grade: Schema.Number, score: Schema.Number, traceId: Schema.String }),
      "read the judge's agreement with labels"
    )
  )

/** The scored turns people reacted to or graded, with the reaction and the grade: calibration's points. */
export const humanSignalScores = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT s.trace_id AS "traceId", s.score AS score, r.negative AS negative, l.grade AS grade
    FROM (SELECT trace_id FROM feedback UNION SELECT trace_id FROM labels WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion}) h
    JOIN trace_scores s ON s.trace_id = h.trace_id AND s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion}
    LEFT JOIN ${sql.literal(LATEST_REACTIONS)} r ON r.trace_id = s.trace_id
    LEFT JOIN labels l ON l.trace_id = s.trace_id AND l.behavior = s.behavior AND l.rubric_version = s.rubric_version`.pipe(
    decodeRows(
      Schema.Struct({ traceId: Schema.String, score: Schema.Number, negative: NullableNumber, grade: NullableNumber }),
      "read the calibration"
    )
  )

const ToolNames = Schema.parseJson(Schema.Array(Schema.Struct({ name: Schema.String, ok: Schema.Boolean })))

/** A judged turn offered to a person to grade, with why it is offered (1: contradicts the reaction, 2: the judge unsure, 3: spread). */
export const GradeCandidate = Schema.Struct({
  traceId: Schema.String,
  message: Schema.String,
  reply: Schema.String,
  tools: ToolNames,
  score: Schema.Number,
  reason: Schema.String,
  stage1: NullableNumber,
  stage2: NullableNumber,
  negative: NullableNumber,
  priority: Schema.Number,
  grade: NullableNumber
})

/**
 * Judged turns of a rubric version a person has not graded (or all, `includeGraded`), those that teach most
 * first: a reaction the judge contradicts (👎 scored 0.6 or more, 👍 scored 0.4 or less), then the judge unsure
 * (its two stages 0.2 or more apart, or a score mid-scale), then the rest in each turn's fixed random order.
 */
export const gradeCandidates = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  rubricVersion: string,
  limit: number,
  includeGraded: boolean
) =>
  sql`
    SELECT s.trace_id AS "traceId", t.message_text AS message, t.output_text AS reply, t.tool_calls_json AS "tools",
      s.score AS score, s.reason AS reason, s.stage1_score AS stage1, s.stage2_score AS stage2, r.negative AS negative, l.grade AS grade,
      CASE WHEN (r.negative = 1 AND s.score >= 0.6) OR (r.negative = 0 AND s.score <= 0.4) THEN 1
           WHEN (s.stage2_score IS NOT NULL AND ABS(s.stage1_score - s.stage2_score) >= 0.2) OR (s.score > 0.4 AND s.score < 0.6) THEN 2
           ELSE 3 END AS priority
    FROM trace_scores s
    JOIN traces t ON t.trace_id = s.trace_id
    LEFT JOIN ${sql.literal(LATEST_REACTIONS)} r ON r.trace_id = s.trace_id
    LEFT JOIN labels l ON l.trace_id = s.trace_id AND l.behavior = s.behavior AND l.rubric_version = s.rubric_version
    WHERE s.behavior = ${behavior} AND s.rubric_version = ${rubricVersion} ${includeGraded ? sql.literal("") : sql.literal("AND l.grade IS NULL")}
    ORDER BY priority, t.sample_draw, s.trace_id
    LIMIT ${limit}`.pipe(decodeRows(GradeCandidate, "read the turns to grade"))

/** Keeps a grade (1-5) for a rubric version, replacing an earlier one. */
export const storeGrade = (
  sql: SqlClient.SqlClient,
  g: {
    readonly traceId: string
    readonly behavior: Behavior
    readonly rubricVersion: string
    readonly grade: number
    readonly source: string
  }
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    upsert(
      sql,
      "labels",
      [
        {
          trace_id: g.traceId,
          behavior: g.behavior,
          rubric_version: g.rubricVersion,
          grade: g.grade,
          source: g.source,
          labeled_at: now
        }
      ],
      ["trace_id", "behavior", "rubric_version"]
    )
  ).pipe(Effect.asVoid, Effect.mapError(storeError("keep a grade")))

/** Keeps several grades in one transaction: all or none. */
export const storeGrades = (sql: SqlClient.SqlClient, grades: ReadonlyArray<Parameters<typeof storeGrade>[1]>) =>
  writeTransaction(
    sql,
    Effect.forEach(grades, (g) => storeGrade(sql, g), { discard: true })
  )

export const removeGrade = (sql: SqlClient.SqlClient, traceId: string, behavior: Behavior, rubricVersion: string) =>
  sql`DELETE FROM labels WHERE trace_id = ${traceId} AND behavior = ${behavior} AND rubric_version = ${rubricVersion}`.pipe(
    Effect.asVoid,
    Effect.mapError(storeError("remove a grade"))
  )

export const gradedCount = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`SELECT COUNT(*) AS n FROM labels WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion}`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "count grades"),
    Effect.map((r) => r?.n ?? 0)
  )

// Alignment's attempts -------------------------------------------------------------------------------------

/** An attempt's record as alignment writes it: its held-out test, if it ran one, and what it dropped. */
const AttemptDetail = Schema.parseJson(
  Schema.Struct({
    test: Schema.optional(
      Schema.Struct({
        n: Schema.Number,
        current: NullableNumber,
        candidate: NullableNumber,
        lower: NullableNumber,
        alpha: Schema.Number,
        why: Schema.String
      })
    ),
    dropped: Schema.optional(Schema.Array(Schema.String))
  })
)

export const recordAttempt = (
  sql: SqlClient.SqlClient,
  a: {
    readonly behavior: Behavior
    readonly rubricVersion: string
    readonly signalTurns: number
    readonly tested: boolean
    readonly alpha: number | null
    readonly outcome: string
    readonly candidate: string | null
    readonly detail: unknown
  }
) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      sql`INSERT INTO align_attempts ${sql.insert({
        id: randomUUID(),
        behavior: a.behavior,
        rubric_version: a.rubricVersion,
        at: now,
        signal_turns: a.signalTurns,
        tested: a.tested ? 1 : 0,
        alpha: a.alpha,
        outcome: a.outcome,
        candidate_version: a.candidate,
        detail_json: JSON.stringify(a.detail)
      })}`
  ).pipe(Effect.asVoid, Effect.mapError(storeError("record an alignment attempt")))

/** The latest attempt on this version of the rubric, and how many held-out tests its life has spent. */
export const attemptsOn = (sql: SqlClient.SqlClient, behavior: Behavior, rubricVersion: string) =>
  sql`
    SELECT MAX(at) AS at, MAX(signal_turns) AS "signalTurns", SUM(tested) AS tested FROM align_attempts
    WHERE behavior = ${behavior} AND rubric_version = ${rubricVersion}`.pipe(
    decodeFirst(
      Schema.Struct({ at: NullableNumber, signalTurns: NullableNumber, tested: NullableNumber }),
      "read alignment attempts"
    ),
    Effect.map((r) =>
      r === undefined || r.at === null
        ? undefined
        : { at: r.at, signalTurns: r.signalTurns ?? 0, tested: r.tested ?? 0 }
    )
  )

const Attempt = Schema.Struct({
  at: Schema.Number,
  outcome: Schema.String,
  rubricVersion: Schema.String,
  candidate: Schema.NullOr(Schema.String),
  detail: Schema.String
})
// A record that does not read (an older shape) shows as an attempt without a test.
const decodeAttemptDetail = (text: string) =>
  Option.getOrElse(Schema.decodeUnknownOption(AttemptDetail)(text), (): typeof AttemptDetail.Type => ({}))

/** A behavior's attempts since `since`, newest first (at most `limit`), each with its test and why it ended. */
export const recentAttempts = (sql: SqlClient.SqlClient, behavior: Behavior, since: number, limit: number) =>
  sql`
    SELECT at, outcome, rubric_version AS "rubricVersion", candidate_version AS candidate, detail_json AS "detail" FROM align_attempts
    WHERE behavior = ${behavior} AND at >= ${since} ORDER BY at DESC LIMIT ${limit}`.pipe(
    decodeRows(Attempt, "read alignment attempts"),
    Effect.map((rows) => rows.map(({ detail, ...a }) => ({ ...a, ...attemptOutcome(decodeAttemptDetail(detail)) })))
  )

/** An attempt's held-out test, if it ran one, and why it ended, in words. */
const attemptOutcome = (d: typeof AttemptDetail.Type) => ({
  test:
    d.test === undefined
      ? null
      : { n: d.test.n, current: d.test.current, candidate: d.test.candidate, lower: d.test.lower, alpha: d.test.alpha },
  why:
    d.test?.why ??
    (d.dropped !== undefined && d.dropped.length > 0
      ? `proposals dropped: ${d.dropped.join("; ")}`
      : "no candidate agreed better on the alignment split")
})

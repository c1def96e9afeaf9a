/**
 * A person's grades of judged turns (`autotune label`): which turns to offer first, storing and undoing a
 * grade, and the JSONL lines of `--export` / `--import` for people who label elsewhere. Grades are kept per
 * rubric version; they are never part of a request to a provider.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Either } from "effect"
import { type Behavior, isBehavior } from "../Domain/Behavior.js"
import { upsert } from "../store/Dialect.js"
import { LATEST_REACTIONS } from "./Alignment.js"
import type { Rubric } from "./Rubrics.js"

/** Why a turn is offered: people's reaction against the judge first, then the judge unsure, then a spread. */
export type LabelWhy = "contradicts the user's reaction" | "the judge is unsure" | "spread"

export interface LabelTurn {
  readonly traceId: string
  readonly behavior: Behavior
  readonly rubricVersion: string
  readonly message: string
  readonly reply: string
  /** The tools the turn called, in one line ("weather ok, reminder.create failed"). */
  readonly tools: string
  readonly score: number
  readonly reason: string
  readonly stage1: number | null
  readonly stage2: number | null
  readonly reaction: "positive" | "negative" | null
  readonly why: LabelWhy
  /** The grade already given for this rubric version, if any (export only). */
  readonly grade: number | null
}

const WHY: Record<number, LabelWhy> = { 1: "contradicts the user's reaction", 2: "the judge is unsure", 3: "spread" }

const toolsLine = (json: string): string => {
  const calls = JSON.parse(json) as ReadonlyArray<{ readonly name?: unknown; readonly ok?: unknown }>
  return calls.length === 0 ? "no tools" : calls.map((c) => `${String(c.name)} ${c.ok === false ? "failed" : "ok"}`).join(", ")
}

/**
 * Judged turns of a behavior (current rubric) a person has not graded, those that teach most first: a reaction
 * the judge contradicts (👎 scored 0.6 or more, 👍 scored 0.4 or less), then the judge unsure (its two stages
 * 0.2 or more apart, or a score mid-scale), then the rest in each turn's fixed random order (a spread).
 */
export const labelQueue = (sql: SqlClient.SqlClient, rubric: Rubric, limit: number, options: { readonly includeGraded?: boolean } = {}) => {
  const { behavior, version } = rubric
  const graded = options.includeGraded === true ? sql.literal("") : sql.literal("AND l.grade IS NULL")
  return sql<{
    traceId: string; message: string; reply: string; toolsJson: string; score: number; reason: string
    stage1: number | null; stage2: number | null; negative: number | null; priority: number; grade: number | null
  }>`
    SELECT s.trace_id AS "traceId", t.message_text AS message, t.output_text AS reply, t.tool_calls_json AS "toolsJson",
      s.score AS score, s.reason AS reason, s.stage1_score AS stage1, s.stage2_score AS stage2, r.negative AS negative, l.grade AS grade,
      CASE WHEN (r.negative = 1 AND s.score >= 0.6) OR (r.negative = 0 AND s.score <= 0.4) THEN 1
           WHEN (s.stage2_score IS NOT NULL AND ABS(s.stage1_score - s.stage2_score) >= 0.2) OR (s.score > 0.4 AND s.score < 0.6) THEN 2
           ELSE 3 END AS priority
    FROM trace_scores s
    JOIN traces t ON t.trace_id = s.trace_id
    LEFT JOIN ${sql.literal(LATEST_REACTIONS)} r ON r.trace_id = s.trace_id
    LEFT JOIN labels l ON l.trace_id = s.trace_id AND l.behavior = s.behavior AND l.rubric_version = s.rubric_version
    WHERE s.behavior = ${behavior} AND s.rubric_version = ${version} ${graded}
    ORDER BY priority, t.sample_draw, s.trace_id
    LIMIT ${limit}`.pipe(
    Effect.map((rows): ReadonlyArray<LabelTurn> =>
      rows.map((r) => ({
        traceId: r.traceId,
        behavior,
        rubricVersion: version,
        message: r.message,
        reply: r.reply,
        tools: toolsLine(r.toolsJson),
        score: Number(r.score),
        reason: r.reason,
        stage1: r.stage1 === null ? null : Number(r.stage1),
        stage2: r.stage2 === null ? null : Number(r.stage2),
        reaction: r.negative === null ? null : Number(r.negative) === 1 ? "negative" : "positive",
        why: WHY[Number(r.priority)]!,
        grade: r.grade === null ? null : Number(r.grade)
      }))
    )
  )
}

/** Keeps a grade (1-5) for the behavior's current rubric version, replacing an earlier one. */
export const storeGrade = (sql: SqlClient.SqlClient, traceId: string, rubric: Rubric, grade: number, source: string) =>
  upsert(sql, "labels", [{ trace_id: traceId, behavior: rubric.behavior, rubric_version: rubric.version, grade, source, labeled_at: Date.now() }], ["trace_id", "behavior", "rubric_version"])

export const removeGrade = (sql: SqlClient.SqlClient, traceId: string, rubric: Rubric) =>
  sql`DELETE FROM labels WHERE trace_id = ${traceId} AND behavior = ${rubric.behavior} AND rubric_version = ${rubric.version}`

export const gradedCount = (sql: SqlClient.SqlClient, rubric: Rubric) =>
  sql<{ n: number }>`SELECT COUNT(*) AS n FROM labels WHERE behavior = ${rubric.behavior} AND rubric_version = ${rubric.version}`.pipe(
    Effect.map((r) => Number(r[0]?.n ?? 0))
  )

/** A line of `--export`: the turn as stored (redacted), the judge's view, and the grade (null: not graded yet). */
export const exportLine = (t: LabelTurn): string =>
  JSON.stringify({
    trace_id: t.traceId, behavior: t.behavior, rubric_version: t.rubricVersion, grade: t.grade, why: t.why,
    judge_score: t.score, judge_reason: t.reason, reaction: t.reaction, message: t.message, reply: t.reply, tools: t.tools
  })

export interface ImportedGrade {
  readonly traceId: string
  readonly behavior: Behavior
  readonly grade: number
}

/**
 * One line of `--import`: a grade, "ungraded" (a line of an export left without one: skipped), or the one
 * sentence that says what is wrong with it. Only trace_id, behavior and grade are read.
 */
export const parseImportLine = (line: string): Either.Either<ImportedGrade | "ungraded", string> => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return Either.left("not a JSON object")
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return Either.left("not a JSON object")
  const o = value as Record<string, unknown>
  if (typeof o["trace_id"] !== "string" || o["trace_id"].length === 0) return Either.left("trace_id is missing")
  if (!isBehavior(o["behavior"])) return Either.left(`behavior must be one of the six behaviors, got ${JSON.stringify(o["behavior"] ?? null)}`)
  if (o["grade"] === null || o["grade"] === undefined) return Either.right("ungraded")
  const g = o["grade"]
  if (typeof g !== "number" || !Number.isInteger(g) || g < 1 || g > 5) return Either.left(`grade must be a whole number from 1 to 5 (or null), got ${JSON.stringify(g)}`)
  return Either.right({ traceId: o["trace_id"], behavior: o["behavior"], grade: g })
}

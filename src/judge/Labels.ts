/**
 * A person's grades of judged turns (`autotune label`): which turns to offer first, storing and undoing a
 * grade, and the JSONL lines of `--export` / `--import` for people who label elsewhere. Grades are kept per
 * rubric version; they are never part of a request to a provider.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Either } from "effect"
import { type Behavior, isBehavior } from "../Domain/Behavior.js"
import {
  gradeCandidates,
  gradedCount as gradedCountOf,
  removeGrade as removeGradeRow,
  storeGrade as storeGradeRow
} from "../store/Reactions.js"
import type { Rubric } from "./Prompts.js"

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

const toolsLine = (calls: ReadonlyArray<{ readonly name: string; readonly ok: boolean }>): string =>
  calls.length === 0 ? "no tools" : calls.map((c) => `${c.name} ${c.ok ? "ok" : "failed"}`).join(", ")

/**
 * Judged turns of a behavior (current rubric) a person has not graded, those that teach most first: a reaction
 * the judge contradicts, then the judge unsure, then a spread (store/Reactions.ts `gradeCandidates`).
 */
export const labelQueue = (
  sql: SqlClient.SqlClient,
  rubric: Rubric,
  limit: number,
  options: { readonly includeGraded?: boolean } = {}
) => {
  const { behavior, version } = rubric
  return gradeCandidates(sql, behavior, version, limit, options.includeGraded === true).pipe(
    Effect.map((rows): ReadonlyArray<LabelTurn> =>
      rows.map((r) => ({
        traceId: r.traceId,
        behavior,
        rubricVersion: version,
        message: r.message,
        reply: r.reply,
        tools: toolsLine(r.tools),
        score: r.score,
        reason: r.reason,
        stage1: r.stage1,
        stage2: r.stage2,
        reaction: r.negative === null ? null : r.negative === 1 ? "negative" : "positive",
        why: WHY[r.priority]!,
        grade: r.grade
      }))
    )
  )
}

/** Keeps a grade (1-5) for the behavior's current rubric version, replacing an earlier one. */
export const storeGrade = (sql: SqlClient.SqlClient, traceId: string, rubric: Rubric, grade: number, source: string) =>
  storeGradeRow(sql, { traceId, behavior: rubric.behavior, rubricVersion: rubric.version, grade, source })

export const removeGrade = (sql: SqlClient.SqlClient, traceId: string, rubric: Rubric) =>
  removeGradeRow(sql, traceId, rubric.behavior, rubric.version)

export const gradedCount = (sql: SqlClient.SqlClient, rubric: Rubric) =>
  gradedCountOf(sql, rubric.behavior, rubric.version)

/** A line of `--export`: the turn as stored (redacted), the judge's view, and the grade (null: not graded yet). */
export const exportLine = (t: LabelTurn): string =>
  JSON.stringify({
    trace_id: t.traceId,
    behavior: t.behavior,
    rubric_version: t.rubricVersion,
    grade: t.grade,
    why: t.why,
    judge_score: t.score,
    judge_reason: t.reason,
    reaction: t.reaction,
    message: t.message,
    reply: t.reply,
    tools: t.tools
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
  if (!isBehavior(o["behavior"]))
    return Either.left(`behavior must be one of the six behaviors, got ${JSON.stringify(o["behavior"] ?? null)}`)
  if (o["grade"] === null || o["grade"] === undefined) return Either.right("ungraded")
  const g = o["grade"]
  if (typeof g !== "number" || !Number.isInteger(g) || g < 1 || g > 5)
    return Either.left(`grade must be a whole number from 1 to 5 (or null), got ${JSON.stringify(g)}`)
  return Either.right({ traceId: o["trace_id"], behavior: o["behavior"], grade: g })
}

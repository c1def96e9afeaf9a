/**
 * The human signal a behavior's alignment reads from the store: users' latest reactions (for the rubrics a
 * 👍/👎 speaks to) or a person's grades, each with the current rubric's stage-1 score and the turn as the judge
 * reads it; and the record of earlier attempts.
 */
import { Effect } from "effect"
import type { SqlClient } from "@effect/sql"
import { createHash } from "node:crypto"
import type { Behavior } from "../Domain/Behavior.js"
import { LATEST_REACTIONS } from "../judge/Alignment.js"
import { JUDGE_COLUMNS, type JudgeRow, type Rubric } from "../judge/Rubrics.js"
import { storeError } from "../store/Db.js"
import { splitOf } from "../judge/Agreement.js"
import { capPerUser, REACTION_BEHAVIORS, type SignalKind, type SignalTurn } from "./Evidence.js"

export interface SignalRow extends SignalTurn, JudgeRow {
  readonly reason: string
}

export interface Signals {
  readonly kind: SignalKind
  readonly align: ReadonlyArray<SignalRow>
  readonly heldOut: ReadonlyArray<SignalRow>
}

export interface LastAttempt {
  readonly at: number
  readonly signalTurns: number
  readonly tested: number
}

export const makeSignals = (sql: SqlClient.SqlClient) => {
  const fail = storeError("read the human signal for alignment")

  const reactions = (rubric: Rubric) =>
    sql<SignalRow>`
      SELECT ${sql.literal(JUDGE_COLUMNS)}, COALESCE(r.user_id, t.user_id, t.chat_id, 'unknown') AS "user", 1 - r.negative AS signal,
        COALESCE(s.stage1_score, s.score) AS score, s.reason AS reason
      FROM ${sql.literal(LATEST_REACTIONS)} r
      JOIN trace_scores s ON s.trace_id = r.trace_id AND s.behavior = ${rubric.behavior} AND s.rubric_version = ${rubric.version}
      JOIN traces t ON t.trace_id = r.trace_id
      ORDER BY r.trace_id`.pipe(Effect.mapError(fail))

  // A grade is a person's view of the turn, whichever rubric version was active when it was given: the latest counts.
  const grades = (rubric: Rubric) =>
    sql<SignalRow & { labeledAt: number }>`
      SELECT ${sql.literal(JUDGE_COLUMNS)}, 'operator' AS "user", l.grade AS signal, COALESCE(s.stage1_score, s.score) AS score,
        s.reason AS reason, l.labeled_at AS "labeledAt"
      FROM labels l
      JOIN trace_scores s ON s.trace_id = l.trace_id AND s.behavior = l.behavior AND s.rubric_version = ${rubric.version}
      JOIN traces t ON t.trace_id = l.trace_id
      WHERE l.behavior = ${rubric.behavior}
      ORDER BY l.trace_id, l.labeled_at`.pipe(
      Effect.map((rows) => [...new Map(rows.map((r) => [r.traceId, r])).values()]),
      Effect.mapError(fail)
    )

  const splitCapped = (kind: SignalKind, rows: ReadonlyArray<SignalRow>): Signals => {
    const clean = rows.map((r) => ({ ...r, signal: Number(r.signal), score: Number(r.score) }))
    // In an order of their own (a hash), so that a split cut to what the call limit affords keeps every person's share.
    const shuffled = (rows: ReadonlyArray<SignalRow>) =>
      rows.map((r) => ({ r, k: createHash("sha256").update(`order:${r.traceId}`).digest("hex") })).sort((a, b) => (a.k < b.k ? -1 : 1)).map((x) => x.r)
    return {
      kind,
      align: shuffled(capPerUser(clean.filter((r) => splitOf(r.traceId) === "align"), kind)),
      heldOut: shuffled(capPerUser(clean.filter((r) => splitOf(r.traceId) === "held-out"), kind))
    }
  }

  /** Reactions where they speak to this rubric and are enough to go by; a person's grades otherwise. */
  const signalsFor = (rubric: Rubric, minTurns: number) =>
    Effect.gen(function* () {
      if (REACTION_BEHAVIORS.has(rubric.behavior)) {
        const fromReactions = splitCapped("reactions", yield* reactions(rubric))
        if (fromReactions.align.length >= minTurns) return fromReactions
        const fromGrades = splitCapped("labels", yield* grades(rubric))
        return fromGrades.align.length >= minTurns ? fromGrades : fromReactions
      }
      return splitCapped("labels", yield* grades(rubric))
    })

  /** The latest attempt on this version of the rubric, and how many held-out tests its life has spent. */
  const lastAttempt = (behavior: Behavior, version: string) =>
    sql<{ at: number; signalTurns: number; tested: number }>`
      SELECT MAX(at) AS at, MAX(signal_turns) AS "signalTurns", SUM(tested) AS tested FROM align_attempts
      WHERE behavior = ${behavior} AND rubric_version = ${version}`.pipe(
      Effect.map(([r]): LastAttempt | undefined => (r === undefined || r.at === null ? undefined : { at: Number(r.at), signalTurns: Number(r.signalTurns), tested: Number(r.tested ?? 0) })),
      Effect.mapError(storeError("read alignment attempts"))
    )

  return { signalsFor, lastAttempt } as const
}

/** An attempt's stored record (align_attempts.detail_json) read back: its held-out test, if it ran one, and why it ended. */
export const attemptDetail = (detailJson: string) => {
  const d = JSON.parse(detailJson) as { test?: { n: number; current: number | null; candidate: number | null; lower: number | null; alpha: number; why: string }; dropped?: ReadonlyArray<string> }
  const why = d.test?.why ?? (d.dropped !== undefined && d.dropped.length > 0 ? `proposals dropped: ${d.dropped.join("; ")}` : "no candidate agreed better on the alignment split")
  return { test: d.test === undefined ? null : { n: d.test.n, current: d.test.current, candidate: d.test.candidate, lower: d.test.lower, alpha: d.test.alpha }, why }
}

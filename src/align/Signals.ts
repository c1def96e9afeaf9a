/**
 * The human signal a behavior's alignment reads from the store: users' latest reactions (for the rubrics a
 * 👍/👎 speaks to) or a person's grades, each with the current rubric's stage-1 score and the turn as the judge
 * reads it; and the record of earlier attempts.
 */
import { Effect } from "effect"
import type { SqlClient } from "@effect/sql"
import { createHash } from "node:crypto"
import type { Behavior } from "../Domain/Behavior.js"
import type { Rubric } from "../judge/Prompts.js"
import type { StoreError } from "../Domain/Errors.js"
import { attemptsOn, gradeSignals, reactionSignals, type SignalRow } from "../store/Reactions.js"
import { splitOf } from "../judge/Agreement.js"
import { capPerUser, REACTION_BEHAVIORS, type SignalKind } from "./Evidence.js"

export type { SignalRow }

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

/** Where a behavior's human signal and its earlier attempts are read. */
export interface SignalSource {
  readonly signalsFor: (rubric: Rubric, minTurns: number) => Effect.Effect<Signals, StoreError>
  readonly lastAttempt: (behavior: Behavior, version: string) => Effect.Effect<LastAttempt | undefined, StoreError>
}

export const makeSignals = (sql: SqlClient.SqlClient): SignalSource => {
  const reactions = (rubric: Rubric) => reactionSignals(sql, rubric.behavior, rubric.version)
  const grades = (rubric: Rubric) => gradeSignals(sql, rubric.behavior, rubric.version)

  const splitCapped = (kind: SignalKind, rows: ReadonlyArray<SignalRow>): Signals => {
    const clean = rows.map((r) => ({ ...r, signal: Number(r.signal), score: Number(r.score) }))
    // In an order of their own (a hash), so that a split cut to what the call limit affords keeps every person's share.
    const shuffled = (rows: ReadonlyArray<SignalRow>) =>
      rows
        .map((r) => ({ r, k: createHash("sha256").update(`order:${r.traceId}`).digest("hex") }))
        .sort((a, b) => (a.k < b.k ? -1 : 1))
        .map((x) => x.r)
    return {
      kind,
      align: shuffled(
        capPerUser(
          clean.filter((r) => splitOf(r.traceId) === "align"),
          kind
        )
      ),
      heldOut: shuffled(
        capPerUser(
          clean.filter((r) => splitOf(r.traceId) === "held-out"),
          kind
        )
      )
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
  const lastAttempt = (behavior: Behavior, version: string): Effect.Effect<LastAttempt | undefined, StoreError> =>
    attemptsOn(sql, behavior, version)

  return { signalsFor, lastAttempt } as const
}

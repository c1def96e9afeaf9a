/**
 * When the people's signal may change a rubric, and when a changed rubric has earned its place: pure. Every
 * figure here is computed from values the store hands in; nothing asks a model.
 *
 * - The turns with a human signal (a user's latest 👍/👎, or a person's grade) are split for good by a hash of
 *   the trace id (judge/Agreement.ts's splitOf): the alignment split is shown to reflection and re-judged by
 *   candidates; the held-out split is never shown to any model except the judge, and decides adoption. An
 *   aligned rubric's agreement is reported on the held-out split only.
 * - No one person carries a change: each user counts with at most PER_USER turns in a split, reactions need at
 *   least two people, and the adopted candidate must still be ahead with any one user's turns left out.
 * - Every test on the held-out split spends part of the rubric's error budget: attempt k may falsely adopt with
 *   probability at most LIFE_ALPHA * 6 / (pi^2 k^2), so over the rubric's whole life, however many attempts, at
 *   most LIFE_ALPHA. Only one candidate per attempt (the best on the alignment split) is tested.
 */
import { createHash } from "node:crypto"
import type { Behavior } from "../Domain/Behavior.js"
import { rng } from "../Domain/Random.js"
import { aucOf, spearman } from "../judge/Agreement.js"

/** A 👍/👎 is about the whole reply a user read. These rubrics judge what a user sees in it. */
export const REACTION_BEHAVIORS: ReadonlySet<Behavior> = new Set([
  "task-extraction",
  "response-quality",
  "tool-outcome"
])

/** The chance of adopting a rubric that is no better, over the life of the rubric it replaces. */
export const LIFE_ALPHA = 0.05
/** Turns one person may contribute to a split. */
export const PER_USER = 20
/** Bootstrap resamples for the paired interval; the seed is fixed per attempt, so the figures can be checked. */
export const RESAMPLES = 2000

export type SignalKind = "reactions" | "labels"

/** One turn with a human signal and the current rubric's score of it. */
export interface SignalTurn {
  readonly traceId: string
  /** Who gave the signal: the user who reacted, or "operator" for grades. */
  readonly user: string
  /** 1 for 👍 and 0 for 👎; or a grade 1-5. */
  readonly signal: number
  /** The current rubric's score (stage 1). */
  readonly score: number
}

/** Each user's turns in a stable order (by hash), at most PER_USER of them. Grades are the operator's own: not capped. */
export const capPerUser = <T extends { readonly traceId: string; readonly user: string }>(
  turns: ReadonlyArray<T>,
  kind: SignalKind
): Array<T> => {
  if (kind === "labels") return [...turns]
  const byUser = new Map<string, Array<T>>()
  for (const t of turns) byUser.set(t.user, [...(byUser.get(t.user) ?? []), t])
  const key = (t: T) => createHash("sha256").update(`cap:${t.traceId}`).digest("hex")
  return [...byUser.values()].flatMap((ts) =>
    ts.length <= PER_USER
      ? ts
      : ts
          .map((t) => ({ t, k: key(t) }))
          .sort((a, b) => (a.k < b.k ? -1 : 1))
          .slice(0, PER_USER)
          .map((x) => x.t)
  )
}

/** Agreement of scores with the signal: AUC for reactions (0.5 is chance), Spearman for grades; null if unmeasurable. */
export const agreementOf = (
  kind: SignalKind,
  signals: ReadonlyArray<number>,
  scores: ReadonlyArray<number>
): number | null => {
  if (kind === "labels") return spearman(scores, signals)
  const positive = scores.filter((_, i) => signals[i] === 1)
  const negative = scores.filter((_, i) => signals[i] === 0)
  return positive.length === 0 || negative.length === 0 ? null : aucOf(positive, negative)
}

/** Both signs present: 👍 and 👎, or grades at or below 2 and at or above 4. */
export const bothSigns = (kind: SignalKind, turns: ReadonlyArray<SignalTurn>) =>
  kind === "reactions"
    ? turns.some((t) => t.signal === 1) && turns.some((t) => t.signal === 0)
    : turns.some((t) => t.signal <= 2) && turns.some((t) => t.signal >= 4)

export interface Readiness {
  readonly ready: boolean
  readonly why: string
  readonly current: number | null
}

/** Whether an attempt is worth its calls: enough signal of both signs from enough people, and agreement below the bar. */
export const readiness = (
  kind: SignalKind,
  align: ReadonlyArray<SignalTurn>,
  heldOut: ReadonlyArray<SignalTurn>,
  settings: { readonly minTurns: number; readonly auc: number; readonly spearman: number }
): Readiness => {
  const what = kind === "reactions" ? "reacted" : "graded"
  const current = agreementOf(
    kind,
    align.map((t) => t.signal),
    align.map((t) => t.score)
  )
  const users = new Set(align.map((t) => t.user)).size
  if (align.length < settings.minTurns)
    return {
      ready: false,
      current,
      why: `${align.length} ${what} turns on the alignment split; needs ${settings.minTurns}`
    }
  if (heldOut.length < Math.ceil(settings.minTurns / 2))
    return {
      ready: false,
      current,
      why: `${heldOut.length} ${what} turns held out; needs ${Math.ceil(settings.minTurns / 2)}`
    }
  if (!bothSigns(kind, align) || !bothSigns(kind, heldOut))
    return {
      ready: false,
      current,
      why:
        kind === "reactions"
          ? "needs both 👍 and 👎 on each split"
          : "needs both low (1-2) and high (4-5) grades on each split"
    }
  if (kind === "reactions" && users < 2)
    return {
      ready: false,
      current,
      why: `reactions from ${users} person; one person's reactions never change a rubric (grade turns with \`autotune label\`)`
    }
  const bar = kind === "reactions" ? settings.auc : settings.spearman
  const name = kind === "reactions" ? "AUC" : "Spearman"
  if (current === null) return { ready: false, current, why: `${name} cannot be measured yet` }
  if (current >= bar)
    return {
      ready: false,
      current,
      why: `the judge agrees: ${name} ${current.toFixed(2)} >= ${bar} on ${align.length} ${what} turns`
    }
  return {
    ready: true,
    current,
    why: `${name} ${current.toFixed(2)} < ${bar} on ${align.length} ${what} turns from ${users} ${kind === "reactions" ? "people" : "grader(s)"}`
  }
}

/** The error attempt `k` (1, 2, ...) of a rubric's life may spend; the sum over all k is LIFE_ALPHA. */
export const alphaFor = (k: number) => (LIFE_ALPHA * 6) / (Math.PI * Math.PI * k * k)

// Standard normal distribution: the CDF by Abramowitz-Stegun 7.1.26 (error < 1.5e-7), its inverse by bisection.
const phi = (x: number) => {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2)
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-(x * x) / 2)
  return x >= 0 ? (1 + y) / 2 : (1 - y) / 2
}
export const zFor = (alpha: number) => {
  let lo = 0
  let hi = 10
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (1 - phi(mid) > alpha) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** A held-out turn judged by both rubrics. */
export interface PairedTurn {
  readonly traceId: string
  readonly user: string
  readonly signal: number
  readonly current: number
  readonly candidate: number
}

export interface PairedTest {
  readonly n: number
  readonly current: number | null
  readonly candidate: number | null
  /** candidate - current. */
  readonly difference: number | null
  /** One-sided lower bound at `alpha`: the difference less z(alpha) bootstrap standard errors. */
  readonly lower: number | null
  readonly alpha: number
  /** The smallest difference with any one user's turns left out (null with a single user or grades). */
  readonly withoutAnyOneUser: number | null
  readonly adopt: boolean
  readonly why: string
}

const differenceOf = (kind: SignalKind, turns: ReadonlyArray<PairedTurn>) => {
  const signals = turns.map((t) => t.signal)
  const a = agreementOf(
    kind,
    signals,
    turns.map((t) => t.current)
  )
  const b = agreementOf(
    kind,
    signals,
    turns.map((t) => t.candidate)
  )
  return a === null || b === null ? null : { current: a, candidate: b, difference: b - a }
}

/**
 * The paired test on the held-out split: the candidate's agreement less the current rubric's on the same
 * turns, its standard error by a bootstrap of turns (both scores of a turn drawn together), and the one-sided
 * lower bound at the attempt's alpha. Adopted only when the bound is above 0 and, for reactions, the
 * difference stays above 0 with any one user's turns removed.
 */
export const pairedTest = (
  kind: SignalKind,
  turns: ReadonlyArray<PairedTurn>,
  alpha: number,
  seed: number
): PairedTest => {
  const n = turns.length
  const base = { n, alpha, current: null, candidate: null, difference: null, lower: null, withoutAnyOneUser: null }
  const point = differenceOf(kind, turns)
  if (point === null) return { ...base, adopt: false, why: "agreement cannot be measured on the held-out turns" }
  const draws = kind === "reactions" ? aucDraws(turns, seed) : genericDraws(kind, turns, seed)
  const mean = draws.reduce((a, b) => a + b, 0) / Math.max(1, draws.length)
  const se = Math.sqrt(draws.reduce((a, d) => a + (d - mean) ** 2, 0) / Math.max(1, draws.length - 1))
  const lower = point.difference - zFor(alpha) * se
  const users = [...new Set(turns.map((t) => t.user))]
  const withoutAnyOneUser =
    kind === "reactions" && users.length > 1
      ? Math.min(
          ...users.map(
            (u) =>
              differenceOf(
                kind,
                turns.filter((t) => t.user !== u)
              )?.difference ?? -1
          )
        )
      : null
  const fixed = (x: number) => (x >= 0 ? "+" : "") + x.toFixed(3)
  const tested = { ...base, ...point, lower, withoutAnyOneUser }
  if (!(lower > 0))
    return {
      ...tested,
      adopt: false,
      why: `held-out difference ${fixed(point.difference)}, lower bound ${fixed(lower)} at alpha ${alpha.toFixed(4)}: not above 0`
    }
  if (kind === "reactions" && (users.length < 2 || withoutAnyOneUser === null || !(withoutAnyOneUser > 0)))
    return {
      ...tested,
      adopt: false,
      why: `held-out lower bound ${fixed(lower)} > 0, but one person's reactions carry it (difference ${withoutAnyOneUser === null ? "unmeasured" : fixed(withoutAnyOneUser)} without them)`
    }
  return {
    ...tested,
    adopt: true,
    why: `held-out difference ${fixed(point.difference)}, lower bound ${fixed(lower)} > 0 at alpha ${alpha.toFixed(4)} on ${n} turns`
  }
}

/** Bootstrap draws of any agreement difference: each resample of turns computed afresh. */
const genericDraws = (kind: SignalKind, turns: ReadonlyArray<PairedTurn>, seed: number): Array<number> => {
  const next = rng(seed)
  const n = turns.length
  const draws: Array<number> = []
  for (let r = 0; r < RESAMPLES; r++) {
    const d = differenceOf(
      kind,
      Array.from({ length: n }, () => turns[Math.floor(next() * n)]!)
    )
    if (d !== null) draws.push(d.difference)
  }
  return draws
}

/**
 * The same for the AUC difference, without sorting each resample: the AUC of a resample is the count-weighted
 * mean over its (👍, 👎) pairs of each pair's concordance, so the pairs' differences are computed once.
 */
const aucDraws = (turns: ReadonlyArray<PairedTurn>, seed: number): Array<number> => {
  const pos = turns.map((t, i) => (t.signal === 1 ? i : -1)).filter((i) => i >= 0)
  const neg = turns.map((t, i) => (t.signal === 0 ? i : -1)).filter((i) => i >= 0)
  const concord = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0)
  const diff = pos.map((i) =>
    neg.map((j) => concord(turns[i]!.candidate, turns[j]!.candidate) - concord(turns[i]!.current, turns[j]!.current))
  )
  const next = rng(seed)
  const n = turns.length
  const counts = new Int32Array(n)
  const draws: Array<number> = []
  for (let r = 0; r < RESAMPLES; r++) {
    counts.fill(0)
    for (let k = 0; k < n; k++) counts[Math.floor(next() * n)]!++
    let total = 0
    let wp = 0
    let wn = 0
    for (const j of neg) wn += counts[j]!
    for (let a = 0; a < pos.length; a++) {
      const ci = counts[pos[a]!]!
      if (ci === 0) continue
      wp += ci
      const row = diff[a]!
      for (let b = 0; b < neg.length; b++) total += ci * counts[neg[b]!]! * row[b]!
    }
    if (wp > 0 && wn > 0) draws.push(total / (wp * wn))
  }
  return draws
}

/**
 * The canary test's vocabulary and arithmetic: what a served turn carries (Sample), the thresholds and error
 * budget (ALPHA), what a decision reports (Figures, Decision), and the betting wealth itself (log-wealth sums per
 * bet size, their log-sum-exp). Pure.
 */
/**
 * Evidence (an e-value) as a person reads it: `14.2` near the thresholds, `263,006` in the thousands, `263
 * billion` beyond, `2.6 × 10^17` past trillions; a decided canary's evidence grows without bound. The report's
 * script runs this function as written (Client.ts), so it stays self-contained.
 */
export function formatEvidence(x: number, digits = 1): string {
  if (!isFinite(x)) return x > 0 ? "infinite" : "-"
  if (x < 10000) return x.toFixed(digits)
  if (x < 1e6) return Math.round(x).toLocaleString("en-US")
  const words: Array<[number, string]> = [
    [1e12, "trillion"],
    [1e9, "billion"],
    [1e6, "million"]
  ]
  if (x < 1e15)
    for (let i = 0; i < words.length; i++)
      if (x >= words[i]![0]) return (x / words[i]![0]).toFixed(1) + " " + words[i]![1]
  const exp = Math.floor(Math.log10(x))
  return (x / Math.pow(10, exp)).toFixed(1) + " \u00d7 10^" + exp
}

export interface Sample {
  /** ms epoch of the turn */
  readonly at: number
  /** Judge score in [0, 1]; null when the judge could not score it (missing data, never 0). */
  readonly score: number | null
  readonly error: boolean
  /** Failed tool calls / tool calls; null for a turn without tool calls. */
  readonly toolFailure: number | null
  /** The user's latest reaction: 1 for 👎, 0 for 👍; null or absent when the user did not react. */
  readonly negative?: number | null
  /**
   * False for an active turn outside the judge's pair sample (judge/Sampling.ts): it counts for the health
   * gates but never in the score comparison, whether or not it was scored for another reason. Absent = true.
   */
  readonly sampled?: boolean
  /**
   * True while the judge has not scored this turn yet (it will): the score test bets only on the pairs before
   * the first one still waiting, so the sequence of bets never depends on the order in which scores arrive.
   */
  readonly pending?: boolean
  /**
   * The canary's share of traffic when this turn was served (canary/Ramp.ts), from shares chosen before it. A
   * change of share starts the pair ratio k afresh; absent = one share throughout.
   */
  readonly share?: number
}

export interface Thresholds {
  readonly minImprovement: number
  readonly minSamples: number
  readonly maxSamples: number
  readonly maxAgeMs: number
  readonly healthWindowMs: number
  readonly maxErrorRate: number
  readonly maxToolFailureRate: number
  readonly maxErrorRateDelta: number
  readonly maxToolFailureRateDelta: number
  /** Allowed excess of the canary's 👎 share over the active pack's, among turns users reacted to. */
  readonly maxNegativeRateDelta: number
}

/** Promotion gets 5%; the rollback side splits its 5% by a union bound over the score test and five gates. */
export const ALPHA = {
  promote: 0.05,
  rollbackScore: 0.025,
  errorDelta: 0.005,
  toolDelta: 0.005,
  errorCeiling: 0.005,
  toolCeiling: 0.005,
  negativeDelta: 0.005
} as const

export const LAMBDAS = [0.1, 0.2, 0.3, 0.45, 0.6, 0.8] as const
/**
 * The promotion side drops the smallest size: 0.1 pays off only for lifts too small to clear the margin, and
 * a mixture pays for each size it holds. Measured by bench:canary-power: a +0.05 canary promoted more often,
 * +0.10 decided sooner.
 */
export const UP_LAMBDAS = [0.2, 0.3, 0.45, 0.6, 0.8] as const
/**
 * The score test's rollback side holds sizes from 0.3: 0.1 and 0.2 pay off only for a canary worse by a few
 * hundredths, which expires harmlessly at the end of its life, while each size a mixture holds dilutes the others.
 * Measured by bench:canary-power (docs/benchmarks.md, "Low traffic"): a canary 0.10 worse is rolled back after
 * about 8% fewer canary turns, at a fixed share or stepped. The health gates keep the full grid.
 */
export const DOWN_LAMBDAS = [0.3, 0.45, 0.6, 0.8] as const
export const CEILING_LAMBDAS = [0.5, 1, 2, 4] as const

export type Action = "promote" | "rollback" | "expire" | "wait"

export interface Figures {
  readonly nCanary: number
  readonly nActive: number
  readonly pairs: number
  readonly meanCanary: number | null
  readonly meanActive: number | null
  readonly meanDiff: number | null
  /**
   * The highest evidence the bets have reached so far, toward promotion and toward rollback: Ville's inequality
   * bounds the chance that the wealth ever reaches 1/alpha, so a crossing between two looks counts.
   */
  readonly eUp: number
  readonly eDown: number
  /** The evidence after the last bet. */
  readonly eUpNow: number
  readonly eDownNow: number
  readonly health: Readonly<Record<Gate, number>>
  readonly canaryErrorRate: number | null
  readonly canaryToolFailureRate: number | null
  /** 👎 share among the turns users reacted to, per arm, and how many reacted. */
  readonly reactions: {
    readonly canary: number
    readonly active: number
    readonly canaryNegativeRate: number | null
    readonly activeNegativeRate: number | null
  }
  /** The pairs bet on, by the share their canary turn was served at (null: no share recorded), in order. */
  readonly byShare: ReadonlyArray<ShareFigures>
}

export interface ShareFigures {
  readonly share: number | null
  readonly pairs: number
  readonly meanDiff: number
}

export interface Decision {
  readonly action: Action
  /** Which rule decided: "score", a health gate's name, "age", "samples", "min-samples", "no-evidence". */
  readonly rule: string
  readonly reason: string
  readonly figures: Figures
}

/** A turn that failed counts as score 0: a canary must not look better by failing the hard requests. */
export const effectiveScore = (s: Sample): number | null => (s.error ? 0 : s.score)
/** A failed turn needs no judge: its score (0) is known at once. */
export const isPending = (s: Sample) => s.pending === true && !s.error
export const errorValue = (s: Sample) => (s.error ? 1 : 0)
export const meanOf = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
export const meanOrNull = (sum: number, n: number) => (n === 0 ? null : sum / n)

/** Active samples older than this, relative to a canary sample, are not "the same time window". */
export const PAIR_WINDOW_MS = 6 * 3_600_000

/** log(1 + lambda * x) per lambda. */
export const logs = (lambdas: ReadonlyArray<number>, x: number) =>
  lambdas.map((l) => (1 + l * x > 0 ? Math.log(1 + l * x) : -Infinity))

/** mean_j exp(sum_j) by log-sum-exp, so long streams do not overflow. */
export const wealthOf = (sums: ReadonlyArray<number>): number => {
  const finite = sums.filter((l) => l !== -Infinity)
  if (finite.length === 0) return 0
  const max = Math.max(...finite)
  return Math.exp(max + Math.log(finite.reduce((acc, l) => acc + Math.exp(l - max), 0) / sums.length))
}

/** The new peak of a wealth: the mixture is at most exp(its largest sum), so most bets need no log-sum-exp. */
export const peakOf = (sums: ReadonlyArray<number>, peak: number) => {
  let max = -Infinity
  for (const l of sums) if (l > max) max = l
  return max <= Math.log(peak) ? peak : Math.max(peak, wealthOf(sums))
}

export const add = (sums: Array<number>, terms: ReadonlyArray<number> | null, sign = 1) => {
  if (terms === null) return
  for (let j = 0; j < sums.length; j++) sums[j]! += sign * terms[j]!
}

/** The health gates: error and tool-failure rates against the active pack and against a ceiling, and users' 👎. */
export type Gate = "errorDelta" | "toolDelta" | "errorCeiling" | "toolCeiling" | "negativeDelta"
export const GATES: ReadonlyArray<Gate> = ["errorDelta", "toolDelta", "errorCeiling", "toolCeiling", "negativeDelta"]

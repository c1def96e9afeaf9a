/**
 * How well the judge's scores separate the turns users liked (👍) from those they did not (👎): the area under
 * the ROC curve, with a 95% interval (Hanley & McNeil, 1982). 0.5 is chance; below it the judge prefers what
 * users dislike. Pure: the store hands in the scores.
 */
import { createHash } from "node:crypto"
import { rng } from "../Domain/Random.js"

/**
 * Which side of the alignment split a turn with a human signal falls on, for good: "align" turns may be shown to
 * reflection when a rubric is amended (align/), "held-out" turns never are. A hash of the trace id, salted so
 * it is independent of the trend sample's draw.
 */
export const splitOf = (traceId: string): "align" | "held-out" =>
  createHash("sha256").update(`align:${traceId}`).digest()[0]! < 128 ? "align" : "held-out"

export interface Agreement {
  /** Turns with both a judge score and a reaction. */
  readonly n: number
  readonly positive: number
  readonly negative: number
  /** P(score of a 👍 turn > score of a 👎 turn), ties counting half; null without both kinds. */
  readonly auc: number | null
  readonly low: number | null
  readonly high: number | null
  /** The whole interval lies below 0.5: the judge disagrees with the people it stands in for. */
  readonly disagrees: boolean
}

/** The Mann-Whitney count by ranks: O((m + n) log(m + n)), ties by mid-rank. */
export const aucOf = (positive: ReadonlyArray<number>, negative: ReadonlyArray<number>): number => {
  const all = [...positive.map((s) => ({ s, pos: true })), ...negative.map((s) => ({ s, pos: false }))].sort(
    (a, b) => a.s - b.s
  )
  let rankSumPos = 0
  for (let i = 0; i < all.length;) {
    let j = i
    while (j < all.length && all[j]!.s === all[i]!.s) j++
    const midRank = (i + 1 + j) / 2
    for (let k = i; k < j; k++) if (all[k]!.pos) rankSumPos += midRank
    i = j
  }
  const m = positive.length
  return (rankSumPos - (m * (m + 1)) / 2) / (m * negative.length)
}

export const agreement = (positive: ReadonlyArray<number>, negative: ReadonlyArray<number>): Agreement => {
  const m = positive.length
  const n = negative.length
  const base = { n: m + n, positive: m, negative: n }
  if (m === 0 || n === 0) return { ...base, auc: null, low: null, high: null, disagrees: false }
  const a = aucOf(positive, negative)
  // Hanley-McNeil's variance is 0 at an AUC of exactly 0 or 1, which would make one pair look certain; it is
  // taken at the AUC moved half a pair in from the edge, so small samples get the wide interval they deserve.
  const edge = 0.5 / (m * n)
  const v = Math.min(Math.max(a, edge), 1 - edge)
  const q1 = v / (2 - v)
  const q2 = (2 * v * v) / (1 + v)
  const variance = (v * (1 - v) + (m - 1) * (q1 - v * v) + (n - 1) * (q2 - v * v)) / (m * n)
  const se = Math.sqrt(Math.max(0, variance))
  const low = Math.max(0, a - 1.96 * se)
  const high = Math.min(1, a + 1.96 * se)
  return { ...base, auc: a, low, high, disagrees: high < 0.5 }
}

/** How a person's grades (1-5) and the judge's scores of the same turns agree, with 95% intervals. */
export interface LabelAgreement {
  readonly n: number
  /** Spearman's rank correlation; its interval by Fisher's z (n of at least 4). */
  readonly spearman: number | null
  readonly spearmanLow: number | null
  readonly spearmanHigh: number | null
  /** Cohen's kappa with quadratic weights, the judge's score binned to the grades' five levels. */
  readonly kappa: number | null
  readonly kappaLow: number | null
  readonly kappaHigh: number | null
}

/** A judge score (0..1) on the five-level scale people grade on: 0-0.2 is 1, ..., 0.8-1 is 5. */
export const levelOf = (score: number): number => Math.min(5, 1 + Math.floor(score * 5))

const midRanks = (xs: ReadonlyArray<number>): Array<number> => {
  const order = xs.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x)
  const ranks = new Array<number>(xs.length)
  for (let i = 0; i < order.length;) {
    let j = i
    while (j < order.length && order[j]!.x === order[i]!.x) j++
    for (let k = i; k < j; k++) ranks[order[k]!.i] = (i + 1 + j) / 2
    i = j
  }
  return ranks
}

const pearson = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>): number | null => {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let sxy = 0
  let sxx = 0
  let syy = 0
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my)
    sxx += (xs[i]! - mx) ** 2
    syy += (ys[i]! - my) ** 2
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy)
}

/** Spearman's rho: Pearson's correlation of mid-ranks (ties handled); null when either side is constant. */
export const spearman = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>): number | null =>
  xs.length < 2 ? null : pearson(midRanks(xs), midRanks(ys))

/** Quadratic-weighted kappa of two ratings on 1..5; null when chance agreement leaves nothing to measure. */
export const weightedKappa = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number | null => {
  const n = a.length
  if (n === 0) return null
  const observed = Array.from({ length: 5 }, () => new Array<number>(5).fill(0))
  const ra = new Array<number>(5).fill(0)
  const rb = new Array<number>(5).fill(0)
  for (let i = 0; i < n; i++) {
    observed[a[i]! - 1]![b[i]! - 1]!++
    ra[a[i]! - 1]!++
    rb[b[i]! - 1]!++
  }
  let num = 0
  let den = 0
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      const w = ((i - j) * (i - j)) / 16
      num += w * observed[i]![j]!
      den += (w * ra[i]! * rb[j]!) / n
    }
  }
  return den === 0 ? null : 1 - num / den
}

/**
 * Agreement of a person's grades with the judge's scores. Kappa's interval is a percentile bootstrap (2,000
 * resamples from a fixed seed, so the same turns always give the same interval).
 */
export const labelAgreement = (
  pairs: ReadonlyArray<{ readonly grade: number; readonly score: number }>
): LabelAgreement => {
  const n = pairs.length
  const grades = pairs.map((p) => p.grade)
  const scores = pairs.map((p) => p.score)
  const rho = spearman(scores, grades)
  const z = rho === null || n < 4 ? null : Math.atanh(Math.max(-0.999999, Math.min(0.999999, rho)))
  const se = 1 / Math.sqrt(Math.max(1, n - 3))
  const levels = scores.map(levelOf)
  const kappa = weightedKappa(levels, grades)
  let kappaLow: number | null = null
  let kappaHigh: number | null = null
  if (kappa !== null && n >= 4) {
    const next = rng(0x5eed)
    const draws: Array<number> = []
    for (let r = 0; r < 2000; r++) {
      const a: Array<number> = []
      const b: Array<number> = []
      for (let i = 0; i < n; i++) {
        const k = Math.floor(next() * n)
        a.push(levels[k]!)
        b.push(grades[k]!)
      }
      const k = weightedKappa(a, b)
      if (k !== null) draws.push(k)
    }
    draws.sort((x, y) => x - y)
    if (draws.length > 0) {
      kappaLow = draws[Math.floor(0.025 * (draws.length - 1))]!
      kappaHigh = draws[Math.ceil(0.975 * (draws.length - 1))]!
    }
  }
  return {
    n,
    spearman: rho,
    spearmanLow: z === null ? null : Math.tanh(z - 1.96 * se),
    spearmanHigh: z === null ? null : Math.tanh(z + 1.96 * se),
    kappa,
    kappaLow,
    kappaHigh
  }
}

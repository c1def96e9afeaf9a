/**
 * How well the judge's scores separate the turns users liked (👍) from those they did not (👎): the area under
 * the ROC curve, with a 95% interval (Hanley & McNeil, 1982). 0.5 is chance; below it the judge prefers what
 * users dislike. Pure: the store hands in the scores.
 */

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
const aucOf = (positive: ReadonlyArray<number>, negative: ReadonlyArray<number>): number => {
  const all = [...positive.map((s) => ({ s, pos: true })), ...negative.map((s) => ({ s, pos: false }))].sort((a, b) => a.s - b.s)
  let rankSumPos = 0
  for (let i = 0; i < all.length; ) {
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

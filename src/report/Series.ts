/**
 * The report's score arithmetic, pure: daily means with a 95% interval from per-day sums, and the week-on-week
 * trend. SQL hands in sums (n, sum, sum of squares) so no row per trace is ever loaded.
 */

export interface DayScores {
  readonly day: string
  /** '' for turns no pack served. */
  readonly version: string
  readonly n: number
  readonly sum: number
  readonly sumSq: number
}

export interface SeriesPoint {
  readonly day: string
  readonly version: string
  readonly n: number
  readonly mean: number
  readonly low: number
  readonly high: number
}

export interface Trend {
  readonly last7: { readonly n: number; readonly mean: number | null }
  readonly previous7: { readonly n: number; readonly mean: number | null }
  /** "up"/"down" only when the difference is outside its 95% interval; "flat" inside it; "unknown" without data. */
  readonly direction: "up" | "down" | "flat" | "unknown"
  readonly change: number | null
}

export const NO_PACK = "(no pack)"

interface Moments {
  readonly n: number
  readonly sum: number
  readonly sumSq: number
}

const meanAndSe = (m: Moments) => {
  const mean = m.sum / m.n
  // Sample variance from sums; clamped at 0 against rounding. One turn has no spread to speak of: se 0.5 (the widest for scores in [0, 1]).
  const variance = m.n > 1 ? Math.max(0, (m.sumSq - m.n * mean * mean) / (m.n - 1)) : 0.25
  return { mean, se: Math.sqrt(variance / m.n) }
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x))

export const scoreSeries = (days: ReadonlyArray<DayScores>): ReadonlyArray<SeriesPoint> =>
  days
    .filter((d) => d.n > 0)
    .map((d) => {
      const { mean, se } = meanAndSe(d)
      return {
        day: d.day,
        version: d.version === "" ? NO_PACK : d.version,
        n: d.n,
        mean,
        low: clamp01(mean - 1.96 * se),
        high: clamp01(mean + 1.96 * se)
      }
    })

const sumOver = (days: ReadonlyArray<DayScores>, from: string, to: string): Moments =>
  days
    .filter((d) => d.day >= from && d.day < to)
    .reduce((acc, d) => ({ n: acc.n + d.n, sum: acc.sum + d.sum, sumSq: acc.sumSq + d.sumSq }), {
      n: 0,
      sum: 0,
      sumSq: 0
    })

export const DAY_MS = 86_400_000
/** The UTC day of a time, "YYYY-MM-DD": the unit of the store's daily rollups. */
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/** The last seven days (today included) against the seven before, all versions together. */
export const trendOf = (days: ReadonlyArray<DayScores>, now: number): Trend => {
  const tomorrow = dayOf(now + DAY_MS)
  const weekAgo = dayOf(now - 6 * DAY_MS)
  const twoWeeksAgo = dayOf(now - 13 * DAY_MS)
  const last = sumOver(days, weekAgo, tomorrow)
  const previous = sumOver(days, twoWeeksAgo, weekAgo)
  const summary = (m: Moments) => ({ n: m.n, mean: m.n === 0 ? null : m.sum / m.n })
  if (last.n === 0 || previous.n === 0)
    return { last7: summary(last), previous7: summary(previous), direction: "unknown", change: null }
  const a = meanAndSe(last)
  const b = meanAndSe(previous)
  const change = a.mean - b.mean
  const margin = 1.96 * Math.sqrt(a.se * a.se + b.se * b.se)
  return {
    last7: summary(last),
    previous7: summary(previous),
    direction: change > margin ? "up" : change < -margin ? "down" : "flat",
    change
  }
}

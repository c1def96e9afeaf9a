/**
 * Which turns the judge scores, pure. A decision needs every canary turn and a few active turns beside each;
 * a trend needs a sample. The rest stays unjudged: that is most of the bill saved.
 *
 * Every turn carries a fixed draw in [0, 1) from its trace id (Domain/Trace.ts `sampleDraw`, stored at
 * ingest), so the same turns are chosen whenever eval runs, whatever the order of runs, and the samples of
 * different behaviors are the same turns.
 */

/**
 * The share of turns in the daily trend sample: `perDay` turns out of a day's volume (the window's average,
 * so the sample is spread over the day, not taken from its first hours). 0 = every turn.
 */
export const trendRate = (perDay: number, turnsInWindow: number, windowDays: number): number =>
  perDay <= 0 || turnsInWindow <= 0 ? 1 : Math.min(1, perDay / (turnsInWindow / Math.max(1, windowDays)))

/**
 * The share of the active pack's turns judged while a canary runs: about `pairs` per canary turn at the
 * canary's share of traffic. 0 pairs = every active turn.
 */
export const pairRate = (pairs: number, canaryShare: number): number =>
  pairs <= 0 || canaryShare <= 0 || canaryShare >= 1 ? 1 : Math.min(1, (pairs * canaryShare) / (1 - canaryShare))

/** The share of traffic a canary pack serves: its own `canaryPercent` when it says, else the configured one. */
export const canaryShare = (metadata: Readonly<Record<string, unknown>> | undefined, fallback: number): number => {
  const percent = metadata?.["canaryPercent"]
  return typeof percent === "number" ? percent / 100 : fallback
}

/** One share of a canary from a time on (ms epoch); a canary's history starts with the share it went out at. */
export interface ShareChange {
  readonly at: number
  readonly share: number
}

/** The canary's share when a turn at `at` was served (before its first change: the share it went out at). */
export const shareAt = (history: ReadonlyArray<ShareChange>, at: number): number | undefined => {
  let share = history[0]?.share
  for (const change of history) if (change.at <= at) share = change.share
  return share
}

/**
 * A canary's history of shares from the store's rows (in percent), or, for a canary placed by hand, the one
 * share its file (else the configuration) says.
 */
export const shareHistory = (rows: ReadonlyArray<{ readonly at: number; readonly percent: number }>, metadata: Readonly<Record<string, unknown>> | undefined, fallback: number): ReadonlyArray<ShareChange> =>
  rows.length > 0 ? rows.map((r) => ({ at: r.at, share: r.percent / 100 })) : [{ at: 0, share: canaryShare(metadata, fallback) }]

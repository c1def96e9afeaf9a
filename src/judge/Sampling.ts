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

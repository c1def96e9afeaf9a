/**
 * When a stage-1 score goes to the stronger stage-2 judge, pure. The configured unsure band is a guess; the
 * store knows better once it has seen enough pairs: per stage-1 score level (to the nearest quarter), the share
 * of stage-2 verdicts a level or more away from stage 1's. A level the stronger judge keeps overturning is
 * escalated, whether or not it is in the band; one it keeps confirming is not. Until a level has enough
 * pairs, the band decides. The random audit share keeps pairs coming for every level.
 */

export interface LevelPairs {
  /** Stage-1 score rounded to the nearest 0.25. */
  readonly level: number
  readonly n: number
  /** Pairs where |stage 1 - stage 2| >= 0.25: stage 2 moved the score by a level or more. */
  readonly flips: number
}

export interface Escalation {
  readonly escalate: (stage1Score: number) => boolean
  /** Levels decided by the store's own pairs, with what was decided; the rest follow the band. */
  readonly calibrated: ReadonlyArray<{
    readonly level: number
    readonly n: number
    readonly flipShare: number
    readonly escalate: boolean
  }>
}

/** Pairs a level needs before its own record decides. */
export const MIN_PAIRS = 30
/** Escalate a level when stage 2 overturns at least this share of its scores. */
export const FLIP_SHARE = 0.2

export const levelOf = (score: number) => Math.round(score * 4) / 4

export const escalation = (
  pairs: ReadonlyArray<LevelPairs>,
  band: { readonly low: number; readonly high: number }
): Escalation => {
  const calibrated = pairs
    .filter((p) => p.n >= MIN_PAIRS)
    .map((p) => ({ level: p.level, n: p.n, flipShare: p.flips / p.n, escalate: p.flips / p.n >= FLIP_SHARE }))
  const decided = new Map(calibrated.map((c) => [c.level, c.escalate]))
  return {
    escalate: (score) => decided.get(levelOf(score)) ?? (score >= band.low && score <= band.high),
    calibrated
  }
}

/**
 * A canary's life at a given traffic, simulated through the monitor's own parts (the CanaryProcess of Stats.ts
 * and the steps of Ramp.ts), pure and seeded. `status` and `optimize --dry-run` read from it how long a decision
 * is expected to take at the traffic of the last days; bench:canary and bench:canary-power run it with every
 * score distribution and with the judge behind.
 */
import type { AppConfig } from "../config/Table.js"
import { pairRate } from "../judge/Sampling.js"
import type { ShareChange } from "../Domain/Share.js"
import { ladder as ladderOf, nextStep } from "./Ramp.js"
import { type Action, CanaryProcess, decide, type Sample, type Thresholds } from "./Stats.js"

export { type Rng, rng } from "../Domain/Random.js"
import { type Rng, rng } from "../Domain/Random.js"

/** The seed of the i-th simulated life: spread over the generator's whole range (neighbouring seeds are not). */
export const seedOf = (i: number) => Math.imul(i + 1, 0x9e3779b1)

/** How a world makes one turn: its judge score (null = unscored) and its failures, for an arm on an hour. */
export interface World {
  readonly turnsPerDay: number
  readonly turn: (
    r: Rng,
    canary: boolean,
    hour: number
  ) => { readonly score: number | null; readonly error: boolean; readonly toolFailure: number | null }
  /** Hours until a turn's score is in (the judge behind); 0 or absent = scored by the next look. */
  readonly lagHours?: (r: Rng) => number
}

export interface Plan {
  readonly thresholds: Thresholds
  /** Where the canary starts and the steps above it (Ramp.ts `ladder`); [start] = a fixed share. */
  readonly start: number
  readonly steps: ReadonlyArray<number>
  readonly stepMinTurns: number
  /** AUTOTUNE_JUDGE_CANARY_PAIRS */
  readonly pairs: number
  /** Hours between the monitor's looks (the daemon's interval). */
  readonly lookHours: number
}

export interface Life {
  readonly action: Action
  /** Days from the canary's start to the look that decided. */
  readonly days: number
  readonly canaryTurns: number
  readonly shares: ReadonlyArray<ShareChange>
}

const HOUR = 3_600_000
/** A personal agent is used by day: the share of a day's turns in each hour (quiet at night). */
const PROFILE = Array.from({ length: 24 }, (_, h) => (h < 7 ? 0.2 : h < 23 ? 1.4 : 0.6))
const PROFILE_SUM = PROFILE.reduce((a, b) => a + b, 0)

/** Poisson draws by inversion (the hourly counts are small). */
const poisson = (r: Rng, mean: number) => {
  if (mean > 50)
    return Math.max(
      0,
      Math.round(mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()))
    )
  let k = 0
  let p = Math.exp(-mean)
  let cdf = p
  const u = r()
  while (u > cdf && k < 1000) {
    k++
    p *= mean / k
    cdf += p
  }
  return k
}

/**
 * One canary from deployment to a decision (or expiry): each hour's turns are served at the share then in force,
 * the active turns the judge pairs are drawn as judge/Sampling.ts draws them, and at each look the monitor
 * decides and, while it waits, steps the share as Ramp.ts says.
 */
export const simulate = (world: World, plan: Plan, seed: number): Life => {
  const r = rng(seed)
  const rungs = ladderOf(plan.start, plan.steps)
  const shares: Array<ShareChange> = [{ at: 0, share: plan.start }]
  const lagging = world.lagHours !== undefined
  const process = lagging ? undefined : new CanaryProcess(plan.thresholds)
  const canary: Array<Sample & { readonly ready: number }> = []
  const active: Array<Sample & { readonly ready: number }> = []
  let share = plan.start
  let atShareSince = 0
  let turnsAtShare = 0
  const maxHours = Math.ceil(plan.thresholds.maxAgeMs / HOUR) + plan.lookHours
  for (let hour = 0; hour < maxHours; hour++) {
    const n = poisson(r, (world.turnsPerDay * PROFILE[hour % 24]!) / PROFILE_SUM)
    const times = Array.from({ length: n }, () => hour * HOUR + r() * HOUR).sort((a, b) => a - b)
    for (const at of times) {
      const isCanary = r() < share
      const t = world.turn(r, isCanary, hour)
      const sampled = isCanary || r() < pairRate(plan.pairs, share)
      const sample = {
        at,
        score: t.score,
        error: t.error,
        toolFailure: t.toolFailure,
        sampled,
        share,
        ready: at + (lagging ? world.lagHours!(r) * HOUR : 0)
      }
      if (isCanary) {
        canary.push(sample)
        if (at >= atShareSince) turnsAtShare++
      } else active.push(sample)
      process?.add(sample, isCanary ? "canary" : "active")
    }
    if ((hour + 1) % plan.lookHours !== 0) continue
    const now = (hour + 1) * HOUR
    const decision =
      process !== undefined
        ? process.decision(now, 0)
        : decide({
            canary: canary.map((s) => view(s, now)),
            active: active.map((s) => view(s, now)),
            startedAt: 0,
            now,
            thresholds: plan.thresholds
          })
    if (decision.action !== "wait")
      return { action: decision.action, days: now / 86_400_000, canaryTurns: canary.length, shares }
    const step = nextStep(decision, { share, ladder: rungs, turnsAtShare, minTurns: plan.stepMinTurns })
    if (step.kind === "up" || step.kind === "down") {
      share = step.to
      atShareSince = now
      turnsAtShare = 0
      shares.push({ at: now, share })
    }
  }
  return { action: "expire", days: maxHours / 24, canaryTurns: canary.length, shares }
}

/** A turn as the monitor sees it at `now`: its score still to come while the judge is behind. */
const view = (s: Sample & { readonly ready: number }, now: number): Sample =>
  s.ready <= now ? s : { ...s, score: null, pending: true }

// ---------------------------------------------------------------------------
// The forecast `status` and `optimize --dry-run` show.
// ---------------------------------------------------------------------------

/** Five-level judge scores of a typical install (mean 0.75); a lift moves a turn up a level. */
const LIKERT = [0.04, 0.06, 0.15, 0.37, 0.38]
export const likert = (r: Rng, lift: number): number => {
  let u = r()
  let s = 1
  for (let i = 0; i < 5; i++) {
    if ((u -= LIKERT[i]!) < 0) {
      s = i / 4
      break
    }
  }
  return s < 1 && r() < lift / (0.25 * (1 - LIKERT[4]!)) ? s + 0.25 : s
}

export interface Forecast {
  readonly turnsPerDay: number
  readonly lift: number
  readonly runs: number
  /** Share of runs promoted within the canary's life (AUTOTUNE_CANARY_MAX_DAYS / _MAX_SAMPLES). */
  readonly promotedShare: number
  /** Median days to promotion over all runs (a run not promoted counts as never); null when fewer than half were. */
  readonly medianDays: number | null
}

/**
 * How a canary `lift` better than the active pack fares at `turnsPerDay`, by the monitor's own decision code over
 * `runs` seeded lives (the same figures every time for the same inputs).
 */
export const forecast = (turnsPerDay: number, lift: number, plan: Plan, runs = 200): Forecast => {
  const world: World = {
    turnsPerDay,
    turn: (r, isCanary) => ({ score: likert(r, isCanary ? lift : 0), error: r() < 0.03, toolFailure: null })
  }
  const days: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const life = simulate(world, plan, seedOf(i))
    if (life.action === "promote") days.push(life.days)
  }
  days.sort((a, b) => a - b)
  return {
    turnsPerDay,
    lift,
    runs,
    promotedShare: days.length / runs,
    medianDays: days.length * 2 >= runs ? days[Math.floor(runs / 2)]! : null
  }
}

/** The monitor's thresholds from the settings. */
export const thresholdsOf = (config: AppConfig): Thresholds => ({
  minImprovement: config.canaryMinImprovement,
  minSamples: config.canaryMinSamples,
  maxSamples: config.canaryMaxSamples,
  maxAgeMs: config.canaryMaxDays * 86_400_000,
  healthWindowMs: config.canaryHealthWindowHours * 3_600_000,
  maxErrorRate: config.canaryMaxErrorRate,
  maxToolFailureRate: config.canaryMaxToolFailureRate,
  maxErrorRateDelta: config.canaryMaxErrorRateDelta,
  maxToolFailureRateDelta: config.canaryMaxToolFailureRateDelta,
  maxNegativeRateDelta: config.canaryMaxNegativeRateDelta
})

/** A canary's plan as the settings make it: its start, steps, thresholds, pairs, and the daemon's looks. */
export const planOf = (config: AppConfig, start = config.canaryFraction): Plan => ({
  thresholds: thresholdsOf(config),
  start,
  steps: config.canarySteps,
  stepMinTurns: config.canaryStepMinTurns,
  pairs: config.judgeCanaryPairs,
  lookHours: Math.max(1, Math.round(config.intervalMinutes / 60))
})

/** A forecast at a behavior's traffic, with the canary's life and the sentence people read. */
export type Expected = Forecast & { readonly lifeDays: number; readonly text: string }

/** The forecast as one sentence for `status`, `optimize --dry-run` and the deploy log. */
export const forecastText = (f: Forecast & { readonly lifeDays: number }): string => {
  const lift = `a +${f.lift.toFixed(2)} canary`
  if (f.turnsPerDay === 0) return `no turns in the last 7 days: ${lift} cannot decide until there is traffic`
  const within = `promoted within its ${f.lifeDays} days in ${Math.round(100 * f.promotedShare)}% of ${f.runs} simulated lives`
  if (f.medianDays !== null)
    return `at ${f.turnsPerDay} turns a day, ${lift} decides in about ${Math.max(1, Math.round(f.medianDays))} days (${within})`
  return `at ${f.turnsPerDay} turns a day, ${lift} is ${within}: most expire undecided (raise AUTOTUNE_CANARY_MAX_DAYS, or AUTOTUNE_CANARY_STEPS toward 0.5)`
}

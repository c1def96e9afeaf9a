/**
 * The canary decision as a betting e-process on paired differences (testing by betting, Waudby-Smith &
 * Ramdas, JRSS-B 2024), per shared/canary-statistics.md. By Ville's inequality the wealth of a fair bet
 * exceeds 1/alpha with probability at most alpha at any time, so the error rates hold however often the
 * monitor looks. Pure and deterministic: the same traces give the same decision.
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
  const words: Array<[number, string]> = [[1e12, "trillion"], [1e9, "billion"], [1e6, "million"]]
  if (x < 1e15) for (let i = 0; i < words.length; i++) if (x >= words[i]![0]) return (x / words[i]![0]).toFixed(1) + " " + words[i]![1]
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

const LAMBDAS = [0.1, 0.2, 0.3, 0.45, 0.6, 0.8] as const
/**
 * The promotion side drops the smallest size: 0.1 pays off only for lifts too small to clear the margin, and
 * a mixture pays for each size it holds. Measured by bench:canary-power: a +0.05 canary promoted more often,
 * +0.10 decided sooner.
 */
const UP_LAMBDAS = [0.2, 0.3, 0.45, 0.6, 0.8] as const
/**
 * The score test's rollback side holds sizes from 0.3: 0.1 and 0.2 pay off only for a canary worse by a few
 * hundredths, which expires harmlessly at the end of its life, while each size a mixture holds dilutes the others.
 * Measured by bench:canary-power (docs/benchmarks.md, "Low traffic"): a canary 0.10 worse is rolled back after
 * about 8% fewer canary turns, at a fixed share or stepped. The health gates keep the full grid.
 */
const DOWN_LAMBDAS = [0.3, 0.45, 0.6, 0.8] as const
const CEILING_LAMBDAS = [0.5, 1, 2, 4] as const

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
  readonly reactions: { readonly canary: number; readonly active: number; readonly canaryNegativeRate: number | null; readonly activeNegativeRate: number | null }
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
const effectiveScore = (s: Sample): number | null => (s.error ? 0 : s.score)
/** A failed turn needs no judge: its score (0) is known at once. */
const isPending = (s: Sample) => s.pending === true && !s.error
const errorValue = (s: Sample) => (s.error ? 1 : 0)
const meanOf = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
const meanOrNull = (sum: number, n: number) => (n === 0 ? null : sum / n)

/** Active samples older than this, relative to a canary sample, are not "the same time window". */
const PAIR_WINDOW_MS = 6 * 3_600_000

/** log(1 + lambda * x) per lambda. */
const logs = (lambdas: ReadonlyArray<number>, x: number) => lambdas.map((l) => (1 + l * x > 0 ? Math.log(1 + l * x) : -Infinity))

/** mean_j exp(sum_j) by log-sum-exp, so long streams do not overflow. */
const wealthOf = (sums: ReadonlyArray<number>): number => {
  const finite = sums.filter((l) => l !== -Infinity)
  if (finite.length === 0) return 0
  const max = Math.max(...finite)
  return Math.exp(max + Math.log(finite.reduce((acc, l) => acc + Math.exp(l - max), 0) / sums.length))
}

/** The new peak of a wealth: the mixture is at most exp(its largest sum), so most bets need no log-sum-exp. */
const peakOf = (sums: ReadonlyArray<number>, peak: number) => {
  let max = -Infinity
  for (const l of sums) if (l > max) max = l
  return max <= Math.log(peak) ? peak : Math.max(peak, wealthOf(sums))
}

const add = (sums: Array<number>, terms: ReadonlyArray<number> | null, sign = 1) => {
  if (terms === null) return
  for (let j = 0; j < sums.length; j++) sums[j]! += sign * terms[j]!
}

type Gate = "errorDelta" | "toolDelta" | "errorCeiling" | "toolCeiling" | "negativeDelta"
const GATES: ReadonlyArray<Gate> = ["errorDelta", "toolDelta", "errorCeiling", "toolCeiling", "negativeDelta"]

/** Reactions are sparse: a reacted canary turn is compared with reacted active turns of the last day. */
const REACTION_WINDOW_MS = 24 * 3_600_000

/** One bet's contribution to each health gate's log-wealth, made once when its sample or pair arrives. */
interface HealthBet {
  readonly at: number
  readonly gate: Gate
  readonly terms: ReadonlyArray<number>
  readonly error: number
  readonly toolFailure: number | null
}

/**
 * Active turns waiting to be paired and canary turns waiting for partners. A canary turn takes the
 * k = max(1, min(9, floor(active seen / canary seen))) most recent unused active turns of the last six hours,
 * or waits for the next ones when there are none. A pair, once made, never changes.
 */
class Pairing {
  private readonly pool: Array<Sample> = []
  private head = 0
  private readonly pending: Array<{ readonly sample: Sample; readonly k: number }> = []
  /** Active and canary turns since the share last changed: k follows the split being served now. */
  private seen = 0
  private canaries = 0
  private share: number | undefined

  constructor(private readonly onPair: (canary: Sample, block: ReadonlyArray<Sample>) => void) {}

  private atShare(sample: Sample) {
    if (sample.share === this.share) return
    this.share = sample.share
    this.seen = this.canaries = 0
  }

  addActive(sample: Sample) {
    this.atShare(sample)
    this.seen++
    this.pool.push(sample)
    this.flush(sample.at)
  }

  addCanary(sample: Sample) {
    this.atShare(sample)
    this.canaries++
    const k = Math.max(1, Math.min(9, Math.floor(this.seen / this.canaries)))
    this.prune(sample.at)
    if (this.pool.length - this.head > 0) this.take(sample, k)
    else this.pending.push({ sample, k })
  }

  private prune(now: number) {
    while (this.head < this.pool.length && this.pool[this.head]!.at < now - PAIR_WINDOW_MS) this.head++
    if (this.head > 1024) {
      this.pool.splice(0, this.head)
      this.head = 0
    }
  }

  private flush(now: number) {
    while (this.pending.length > 0) {
      const next = this.pending[0]!
      if (next.sample.at < now - PAIR_WINDOW_MS) {
        this.pending.shift()
        continue
      }
      if (this.pool.length - this.head < next.k) return
      this.pending.shift()
      this.take(next.sample, next.k)
    }
  }

  private take(sample: Sample, k: number) {
    const n = Math.min(k, this.pool.length - this.head)
    this.onPair(sample, this.pool.splice(this.pool.length - n, n))
  }
}

/**
 * The e-process, fed in time order. Pairing is fixed when a canary sample arrives: it takes the
 * k = max(1, min(9, floor(active seen / canary seen))) most recent unused active samples of the last six
 * hours, or waits for the next active samples when there are none. A pair, once made, never changes, so
 * the wealth is one fixed sequence of bets whatever the schedule of looks: that is what makes it valid at
 * every look. Health gates bet on the same pairs (deltas) and canary samples (ceilings) but count only the
 * health window, kept as running sums. Pure and deterministic.
 */
export class CanaryProcess {
  /** The health gates pair with every active turn; the score test only with the turns the judge samples. */
  private readonly health = new Pairing((canary, block) => this.healthBets(canary, block))
  private readonly scores = new Pairing((canary, block) => this.scoreBet(canary, block))
  /** Active turns users reacted to, each compared with at most one canary turn, like the score pairs. */
  private readonly reacted: Array<Sample> = []
  private reactedHead = 0
  private canaryReacted = 0
  private canaryNegative = 0
  private activeReacted = 0
  private activeNegative = 0
  private readonly upLambdas: ReadonlyArray<number>
  private readonly lambdas: Record<Gate, ReadonlyArray<number>>
  private readonly up: Array<number>
  private readonly down: Array<number>
  /** A pair still waiting for a score: no later pair is bet on until it is in. */
  private blocked = false
  private peakUp = 1
  private peakDown = 1
  /** The pair at which each side's evidence first reached its threshold: the earlier crossing decides. */
  private upCrossedAt = Infinity
  private downCrossedAt = Infinity
  private readonly bets: Array<HealthBet> = []
  private betHead = 0
  private windowSince = -Infinity
  private readonly window: Record<Gate, Array<number>>
  private windowSamples = 0
  private windowErrors = 0
  private windowToolN = 0
  private windowToolSum = 0
  private diffSum = 0
  private diffs = 0
  private readonly byShare: Array<{ share: number | null; pairs: number; sum: number }> = []
  private canarySeen = 0
  private canaryScoreSum = 0
  private canaryScored = 0
  private activeScoreSum = 0
  private activeScored = 0

  constructor(private readonly t: Thresholds) {
    this.upLambdas = UP_LAMBDAS.map((l) => Math.min(l, 1 / (1 + t.minImprovement)))
    this.up = UP_LAMBDAS.map(() => 0)
    this.down = DOWN_LAMBDAS.map(() => 0)
    this.lambdas = {
      errorDelta: LAMBDAS.map((l) => Math.min(l, 1 / (1 + t.maxErrorRateDelta))),
      toolDelta: LAMBDAS.map((l) => Math.min(l, 1 / (1 + t.maxToolFailureRateDelta))),
      errorCeiling: CEILING_LAMBDAS.map((l) => Math.min(l, 0.95 / Math.max(t.maxErrorRate, 1e-9))),
      toolCeiling: CEILING_LAMBDAS.map((l) => Math.min(l, 0.95 / Math.max(t.maxToolFailureRate, 1e-9))),
      negativeDelta: LAMBDAS.map((l) => Math.min(l, 1 / (1 + t.maxNegativeRateDelta)))
    }
    this.window = { errorDelta: this.zeros("errorDelta"), toolDelta: this.zeros("toolDelta"), errorCeiling: this.zeros("errorCeiling"), toolCeiling: this.zeros("toolCeiling"), negativeDelta: this.zeros("negativeDelta") }
  }

  private zeros(gate: Gate) {
    return this.lambdas[gate].map(() => 0)
  }

  add(sample: Sample, arm: "canary" | "active"): void {
    const score = effectiveScore(sample)
    if (arm === "active") {
      if (score !== null) {
        this.activeScoreSum += score
        this.activeScored++
      }
      if (sample.negative != null) {
        this.activeReacted++
        this.activeNegative += sample.negative
        this.reacted.push(sample)
      }
      this.health.addActive(sample)
      if (sample.sampled !== false) this.scores.addActive(sample)
      return
    }
    if (sample.negative != null) this.betOnReaction(sample, sample.negative)
    this.canarySeen++
    if (score !== null) {
      this.canaryScoreSum += score
      this.canaryScored++
    }
    this.bet(sample.at, "errorCeiling", errorValue(sample) - this.t.maxErrorRate, sample)
    if (sample.toolFailure !== null) this.bet(sample.at, "toolCeiling", sample.toolFailure - this.t.maxToolFailureRate, sample)
    this.track(sample)
    this.health.addCanary(sample)
    this.scores.addCanary(sample)
  }

  /**
   * The users' gate: the canary turn's 👎 (1 or 0) against the mean of up to k unused reacted active turns of
   * the last day, minus the allowed excess. No reacted active turn to compare with: no bet.
   */
  private betOnReaction(sample: Sample, negative: number) {
    this.canaryReacted++
    this.canaryNegative += negative
    while (this.reactedHead < this.reacted.length && this.reacted[this.reactedHead]!.at < sample.at - REACTION_WINDOW_MS) this.reactedHead++
    const available = this.reacted.length - this.reactedHead
    if (available === 0) return
    const k = Math.max(1, Math.min(9, Math.floor(this.activeReacted / this.canaryReacted)))
    const block = this.reacted.splice(this.reacted.length - Math.min(k, available), Math.min(k, available))
    this.bet(sample.at, "negativeDelta", negative - meanOf(block.map((s) => s.negative ?? 0)) - this.t.maxNegativeRateDelta, sample)
  }

  /** The score test's bet: the canary turn against the mean of its block of sampled active turns. */
  private scoreBet(sample: Sample, block: ReadonlyArray<Sample>) {
    // Pairs are made from traffic alone (times and the judge's sample), so they are the same at every look;
    // bets follow them in order and stop at the first pair whose scores are not all in.
    if (this.blocked || isPending(sample) || block.some(isPending)) {
      this.blocked = true
      return
    }
    const c = effectiveScore(sample)
    const scores = block.flatMap((s) => (effectiveScore(s) === null ? [] : [effectiveScore(s)!]))
    // Missing data on either side (the judge could not score it, for good): no bet.
    if (c === null || scores.length === 0) return
    const d = c - meanOf(scores)
    this.diffSum += d
    this.diffs++
    const share = sample.share ?? null
    const last = this.byShare[this.byShare.length - 1]
    if (last === undefined || last.share !== share) this.byShare.push({ share, pairs: 1, sum: d })
    else {
      last.pairs++
      last.sum += d
    }
    add(this.up, logs(this.upLambdas, d - this.t.minImprovement))
    add(this.down, logs(DOWN_LAMBDAS, -d))
    this.peakUp = peakOf(this.up, this.peakUp)
    this.peakDown = peakOf(this.down, this.peakDown)
    if (this.peakUp >= 1 / ALPHA.promote && this.upCrossedAt === Infinity) this.upCrossedAt = this.diffs
    if (this.peakDown >= 1 / ALPHA.rollbackScore && this.downCrossedAt === Infinity) this.downCrossedAt = this.diffs
  }

  private healthBets(sample: Sample, block: ReadonlyArray<Sample>) {
    this.bet(sample.at, "errorDelta", errorValue(sample) - meanOf(block.map(errorValue)) - this.t.maxErrorRateDelta, sample)
    const tools = block.flatMap((s) => (s.toolFailure === null ? [] : [s.toolFailure]))
    if (sample.toolFailure !== null && tools.length > 0) {
      this.bet(sample.at, "toolDelta", sample.toolFailure - meanOf(tools) - this.t.maxToolFailureRateDelta, sample)
    }
  }

  private bet(at: number, gate: Gate, x: number, sample: Sample) {
    const b: HealthBet = { at, gate, terms: logs(this.lambdas[gate], x), error: errorValue(sample), toolFailure: sample.toolFailure }
    this.bets.push(b)
    if (at >= this.windowSince) add(this.window[gate], b.terms)
  }

  /** Canary samples in the health window, for the rates shown beside the evidence. */
  private readonly recent: Array<Sample> = []
  private recentHead = 0
  private track(sample: Sample) {
    this.recent.push(sample)
    if (sample.at >= this.windowSince) this.count(sample, 1)
  }
  private count(s: Sample, sign: number) {
    this.windowSamples += sign
    this.windowErrors += sign * errorValue(s)
    if (s.toolFailure !== null) {
      this.windowToolN += sign
      this.windowToolSum += sign * s.toolFailure
    }
  }

  /** Moves the health window to end at `now`: bets that fell out leave the running sums. */
  private slide(now: number) {
    const since = now - this.t.healthWindowMs
    if (since < this.windowSince) {
      // A look back in time: rebuild the sums from scratch (never happens in one pass of looks).
      this.windowSince = since
      for (const gate of GATES) this.window[gate] = this.zeros(gate)
      this.windowSamples = this.windowErrors = this.windowToolN = this.windowToolSum = 0
      this.betHead = this.bets.findIndex((b) => b.at >= since)
      if (this.betHead < 0) this.betHead = this.bets.length
      for (let i = this.betHead; i < this.bets.length; i++) add(this.window[this.bets[i]!.gate], this.bets[i]!.terms)
      this.recentHead = this.recent.findIndex((s) => s.at >= since)
      if (this.recentHead < 0) this.recentHead = this.recent.length
      for (let i = this.recentHead; i < this.recent.length; i++) this.count(this.recent[i]!, 1)
      return
    }
    this.windowSince = since
    while (this.betHead < this.bets.length && this.bets[this.betHead]!.at < since) {
      const b = this.bets[this.betHead++]!
      add(this.window[b.gate], b.terms, -1)
    }
    while (this.recentHead < this.recent.length && this.recent[this.recentHead]!.at < since) this.count(this.recent[this.recentHead++]!, -1)
  }

  /** The decision at a look: promote, roll back, expire, or wait, with its figures. */
  decision(now: number, startedAt: number, lone = false): Decision {
    const t = this.t
    this.slide(now)
    const health = {
      errorDelta: lone ? 0 : wealthOf(this.window.errorDelta),
      toolDelta: lone ? 0 : wealthOf(this.window.toolDelta),
      errorCeiling: wealthOf(this.window.errorCeiling),
      toolCeiling: wealthOf(this.window.toolCeiling),
      negativeDelta: lone ? 0 : wealthOf(this.window.negativeDelta)
    }
    const figures: Figures = {
      nCanary: this.canaryScored,
      nActive: this.activeScored,
      pairs: this.diffs,
      meanCanary: meanOrNull(this.canaryScoreSum, this.canaryScored),
      meanActive: meanOrNull(this.activeScoreSum, this.activeScored),
      meanDiff: meanOrNull(this.diffSum, this.diffs),
      eUp: this.peakUp,
      eDown: this.peakDown,
      eUpNow: wealthOf(this.up),
      eDownNow: wealthOf(this.down),
      health,
      canaryErrorRate: meanOrNull(this.windowErrors, this.windowSamples),
      canaryToolFailureRate: meanOrNull(this.windowToolSum, this.windowToolN),
      reactions: {
        canary: this.canaryReacted,
        active: this.activeReacted,
        canaryNegativeRate: meanOrNull(this.canaryNegative, this.canaryReacted),
        activeNegativeRate: meanOrNull(this.activeNegative, this.activeReacted)
      },
      byShare: this.byShare.map((b) => ({ share: b.share, pairs: b.pairs, meanDiff: b.sum / b.pairs }))
    }
    const result = (action: Action, rule: string, reason: string): Decision => ({ action, rule, reason, figures })

    if (this.canarySeen < t.minSamples) {
      return result("wait", "min-samples", `${this.canarySeen} of ${t.minSamples} canary samples before any decision`)
    }
    const gates: ReadonlyArray<[keyof typeof health, number, string]> = [
      ["errorCeiling", ALPHA.errorCeiling, `error rate above AUTOTUNE_CANARY_MAX_ERROR_RATE=${t.maxErrorRate}`],
      ["toolCeiling", ALPHA.toolCeiling, `tool-failure rate above AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE=${t.maxToolFailureRate}`],
      ["errorDelta", ALPHA.errorDelta, `error rate more than AUTOTUNE_CANARY_MAX_ERROR_RATE_DELTA=${t.maxErrorRateDelta} above the active pack`],
      ["toolDelta", ALPHA.toolDelta, `tool-failure rate more than AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE_DELTA=${t.maxToolFailureRateDelta} above the active pack`],
      ["negativeDelta", ALPHA.negativeDelta, `users' 👎 share more than AUTOTUNE_CANARY_MAX_NEGATIVE_RATE_DELTA=${t.maxNegativeRateDelta} above the active pack's (${figures.reactions.canaryNegativeRate?.toFixed(2) ?? "-"} vs ${figures.reactions.activeNegativeRate?.toFixed(2) ?? "-"} over ${figures.reactions.canary}/${figures.reactions.active} reactions)`]
    ]
    for (const [gate, alpha, what] of gates) {
      if (health[gate] >= 1 / alpha) return result("rollback", gate, `health gate: ${what} (evidence ${formatEvidence(health[gate])} >= ${1 / alpha})`)
    }
    if (lone) {
      return result("promote", "lone", "no active pack to compare with (DotClaw serves a lone canary to everyone) and the health gates pass")
    }
    if (this.upCrossedAt < this.downCrossedAt) {
      return result("promote", "score", `canary beats the active pack by more than ${t.minImprovement} (evidence ${formatEvidence(figures.eUp)} >= ${1 / ALPHA.promote})`)
    }
    if (this.downCrossedAt < Infinity) {
      return result("rollback", "score", `canary scores worse than the active pack (evidence ${formatEvidence(figures.eDown)} >= ${1 / ALPHA.rollbackScore})`)
    }
    if (figures.nCanary >= t.maxSamples) {
      return result("expire", "samples", `no conclusion after ${figures.nCanary} canary samples; keeping the active pack (inconclusive)`)
    }
    if (now - startedAt >= t.maxAgeMs) {
      return result("expire", "age", `no conclusion after ${((now - startedAt) / 86_400_000).toFixed(1)} days; keeping the active pack (inconclusive)`)
    }
    return result("wait", "no-evidence", `evidence so far: toward promote ${formatEvidence(figures.eUp, 2)} of ${1 / ALPHA.promote}, toward rollback ${formatEvidence(figures.eDown, 2)} of ${1 / ALPHA.rollbackScore}`)
  }
}

export interface DecideInput {
  readonly canary: ReadonlyArray<Sample>
  readonly active: ReadonlyArray<Sample>
  /** When the canary went out (ms epoch), and now. */
  readonly startedAt: number
  readonly now: number
  readonly thresholds: Thresholds
  /** No active pack beside the canary: DotClaw serves it to everyone, so there is nothing to pair with. */
  readonly lone?: boolean
}

/** The decision from all samples at once, as the monitor makes it from the store at each run. */
export const decide = (input: DecideInput): Decision => {
  const process = new CanaryProcess(input.thresholds)
  const merged = [
    ...input.canary.map((sample) => ({ sample, arm: "canary" as const })),
    ...input.active.map((sample) => ({ sample, arm: "active" as const }))
  ].sort((a, b) => a.sample.at - b.sample.at || (a.arm === b.arm ? 0 : a.arm === "active" ? -1 : 1))
  for (const { sample, arm } of merged) process.add(sample, arm)
  return process.decision(input.now, input.startedAt, input.lone === true)
}

/**
 * The rule the original autotune used, kept as the benchmark's baseline: promote when the canary's mean beats
 * the active mean by the margin after the minimum samples, roll back on the opposite. A coin flip with extra
 * steps when the canary is no better.
 */
export const naiveDecide = (nCanary: number, meanCanary: number, meanActive: number, minSamples: number, margin: number): Action => {
  if (nCanary < minSamples) return "wait"
  const diff = meanCanary - meanActive
  return diff >= margin ? "promote" : diff <= -margin ? "rollback" : "wait"
}

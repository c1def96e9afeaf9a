/**
 * The e-process itself: the score test on paired differences and the five health gates, fed turn by turn in
 * time order, and the decision it supports at any look. Pure and deterministic.
 */
import {
  type Action,
  add,
  ALPHA,
  CEILING_LAMBDAS,
  type Decision,
  DOWN_LAMBDAS,
  effectiveScore,
  errorValue,
  type Figures,
  formatEvidence,
  type Gate,
  GATES,
  isPending,
  LAMBDAS,
  logs,
  meanOf,
  meanOrNull,
  peakOf,
  type Sample,
  type Thresholds,
  UP_LAMBDAS,
  wealthOf
} from "./Wealth.js"
import { type HealthBet, Pairing, REACTION_WINDOW_MS } from "./Pairing.js"

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
    this.window = {
      errorDelta: this.zeros("errorDelta"),
      toolDelta: this.zeros("toolDelta"),
      errorCeiling: this.zeros("errorCeiling"),
      toolCeiling: this.zeros("toolCeiling"),
      negativeDelta: this.zeros("negativeDelta")
    }
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
    if (sample.toolFailure !== null)
      this.bet(sample.at, "toolCeiling", sample.toolFailure - this.t.maxToolFailureRate, sample)
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
    while (
      this.reactedHead < this.reacted.length &&
      this.reacted[this.reactedHead]!.at < sample.at - REACTION_WINDOW_MS
    )
      this.reactedHead++
    const available = this.reacted.length - this.reactedHead
    if (available === 0) return
    const k = Math.max(1, Math.min(9, Math.floor(this.activeReacted / this.canaryReacted)))
    const block = this.reacted.splice(this.reacted.length - Math.min(k, available), Math.min(k, available))
    this.bet(
      sample.at,
      "negativeDelta",
      negative - meanOf(block.map((s) => s.negative ?? 0)) - this.t.maxNegativeRateDelta,
      sample
    )
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
    this.bet(
      sample.at,
      "errorDelta",
      errorValue(sample) - meanOf(block.map(errorValue)) - this.t.maxErrorRateDelta,
      sample
    )
    const tools = block.flatMap((s) => (s.toolFailure === null ? [] : [s.toolFailure]))
    if (sample.toolFailure !== null && tools.length > 0) {
      this.bet(sample.at, "toolDelta", sample.toolFailure - meanOf(tools) - this.t.maxToolFailureRateDelta, sample)
    }
  }

  private bet(at: number, gate: Gate, x: number, sample: Sample) {
    const b: HealthBet = {
      at,
      gate,
      terms: logs(this.lambdas[gate], x),
      error: errorValue(sample),
      toolFailure: sample.toolFailure
    }
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
    while (this.recentHead < this.recent.length && this.recent[this.recentHead]!.at < since)
      this.count(this.recent[this.recentHead++]!, -1)
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
      [
        "toolCeiling",
        ALPHA.toolCeiling,
        `tool-failure rate above AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE=${t.maxToolFailureRate}`
      ],
      [
        "errorDelta",
        ALPHA.errorDelta,
        `error rate more than AUTOTUNE_CANARY_MAX_ERROR_RATE_DELTA=${t.maxErrorRateDelta} above the active pack`
      ],
      [
        "toolDelta",
        ALPHA.toolDelta,
        `tool-failure rate more than AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE_DELTA=${t.maxToolFailureRateDelta} above the active pack`
      ],
      [
        "negativeDelta",
        ALPHA.negativeDelta,
        `users' 👎 share more than AUTOTUNE_CANARY_MAX_NEGATIVE_RATE_DELTA=${t.maxNegativeRateDelta} above the active pack's (${figures.reactions.canaryNegativeRate?.toFixed(2) ?? "-"} vs ${figures.reactions.activeNegativeRate?.toFixed(2) ?? "-"} over ${figures.reactions.canary}/${figures.reactions.active} reactions)`
      ]
    ]
    for (const [gate, alpha, what] of gates) {
      if (health[gate] >= 1 / alpha)
        return result(
          "rollback",
          gate,
          `health gate: ${what} (evidence ${formatEvidence(health[gate])} >= ${1 / alpha})`
        )
    }
    if (lone) {
      return result(
        "promote",
        "lone",
        "no active pack to compare with (DotClaw serves a lone canary to everyone) and the health gates pass"
      )
    }
    if (this.upCrossedAt < this.downCrossedAt) {
      return result(
        "promote",
        "score",
        `canary beats the active pack by more than ${t.minImprovement} (evidence ${formatEvidence(figures.eUp)} >= ${1 / ALPHA.promote})`
      )
    }
    if (this.downCrossedAt < Infinity) {
      return result(
        "rollback",
        "score",
        `canary scores worse than the active pack (evidence ${formatEvidence(figures.eDown)} >= ${1 / ALPHA.rollbackScore})`
      )
    }
    if (figures.nCanary >= t.maxSamples) {
      return result(
        "expire",
        "samples",
        `no conclusion after ${figures.nCanary} canary samples; keeping the active pack (inconclusive)`
      )
    }
    if (now - startedAt >= t.maxAgeMs) {
      return result(
        "expire",
        "age",
        `no conclusion after ${((now - startedAt) / 86_400_000).toFixed(1)} days; keeping the active pack (inconclusive)`
      )
    }
    return result(
      "wait",
      "no-evidence",
      `evidence so far: toward promote ${formatEvidence(figures.eUp, 2)} of ${1 / ALPHA.promote}, toward rollback ${formatEvidence(figures.eDown, 2)} of ${1 / ALPHA.rollbackScore}`
    )
  }
}

/**
 * What the judge scores, read from the store: a canary's turns, active turns paired with them, the trend sample
 * of the last two weeks; the stage-2 rule learned from the store's own pairs; and what a behavior still lacks
 * for the optimizer's first run.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, packVersion, readPack } from "../Domain/Pack.js"
import { turnsNeeded } from "../Domain/SearchShape.js"
import {
  applicableVolume,
  firstServedAt,
  type JudgeKey,
  newestTurnAt,
  type PairDraw,
  sampledTurns,
  servedVersions,
  turnsServedBy
} from "../store/Traces.js"
import { scoredTurnCount, stagePairs } from "../store/Scores.js"
import { canaryShares } from "../store/Packs.js"
import { type ShareChange, shareHistory } from "../Domain/Share.js"
import { escalation } from "./Escalation.js"
import type { Rubric } from "./Prompts.js"
import { pairRate, trendRate } from "./Sampling.js"
import type { Group, JudgeDeps, Row } from "./Tasks.js"

/** The trend sample is drawn from the last two weeks of turns (DotClaw keeps raw traces 14 days). */
const TREND_WINDOW_DAYS = 14
/** As canary/Stats.ts pairs a canary turn with active turns of the six hours before it. */
const PAIR_LEAD_MS = 6 * 3_600_000

export const makeSelection = ({ sql, config, rubrics }: Pick<JudgeDeps, "sql" | "config" | "rubrics">) => {
  const keyOf = (rubric: Rubric): JudgeKey => ({
    behavior: rubric.behavior,
    rubricVersion: rubric.version,
    stage1Model: config.judgeStage1Model
  })

  /**
   * The active turns in the canary's pair sample: a turn's fixed draw under the pair rate of the share the canary
   * had when the turn was served, the same rule the monitor reads its pairs by (canary/Canary.ts).
   */
  const pairDraw = (shares: ReadonlyArray<ShareChange> | "all"): PairDraw => {
    if (shares === "all") return "all"
    const rate = (share: number) => pairRate(config.judgeCanaryPairs, share)
    return { first: rate(shares[0]!.share), later: shares.slice(1).map((c) => ({ at: c.at, rate: rate(c.share) })) }
  }

  /**
   * The turns one pack version served for the behavior since `since`, oldest first, as judge rows: the canary
   * test bets on its pairs in time order up to the first one not judged yet, so a judge that falls behind
   * must catch up from the oldest, or the test would wait on it for good.
   */
  const servedBy = (
    rubric: Rubric,
    version: string,
    since: number,
    shares: ReadonlyArray<ShareChange> | "all",
    need: "canary" | "pair"
  ) => turnsServedBy(sql, keyOf(rubric), { version, since, draw: pairDraw(shares), need, limit: config.evalMaxTraces })

  /**
   * The trend sample: turns of the window whose fixed draw falls under the rate, read from the time index. With
   * `human`, the turns of the window a person gave a signal on (a user's reaction, a grade) instead: few, and what
   * the judge's agreement and alignment (align/) are measured on, so never left to the draw.
   */
  const trendSample = (
    rubric: Rubric,
    since: number,
    rate: number,
    canary: string | undefined,
    versions: ReadonlyArray<string>,
    human = false
  ) => sampledTurns(sql, keyOf(rubric), { since, rate, canary, versions, human, limit: config.evalMaxTraces })

  /** The stage-2 rule for a behavior, from its stage-1/stage-2 pairs of the last 30 days of turns. */
  const escalationFor = (rubric: Rubric, now: number) =>
    stagePairs(sql, rubric.behavior, rubric.version, now - 30 * 86_400_000).pipe(
      Effect.map((pairs) => escalation(pairs, { low: config.judgeUnsureLow, high: config.judgeUnsureHigh }))
    )

  /**
   * What this behavior's decisions need judged, most needed first, at most AUTOTUNE_EVAL_MAX_TRACES: every
   * canary turn, about AUTOTUNE_JUDGE_CANARY_PAIRS active turns beside each, then the daily trend sample.
   */
  const selectTraces = Effect.fn("Judge.selectTraces")(function* (rubric: Rubric) {
    const behavior = rubric.behavior
    const canaryRead = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    const canary = canaryRead._tag === "Valid" ? canaryRead.pack : undefined
    const active = yield* packVersion(activePath(config.outputDir, behavior), behavior)
    const versions = yield* servedVersions(sql, behavior)
    // The window ends at the newest stored turn, not now: a store read from old files samples its last weeks.
    const newest = yield* newestTurnAt(sql)
    const windowStart = config.judgeDailySample === 0 ? 0 : newest - TREND_WINDOW_DAYS * 86_400_000
    // The turns this rubric could judge at all, so a rubric that applies to some turns still gets its sample size.
    const volume = yield* applicableVolume(sql, behavior, windowStart)
    const days = volume.first === null ? 1 : (newest - volume.first) / 86_400_000
    const rate = trendRate(config.judgeDailySample, volume.n, days)
    const shares =
      canary === undefined
        ? []
        : shareHistory(yield* canaryShares(sql, behavior, canary.version), canary.metadata, config.canaryFraction)
    const pairs = pairRate(config.judgeCanaryPairs, shares[shares.length - 1]?.share ?? config.canaryFraction)
    const canaryRows = canary === undefined ? [] : yield* servedBy(rubric, canary.version, 0, "all", "canary")
    let pairRows: ReadonlyArray<Row> = []
    if (canary !== undefined && active !== undefined) {
      const started = yield* firstServedAt(sql, behavior, canary.version)
      // Active turns from a little before the canary's first turn: its first turns' partners (canary/Stats.ts).
      if (started !== undefined) pairRows = yield* servedBy(rubric, active, started - PAIR_LEAD_MS, shares, "pair")
    }
    const trendRows = yield* trendSample(rubric, windowStart, rate, canary?.version, versions)
    const humanRows = yield* trendSample(rubric, windowStart, rate, canary?.version, versions, true)
    const seen = new Set<string>()
    const rows = [...canaryRows, ...pairRows, ...humanRows, ...trendRows]
      .filter((r) => !seen.has(r.traceId) && seen.add(r.traceId))
      .slice(0, config.evalMaxTraces)
    return { rows, sampling: { trendRate: rate, pairRate: pairs, windowTurns: volume.n } }
  })

  /**
   * Per behavior without a live canary (the optimizer waits for it anyway): how many scored turns the
   * optimizer's first run still lacks, counting what the store holds under the current rubric and the canary
   * and pair turns judged now (as the optimizer counts them: turns with a reply), when this cycle's trend
   * sample can make up for it.
   */
  const optimizerShortfall = (groups: ReadonlyArray<Group>) =>
    Effect.gen(function* () {
      const needed = turnsNeeded(config.sampleSize)
      const short = new Map<Behavior, number>()
      for (const behavior of config.behaviors) {
        if ((yield* readPack(canaryPath(config.outputDir, behavior), behavior))._tag === "Valid") continue
        const stored = yield* scoredTurnCount(sql, behavior, rubrics[behavior].version)
        const count = (keep: (g: Group) => boolean) =>
          groups.filter(keep).reduce((n, g) => n + g.tasks.filter((t) => t.rubric.behavior === behavior).length, 0)
        const lack = needed - stored - count((g) => g.need !== "trend")
        // Only when this cycle's trend sample can cover it: otherwise the optimizer waits all the same, and
        // the turns go at half price.
        if (lack > 0 && lack <= count((g) => g.need === "trend")) short.set(behavior, lack)
      }
      return short
    })

  return { selectTraces, escalationFor, optimizerShortfall } as const
}

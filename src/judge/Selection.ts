/**
 * What the judge scores, read from the store: a canary's turns, active turns paired with them, the trend sample
 * of the last two weeks; the stage-2 rule learned from the store's own pairs; and what a behavior still lacks
 * for the optimizer's first run.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, packVersion, readPack } from "../Domain/Pack.js"
import { turnsNeeded } from "../Domain/SearchShape.js"
import { servedVersions, storeError } from "../store/Db.js"
import { canaryShares } from "../store/Packs.js"
import { type ShareChange, shareHistory } from "../Domain/Share.js"
import { escalation, type LevelPairs } from "./Escalation.js"
import { JUDGE_COLUMNS, type Rubric } from "./Rubrics.js"
import { pairRate, trendRate } from "./Sampling.js"
import type { Group, JudgeDeps, Need, Row } from "./Work.js"

/** The trend sample is drawn from the last two weeks of turns (DotClaw keeps raw traces 14 days). */
const TREND_WINDOW_DAYS = 14
/** As canary/Stats.ts pairs a canary turn with active turns of the six hours before it. */
const PAIR_LEAD_MS = 6 * 3_600_000

export const makeSelection = ({ sql, config, rubrics }: Pick<JudgeDeps, "sql" | "config" | "rubrics">) => {
  const notJudged = (rubric: Rubric) => sql`t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}
    AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${rubric.behavior}
                    AND j.rubric_version = ${rubric.version} AND j.stage = 1 AND j.model = ${config.judgeStage1Model})
    AND NOT EXISTS (SELECT 1 FROM judge_batch_items b WHERE b.trace_id = t.trace_id AND b.behavior = ${rubric.behavior})`

  /**
   * The turns one pack version served for the behavior since `since`, oldest first, as judge rows: the canary
   * test bets on its pairs in time order up to the first one not judged yet, so a judge that falls behind
   * must catch up from the oldest, or the test would wait on it for good.
   */
  const servedBy = (rubric: Rubric, version: string, since: number, shares: ReadonlyArray<ShareChange> | "all", need: Need) =>
    sql<Row>`
      SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt", ${sql.literal(need === "canary" ? "1" : "0")} AS "isCanary", p.version AS "packVersion", ${need} AS need
      FROM trace_packs p JOIN traces t ON t.trace_id = p.trace_id
      WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${version} AND p.created_at >= ${since} AND ${pairDraw(shares)} AND ${notJudged(rubric)}
      ORDER BY p.created_at LIMIT ${config.evalMaxTraces}`

  /**
   * The active turns in the canary's pair sample: a turn's fixed draw under the pair rate of the share the canary
   * had when the turn was served, the same rule the monitor reads its pairs by (canary/Canary.ts).
   */
  const pairDraw = (shares: ReadonlyArray<ShareChange> | "all") => {
    if (shares === "all") return sql`1 = 1`
    const rate = (share: number) => pairRate(config.judgeCanaryPairs, share)
    const later = shares.slice(1).reverse()
    if (later.length === 0) return sql`t.sample_draw < ${rate(shares[0]!.share)}`
    const cases = later.map((c) => sql`WHEN p.created_at >= ${c.at} THEN ${rate(c.share)}`)
    return sql`t.sample_draw < (CASE ${sql.join(" ", false)(cases)} ELSE ${rate(shares[0]!.share)} END)`
  }

  /**
   * The trend sample: turns of the window whose fixed draw falls under the rate, read from the time index. With
   * `human`, the turns of the window a person gave a signal on (a user's reaction, a grade) instead: few, and what
   * the judge's agreement and alignment (align/) are measured on, so never left to the draw.
   */
  const trendSample = (rubric: Rubric, since: number, rate: number, canary: string | undefined, versions: ReadonlyArray<string>, human = false) =>
    sql<Row>`
      SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt",
             CASE WHEN EXISTS (SELECT 1 FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${canary ?? "\u0001none"}
                     AND p.created_at = t.created_at AND p.trace_id = t.trace_id) THEN 1 ELSE 0 END AS "isCanary",
             (SELECT p.version FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version IN ${sql.in(versions.length === 0 ? ["\u0001none"] : versions)}
                     AND p.created_at = t.created_at AND p.trace_id = t.trace_id LIMIT 1) AS "packVersion", ${human ? "human" : "trend"} AS need
      FROM traces t
      -- The human turns are read from the few reacted and graded ones by key, never by a scan of the window.
      WHERE ${human
        ? sql`t.trace_id IN (SELECT f.trace_id FROM feedback f UNION SELECT l.trace_id FROM labels l WHERE l.behavior = ${rubric.behavior})`
        : sql`t.sample_draw < ${rate}`} AND t.created_at >= ${since} AND ${notJudged(rubric)}
      ORDER BY t.created_at DESC
      LIMIT ${config.evalMaxTraces}`

  /** The stage-2 rule for a behavior, from its stage-1/stage-2 pairs of the last 30 days of turns. */
  const escalationFor = (rubric: Rubric, now: number) =>
    sql<LevelPairs>`
      SELECT ROUND(stage1_score * 4) / 4.0 AS level, COUNT(*) AS n, SUM(CASE WHEN ABS(stage1_score - stage2_score) >= 0.2499 THEN 1 ELSE 0 END) AS flips
      FROM trace_scores WHERE behavior = ${rubric.behavior} AND rubric_version = ${rubric.version} AND turn_at >= ${now - 30 * 86_400_000}
        AND stage1_score IS NOT NULL AND stage2_score IS NOT NULL
      GROUP BY 1`.pipe(
      Effect.map((pairs) => escalation(pairs, { low: config.judgeUnsureLow, high: config.judgeUnsureHigh })),
      Effect.mapError(storeError("read the judges' agreement"))
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
    const newest = (yield* sql<{ at: number | null }>`SELECT MAX(created_at) AS at FROM traces`)[0]?.at ?? 0
    const windowStart = config.judgeDailySample === 0 ? 0 : newest - TREND_WINDOW_DAYS * 86_400_000
    // The turns this rubric could judge at all, so a rubric that applies to some turns still gets its sample size.
    const volume = yield* sql<{ n: number; first: number | null }>`
      SELECT COUNT(*) AS n, MIN(t.created_at) AS first FROM traces t
      WHERE t.created_at >= ${windowStart} AND t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}`
    const days = volume[0]?.first == null ? 1 : (newest - volume[0].first) / 86_400_000
    const rate = trendRate(config.judgeDailySample, Number(volume[0]?.n ?? 0), days)
    const shares = canary === undefined ? [] : shareHistory(yield* canaryShares(sql, behavior, canary.version), canary.metadata, config.canaryFraction)
    const pairs = pairRate(config.judgeCanaryPairs, shares[shares.length - 1]?.share ?? config.canaryFraction)
    const canaryRows = canary === undefined ? [] : yield* servedBy(rubric, canary.version, 0, "all", "canary")
    let pairRows: ReadonlyArray<Row> = []
    if (canary !== undefined && active !== undefined) {
      const started = yield* sql<{ at: number | null }>`
        SELECT MIN(created_at) AS at FROM trace_packs WHERE behavior IN (${behavior}, '*') AND version = ${canary.version}`
      // Active turns from a little before the canary's first turn: its first turns' partners (canary/Stats.ts).
      if (started[0]?.at != null) pairRows = yield* servedBy(rubric, active, started[0].at - PAIR_LEAD_MS, shares, "pair")
    }
    const trendRows = yield* trendSample(rubric, windowStart, rate, canary?.version, versions)
    const humanRows = yield* trendSample(rubric, windowStart, rate, canary?.version, versions, true)
    const seen = new Set<string>()
    const rows = [...canaryRows, ...pairRows, ...humanRows, ...trendRows].filter((r) => !seen.has(r.traceId) && seen.add(r.traceId)).slice(0, config.evalMaxTraces)
    return { rows, sampling: { trendRate: rate, pairRate: pairs, windowTurns: Number(volume[0]?.n ?? 0) } }
  }, (effect) => Effect.catchTag(effect, "SqlError", (e) => Effect.fail(storeError("select traces to judge")(e))))

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
        const [stored] = yield* sql<{ n: number }>`
          SELECT COUNT(*) AS n FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id
          WHERE s.behavior = ${behavior} AND s.rubric_version = ${rubrics[behavior].version} AND t.output_text IS NOT NULL`.pipe(Effect.mapError(storeError("count scored turns")))
        const count = (keep: (g: Group) => boolean) => groups.filter(keep).reduce((n, g) => n + g.tasks.filter((t) => t.rubric.behavior === behavior).length, 0)
        const lack = needed - Number(stored?.n ?? 0) - count((g) => g.need !== "trend")
        // Only when this cycle's trend sample can cover it: otherwise the optimizer waits all the same, and
        // the turns go at half price.
        if (lack > 0 && lack <= count((g) => g.need === "trend")) short.set(behavior, lack)
      }
      return short
    })

  return { selectTraces, escalationFor, optimizerShortfall } as const
}

/**
 * Everything `autotune report` shows, aggregated in SQL: per day, per version, per stage, never a row per
 * trace (the lowest-scored turns are a LIMIT, the canary's evidence one row per look).
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import type { BehaviorFaultAt } from "../Domain/Errors.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { canaryShares, deploymentEvents, optimizeRuns } from "../store/Packs.js"
import { inPercent, packShare, toPercent } from "../Domain/Share.js"
import { dailyScores, dailyVerdicts, lowestScored, maskedTurnsSince } from "../store/Scores.js"
import { humanSignalScores, recentAttempts } from "../store/Reactions.js"
import { agentSpendByDay, anyTurn, turnsSince } from "../store/Traces.js"
import type { CostBeside } from "../Domain/Cost.js"
import { costBeside } from "./Cost.js"
import { dailySpend, spentSince } from "../store/Spend.js"
import { decisions } from "../store/Decisions.js"
import { lastCycleFaults } from "../store/Runs.js"
import { type Agreement, type LabelAgreement, levelOf } from "../judge/Agreement.js"
import { ALPHA } from "../canary/Stats.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { Rubrics } from "../judge/RubricBook.js"
import { type PendingPack, pendingPack } from "./Packs.js"
import { type DiffPart, wordDiff } from "./Diff.js"
import { DAY_MS, type DayScores, dayOf, scoreSeries, type SeriesPoint, trendOf, type Trend } from "./Series.js"

export interface ReportData {
  readonly generatedAt: string
  readonly days: number
  readonly spend: {
    readonly last24hUsd: number
    readonly last30dUsd: number
    readonly dailyBudgetUsd: number
    readonly unknownCostCalls: number
  }
  readonly spendDaily: ReadonlyArray<SpendDay>
  /** The agent's own spend per day of the window, from its traces (what autotune's spend is set beside). */
  readonly agentDaily: ReadonlyArray<{
    readonly day: string
    readonly turns: number
    readonly priced: number
    readonly usd: number
  }>
  /** autotune's spend beside the agent's over the last 24 hours, 7 and 30 days, and the share. */
  readonly cost: ReadonlyArray<CostBeside>
  readonly behaviors: ReadonlyArray<BehaviorReport>
  /** No trace and no LLM call in the store yet: the page says so. */
  readonly empty: boolean
}

export interface SpendDay {
  readonly day: string
  readonly stage: string
  readonly model: string
  readonly calls: number
  readonly failed: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
  readonly unknownCost: number
}

export interface AlignAttempt {
  readonly at: string
  readonly outcome: string
  readonly rubricVersion: string
  readonly candidate: string | null
  /** The held-out test, when one ran: agreement of the current rubric and the candidate, the lower bound, its alpha. */
  readonly test: {
    readonly n: number
    readonly current: number | null
    readonly candidate: number | null
    readonly lower: number | null
    readonly alpha: number
  } | null
  readonly why: string
}

export interface BehaviorReport {
  readonly behavior: Behavior
  /** This behavior's own faults in the last cycle ("deploy: cannot write …"): the other behaviors went on. */
  readonly faults: ReadonlyArray<string>
  /** The rubric version the page's scores are of (the current one). */
  readonly rubricVersion: string
  readonly active: string | null
  readonly canary: string | null
  readonly canaryPercent: number | null
  readonly trend: Trend
  /** Of the last 7 days' turns, how many the judge scored for this behavior (a sample: the rest stays unjudged). */
  readonly judged7d: { readonly scored: number; readonly turns: number }
  readonly spend30dUsd: number
  readonly lastDecision: {
    readonly action: string
    readonly version: string
    readonly reason: string
    readonly at: string
  } | null
  readonly scores: ReadonlyArray<SeriesPoint>
  readonly events: ReadonlyArray<{ readonly at: string; readonly version: string; readonly action: string }>
  readonly canaryRun: CanaryRun | null
  readonly optimizer: ReadonlyArray<OptimizerRun>
  readonly judge: {
    readonly daily: ReadonlyArray<JudgeDay>
    readonly agreement: Agreement
    /** The judge against a person's grades (`autotune label`): Spearman and weighted kappa with their intervals. */
    readonly grades: LabelAgreement
    readonly addressedMasked7d: number
    /** Per judge-score band (1: 0-0.2 ... 5: 0.8-1): users' reactions and a person's grades of the turns in it. */
    readonly calibration: ReadonlyArray<CalibrationBand>
    /** Alignment's attempts at this behavior's rubric in the window (align/), newest first. */
    readonly alignment: ReadonlyArray<AlignAttempt>
  }
  /** What optimize selected and has not shipped (under AUTOTUNE_DEPLOY_APPROVAL=manual it waits for a person). */
  readonly pending: PendingPack | null
  readonly lowest: ReadonlyArray<{
    readonly traceId: string
    readonly at: string
    readonly score: number
    readonly reason: string
    readonly input: string
    readonly output: string
  }>
}

/** Per judge-score band (0-0.2 is 1, ..., 0.8-1 is 5): the reactions and grades of its turns. */
export const calibrationOf = (
  rows: ReadonlyArray<{ readonly score: number; readonly negative: number | null; readonly grade: number | null }>
): Array<CalibrationBand> => {
  const bands = new Map<number, { reactions: number; thumbsUp: number; grades: number; gradeSum: number }>()
  for (const r of rows) {
    const band = levelOf(Number(r.score))
    const b = bands.get(band) ?? { reactions: 0, thumbsUp: 0, grades: 0, gradeSum: 0 }
    if (r.negative !== null) {
      b.reactions++
      if (Number(r.negative) === 0) b.thumbsUp++
    }
    if (r.grade !== null) {
      b.grades++
      b.gradeSum += Number(r.grade)
    }
    bands.set(band, b)
  }
  return [...bands.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([band, b]) => ({ band, ...b, meanGrade: b.grades === 0 ? null : b.gradeSum / b.grades }))
}

export interface CalibrationBand {
  readonly band: number
  readonly reactions: number
  readonly thumbsUp: number
  readonly grades: number
  readonly meanGrade: number | null
}

export interface CanaryRun {
  readonly version: string
  readonly activeVersion: string | null
  readonly live: boolean
  readonly thresholds: { readonly promote: number; readonly rollback: number }
  /** The evidence at each look the monitor made, by canary samples scored then. */
  readonly looks: ReadonlyArray<{
    readonly at: string
    readonly n: number
    readonly eUp: number
    readonly eDown: number
    readonly percent: number | null
  }>
  /** The canary's share of requests over its life: where it went out and every step since, with why. */
  readonly shares: ReadonlyArray<{ readonly at: string; readonly percent: number; readonly reason: string }>
  readonly last: { readonly action: string; readonly reason: string; readonly figures: Record<string, unknown> } | null
}

export interface OptimizerRun {
  readonly at: string
  readonly outcome: string
  readonly baselineVersion: string
  readonly why: string | null
  readonly baseline: { readonly n: number; readonly mean: number | null } | null
  /** `label`: the candidate's id in its run (r<round>.<k>), or #<n> for runs recorded before rounds. */
  readonly heldOut: ReadonlyArray<{
    readonly candidate: number
    readonly label: string
    readonly n: number
    readonly mean: number | null
    readonly meanDiff: number
    readonly lowerBound: number
  }>
  /** Rounds and why they stopped; null for runs recorded before rounds. */
  readonly rounds: { readonly count: number; readonly stopped: string } | null
  readonly linted: ReadonlyArray<string>
  readonly calls: number | null
  readonly costUsd: number | null
  readonly version: string | null
  readonly diff: ReadonlyArray<DiffPart> | null
}

export interface JudgeDay {
  readonly day: string
  readonly stage1: number
  readonly stage2: number
  readonly unscored: number
  /** Share of stage-1 verdicts the judge could not give (unreadable twice). */
  readonly unscoredShare: number | null
  /** Stage-2 verdicts per stage-1 score given that day: how often the stronger judge was asked. */
  readonly stage2Share: number | null
  /** Mean |stage 1 - stage 2| on the turns of that day both scored. */
  readonly disagreement: number | null
}

const iso = (ms: number) => new Date(ms).toISOString()
const CLIP = 280
/** "Recent" for the lowest-scored turns: the last week, what a person can still act on. */
const RECENT_MS = 7 * DAY_MS
const clip = (text: string | null) => (text === null ? "" : text.length > CLIP ? `${text.slice(0, CLIP)}…` : text)

/** Which kind of work an llm_calls stage name is: the spend chart's colours. */
export const stageKind = (stage: string): string => {
  const [head, , tail] = stage.split(":")
  if (head === "judge") return "judge"
  if (head !== "optimize") return "other"
  return (
    ({ candidate: "proposal", predict: "replay", judge: "replay judge", rerank: "re-rank" } as Record<string, string>)[
      tail ?? ""
    ] ?? "other"
  )
}

/** The behavior faults the last recorded cycle reported (none before the first, or from older cycles' records). */

export const reportData = (days: number, at?: number, cycleFaults?: ReadonlyArray<BehaviorFaultAt>) =>
  Effect.gen(function* () {
    const now = at ?? (yield* Clock.currentTimeMillis)
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const faults = cycleFaults ?? (yield* lastCycleFaults(sql))
    const since = now - days * DAY_MS
    const sinceDay = dayOf(since)

    const spendRows = yield* dailySpend(sql, dayOf(now - 30 * DAY_MS))
    const last24 = yield* spentSince(sql, now - DAY_MS)
    const spendDaily = rollUpSpend(spendRows.filter((r) => r.day >= sinceDay))
    const hasTurns = yield* anyTurn(sql)
    const alignment = yield* JudgeAgreement
    const agreements = yield* alignment.agreements()
    const graded = yield* alignment.labelAgreements()

    const weekStart = Date.parse(`${dayOf(now - 6 * DAY_MS)}T00:00:00Z`)
    const turns7d = yield* turnsSince(sql, weekStart)
    const behaviors: Array<BehaviorReport> = []
    for (const behavior of config.behaviors) {
      const report = yield* behaviorReport(
        behavior,
        since,
        now,
        { users: agreements[behavior]!, grades: graded[behavior]!, fresh: alignment.fresh(behavior) },
        spendRows,
        turns7d
      )
      behaviors.push({
        ...report,
        faults: faults.filter((f) => f.behavior === behavior).map((f) => `${f.stage}: ${f.fault}`)
      })
    }
    return {
      generatedAt: iso(now),
      days,
      spend: {
        last24hUsd: last24,
        last30dUsd: spendRows.reduce((n, r) => n + r.costUsd, 0),
        dailyBudgetUsd: config.dailyBudgetUsd,
        unknownCostCalls: spendRows.reduce((n, r) => n + r.unknownCost, 0)
      },
      spendDaily,
      agentDaily: yield* agentSpendByDay(sql, Date.parse(`${sinceDay}T00:00:00Z`)),
      cost: yield* costBeside(sql, now, config.retentionDays),
      behaviors,
      empty: !hasTurns && spendRows.length === 0
    } satisfies ReportData
  })

/** Per day, kind of work and model: what the chart stacks and the table lists. */
const rollUpSpend = (rows: ReadonlyArray<SpendDay>): ReadonlyArray<SpendDay> => {
  const out = new Map<string, { -readonly [K in keyof SpendDay]: SpendDay[K] }>()
  for (const r of rows) {
    const stage = stageKind(r.stage)
    const key = `${r.day}\u0000${stage}\u0000${r.model}`
    const acc = out.get(key) ?? {
      day: r.day,
      stage,
      model: r.model,
      calls: 0,
      failed: 0,
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      unknownCost: 0
    }
    acc.calls += r.calls
    acc.failed += r.failed
    acc.tokensIn += r.tokensIn
    acc.tokensOut += r.tokensOut
    acc.costUsd += r.costUsd
    acc.unknownCost += r.unknownCost
    out.set(key, acc)
  }
  return [...out.values()]
}

const behaviorReport = (
  behavior: Behavior,
  since: number,
  now: number,
  human: { readonly users: Agreement; readonly grades: LabelAgreement; readonly fresh: (traceId: string) => boolean },
  spendRows: ReadonlyArray<SpendDay>,
  turns7d: number
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const rubric = (yield* Rubrics).current[behavior].version
    const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
    const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    const share = canary._tag === "Valid" ? packShare(canary.pack.metadata) : undefined

    // Per day and version, from the rollup the store keeps (never a row per turn).
    const days = yield* dailyScores(sql, behavior, rubric, dayOf(since))
    const verdicts = yield* dailyVerdicts(sql, behavior, dayOf(since))
    // Deployments, and the rubric's versions: scores of two rubric versions are never drawn as one line.
    const events = yield* deploymentEvents(sql, behavior, since)
    const latest = yield* decisions(sql, behavior, { limit: 1 })
    const lowest = yield* lowestScored(sql, behavior, rubric, Math.max(since, now - RECENT_MS))
    const masked = yield* maskedTurnsSince(sql, now - 7 * DAY_MS, behavior)
    // Calibration, from the few turns people reacted to or graded, to their scores (never a scan of every score);
    // for a rubric alignment chose, the turns that did not choose it.
    const signals = yield* humanSignalScores(sql, behavior, rubric)
    const calibration = calibrationOf(signals.filter((r) => human.fresh(r.traceId)))
    const attempts = yield* recentAttempts(sql, behavior, since, 20)
    const alignAttempts = attempts.map((a): AlignAttempt => ({ ...a, at: iso(a.at) }))
    const canaryVersion = canary._tag === "Valid" ? canary.pack.version : (latest[0]?.version ?? null)
    const last = latest[0]
    return {
      behavior,
      rubricVersion: rubric,
      active: active._tag === "Valid" ? active.pack.version : null,
      canary: canary._tag === "Valid" ? canary.pack.version : null,
      canaryPercent: share === undefined ? null : toPercent(share),
      trend: trendOf(days, now),
      judged7d: {
        scored: days.filter((d) => d.day >= dayOf(now - 6 * DAY_MS)).reduce((n, d) => n + d.n, 0),
        turns: turns7d
      },
      spend30dUsd: spendRows.filter((r) => r.stage.split(":")[1] === behavior).reduce((n, r) => n + r.costUsd, 0),
      lastDecision:
        last === undefined
          ? null
          : { action: last.action, version: last.version, reason: last.reason, at: iso(last.at) },
      scores: scoreSeries(days),
      events: events.map((e) => ({ at: iso(e.at), version: e.version, action: e.action })),
      canaryRun: canaryVersion === null ? null : yield* canaryRun(behavior, canaryVersion, canary._tag === "Valid"),
      optimizer: yield* optimizerRuns(behavior, since),
      judge: {
        daily: judgeDays(verdicts, days),
        agreement: human.users,
        grades: human.grades,
        addressedMasked7d: masked,
        calibration,
        alignment: alignAttempts
      },
      pending: yield* pendingPack(behavior, active._tag === "Valid" ? active.pack.instructions : null),
      lowest: lowest.map((r) => ({
        traceId: r.traceId,
        at: iso(r.at),
        score: r.score,
        reason: r.reason,
        input: clip(r.input),
        output: clip(r.output)
      }))
    } satisfies Omit<BehaviorReport, "faults">
  })

const judgeDays = (
  verdicts: ReadonlyArray<{ day: string; stage: number; scored: number; unscored: number }>,
  days: ReadonlyArray<DayScores & { both: number; gapSum: number }>
): ReadonlyArray<JudgeDay> => {
  const out = new Map<
    string,
    { day: string; stage1: number; stage2: number; unscored: number; both: number; gapSum: number }
  >()
  const at = (day: string) =>
    out.get(day) ?? out.set(day, { day, stage1: 0, stage2: 0, unscored: 0, both: 0, gapSum: 0 }).get(day)!
  for (const v of verdicts) {
    const d = at(v.day)
    if (v.stage === 1) {
      d.stage1 += v.scored
      d.unscored += v.unscored
    } else d.stage2 += v.scored
  }
  for (const r of days) {
    const d = at(r.day)
    d.both += r.both
    d.gapSum += r.gapSum
  }
  return [...out.values()]
    .sort((a, b) => (a.day < b.day ? -1 : 1))
    .map((d) => ({
      day: d.day,
      stage1: d.stage1,
      stage2: d.stage2,
      unscored: d.unscored,
      unscoredShare: d.stage1 + d.unscored === 0 ? null : d.unscored / (d.stage1 + d.unscored),
      stage2Share: d.stage1 === 0 ? null : d.stage2 / d.stage1,
      disagreement: d.both === 0 ? null : d.gapSum / d.both
    }))
}

/** The latest canary of a behavior: its evidence at each look and how it ended, or where it stands. */
const canaryRun = (behavior: Behavior, version: string, live: boolean) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const looks = [...(yield* decisions(sql, behavior, { version, limit: 500 }))].reverse()
    const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0)
    const lastLook = looks[looks.length - 1]
    return {
      version,
      activeVersion: lastLook?.activeVersion ?? null,
      live,
      thresholds: { promote: 1 / ALPHA.promote, rollback: 1 / ALPHA.rollbackScore },
      looks: looks.map((l) => ({
        at: iso(l.at),
        n: num(l.figures["nCanary"]),
        eUp: num(l.figures["eUp"]),
        eDown: num(l.figures["eDown"]),
        percent: (l.figures["share"] as { percent?: number } | undefined)?.percent ?? null
      })),
      shares: inPercent(yield* canaryShares(sql, behavior, version)).map((r) => ({
        at: iso(r.at),
        percent: r.percent,
        reason: r.reason
      })),
      last:
        lastLook === undefined ? null : { action: lastLook.action, reason: lastLook.reason, figures: lastLook.figures }
    } satisfies CanaryRun
  })

/** The last ten optimizer runs in the window; a selected winner's instructions as a diff against its baseline. */
const optimizerRuns = (behavior: Behavior, since: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* optimizeRuns(sql, behavior, since, 10)
    return rows.map((r): OptimizerRun => {
      const d = r.detail
      const body = r.body
      const single = d.winner ?? d.best
      return {
        at: iso(r.at),
        outcome: r.outcome,
        baselineVersion: r.baselineVersion,
        why: d.why ?? null,
        baseline: d.baseline ?? null,
        // Runs recorded before the per-candidate figures existed still show their best candidate.
        heldOut: (d.heldOut ?? (single === undefined ? [] : [{ ...single, candidate: 1 }])).map((h, i) => ({
          ...h,
          candidate: h.candidate ?? i + 1,
          label: h.id ?? `#${h.candidate ?? i + 1}`
        })),
        rounds: d.rounds === undefined ? null : { count: d.rounds.length, stopped: d.stopped ?? "" },
        linted: d.linted ?? [],
        calls: d.calls ?? null,
        costUsd: d.costUsd ?? null,
        version: d.version ?? null,
        diff:
          body?.instructions !== undefined && body.baselineInstructions !== undefined
            ? wordDiff(body.baselineInstructions, body.instructions)
            : null
      }
    })
  })

/**
 * canary/: ships a winning pack as a canary for a share of DotClaw's requests and decides it from live turns.
 * Canary.ts is the CanaryMonitor service: per behavior, promote, roll back, expire or wait, by anytime-valid
 * statistics (Stats.ts, pure) and health gates (errors, tool failures, users' 👎). Deployer.ts writes packs as
 * DotClaw reads them; PackStore.ts keeps pack files and binds their records (store/Packs.ts), Versions.ts names them.
 * May import: Domain, config, privacy, store, llm, ingest, judge
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { AppConfig } from "../config/Table.js"
import { applicableVolume } from "../store/Traces.js"
import { armTurns, type ArmTurn, recordDecision as recordDecisionRow } from "../store/Decisions.js"
import { canaryShares } from "../store/Packs.js"
import { type Decision, decide, type Figures, type Sample } from "./Stats.js"
import { type Expected, type Forecast, forecast, forecastText, planOf, thresholdsOf } from "./Simulate.js"
import { ladder, nextStep, type Step } from "./Ramp.js"
import type { Behavior } from "../Domain/Behavior.js"
import { isBehaviorFault, isolated } from "../Domain/Errors.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { Deployer } from "./Deployer.js"
import { Rubrics } from "../judge/RubricBook.js"
import { pairRate } from "../judge/Sampling.js"
import { servesShare, type ShareChange, shareAt, shareHistory, toPercent } from "../Domain/Share.js"

export type CanaryAction = "promoted" | "rolled_back" | "waiting" | "expired" | "none"

export interface CanaryOutcome {
  readonly action: CanaryAction
  readonly canaryVersion?: string
  readonly activeVersion?: string | null
  readonly rule?: string
  readonly reason: string
  readonly figures?: Figures
  /** The canary's share of requests now, in percent, and what the monitor did about it at this look. */
  readonly percent?: number
  readonly step?: Step
}

const ACTIONS: Record<Decision["action"], CanaryAction> = {
  promote: "promoted",
  rollback: "rolled_back",
  expire: "expired",
  wait: "waiting"
}

/**
 * `pairs`: the share of active turns the judge scores beside a canary at each share it had (judge/Sampling.ts;
 * none for the canary's own turns, all judged), and the share each turn was served at.
 */
const toSample =
  (shares: ReadonlyArray<ShareChange>, pairs: ((share: number) => number) | undefined) =>
  (r: ArmTurn): Sample => {
    const share = shareAt(shares, r.at)
    return {
      at: r.at,
      score: r.score,
      error: r.isError === 1,
      toolFailure: r.toolCalls > 0 ? r.toolFailures / r.toolCalls : null,
      negative: r.negative,
      sampled: pairs === undefined || share === undefined || r.draw < pairs(share),
      pending: r.pending === 1,
      ...(share === undefined ? {} : { share })
    }
  }

/** What a look at a canary decided, as `once` and `canary` show it. */
const outcomeOf = (
  decision: Decision,
  canaryVersion: string,
  activeVersion: string | null,
  share: number,
  step: Step | undefined
): CanaryOutcome => ({
  action: ACTIONS[decision.action],
  canaryVersion,
  activeVersion,
  rule: decision.rule,
  reason: decision.reason,
  figures: decision.figures,
  percent: toPercent(share),
  ...(step === undefined ? {} : { step })
})

/**
 * How a canary `lift` better than the active pack would fare at this behavior's traffic of the last 7 days (turns
 * its rubric applies to), simulated through the monitor's own decision and steps (Simulate.ts).
 */
const makeExpected = (sql: SqlClient.SqlClient, config: AppConfig) => {
  const forecasts = new Map<string, Forecast>()
  return Effect.fn("CanaryMonitor.expected")(function* (behavior: Behavior, lift = 0.1, at?: number) {
    const now = at ?? (yield* Clock.currentTimeMillis)
    const since = now - 7 * 86_400_000
    const row = yield* applicableVolume(sql, behavior, since)
    // A store younger than a week: its turns over the days it covers (at least one).
    const days = row.first === null ? 7 : Math.min(7, Math.max(1, (now - row.first) / 86_400_000))
    const turnsPerDay = Math.round(row.n / days)
    // Behaviors whose rubrics apply to the same turns share one simulation.
    const key = `${turnsPerDay}:${lift}`
    const simulated =
      forecasts.get(key) ??
      (turnsPerDay === 0
        ? { turnsPerDay, lift, runs: 0, promotedShare: 0, medianDays: null }
        : forecast(turnsPerDay, lift, planOf(config)))
    forecasts.set(key, simulated)
    const withLife = { ...simulated, lifeDays: config.canaryMaxDays }
    return { ...withLife, text: forecastText(withLife) } satisfies Expected as Expected
  })
}

export class CanaryMonitor extends Effect.Service<CanaryMonitor>()("autotune/CanaryMonitor", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const deployer = yield* Deployer
    const { config } = yield* Settings
    // A rubric change re-judges the canary's turns and their pairs under the new version: both arms, one version.
    const rubrics = (yield* Rubrics).current
    const thresholds = thresholdsOf(config)

    /**
     * The turns one pack version served for a behavior since `since`, oldest first, as compact tuples:
     * the indexed (behavior, version) table does the filtering, and the cap bounds memory.
     */
    const samples = (
      behavior: Behavior,
      version: string,
      since: number,
      cap: number,
      shares: ReadonlyArray<ShareChange>,
      pairs?: (share: number) => number
    ) =>
      Effect.map(armTurns(sql, behavior, rubrics[behavior].version, { version, since, cap }), (rows) =>
        rows.map(toSample(shares, pairs))
      )

    const recordDecision = (
      behavior: Behavior,
      canaryVersion: string,
      activeVersion: string | null,
      d: Decision,
      share: { readonly percent: number; readonly step?: Step }
    ) =>
      recordDecisionRow(sql, {
        behavior,
        canaryVersion,
        activeVersion,
        action: ACTIONS[d.action],
        reason: d.reason,
        figures: { rule: d.rule, ...d.figures, share }
      })

    /** Judges whatever canary file is on disk for one behavior, a hand-placed one included, and acts on it. */
    const check = Effect.fn("CanaryMonitor.check")(function* (behavior: Behavior, at?: number) {
      const now = at ?? (yield* Clock.currentTimeMillis)
      yield* Effect.annotateCurrentSpan("autotune.behavior", behavior)
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag === "Missing")
        return { action: "none", reason: "no canary out" } satisfies CanaryOutcome as CanaryOutcome
      if (canary._tag === "Invalid") {
        return {
          action: "none",
          reason: `canary file is invalid and DotClaw ignores it: ${canary.reason}`
        } satisfies CanaryOutcome as CanaryOutcome
      }
      const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
      const activeVersion = active._tag === "Valid" ? active.pack.version : null
      const shareRows = yield* canaryShares(sql, behavior, canary.pack.version)
      // Its deployment is its first share; a canary placed by hand started when its file was written.
      const startedAt = shareRows[0]?.at ?? (yield* deployer.canaryStartedAt(behavior, canary.pack.version))
      const shares = shareHistory(shareRows, canary.pack.metadata, config.canaryFraction)
      const share = shares[shares.length - 1]!.share
      // A step recorded but not yet in the file (the process was stopped between the two): finish it.
      const pack =
        shareRows.length > 0 && !servesShare(canary.pack.metadata, share)
          ? yield* deployer.setShare(behavior, canary.pack, share)
          : canary.pack
      const cap = config.canaryMaxSamples * 2
      const canarySamples = yield* samples(behavior, canary.pack.version, startedAt - 1, cap, shares)
      // Active turns from a little before the canary went out, so the first canary turns have partners.
      // The judge scores only a share of them (about AUTOTUNE_JUDGE_CANARY_PAIRS per canary turn at the share
      // then served): that share, fixed by each turn's draw and time, is what the score test compares with; the
      // health gates see every turn.
      const pairs = (s: number) => pairRate(config.judgeCanaryPairs, s)
      const activeSamples =
        activeVersion === null
          ? []
          : yield* samples(behavior, activeVersion, startedAt - 6 * 3_600_000, cap * 10, shares, pairs)
      const decision = decide({
        canary: canarySamples,
        active: activeSamples,
        startedAt,
        now,
        thresholds,
        lone: activeVersion === null
      })
      const why = { rule: decision.rule, reason: decision.reason, figures: decision.figures }
      if (decision.action === "promote") yield* deployer.promote(behavior, why)
      else if (decision.action === "rollback") yield* deployer.removeCanary(behavior, "rolled_back", why)
      else if (decision.action === "expire") yield* deployer.removeCanary(behavior, "expired", why)
      // Only a canary autotune shipped moves (one placed by hand keeps the share its file says), and a lone one
      // serves everyone anyway.
      const step =
        shareRows.length === 0 || activeVersion === null
          ? undefined
          : nextStep(decision, {
              share,
              ladder: ladder(shares[0]!.share, config.canarySteps),
              turnsAtShare: canarySamples.filter((c) => c.at >= shares[shares.length - 1]!.at).length,
              minTurns: config.canaryStepMinTurns
            })
      if (step !== undefined && (step.kind === "up" || step.kind === "down")) {
        const f = decision.figures
        yield* deployer.setShare(behavior, pack, step.to, {
          reason: step.reason,
          figures: { eUpNow: f.eUpNow, eDownNow: f.eDownNow, health: f.health, pairs: f.pairs }
        })
      }
      yield* recordDecision(behavior, canary.pack.version, activeVersion, decision, {
        percent: toPercent(share),
        ...(step === undefined ? {} : { step })
      })
      if (decision.action !== "wait")
        yield* Effect.logInfo(
          `${behavior}: canary ${canary.pack.version} ${ACTIONS[decision.action]}: ${decision.reason}`
        )
      if (step?.kind === "up" || step?.kind === "down")
        yield* Effect.logInfo(`${behavior}: canary ${canary.pack.version} ${step.reason}`)
      return outcomeOf(decision, canary.pack.version, activeVersion, step?.to ?? share, step)
    })

    /** Every behavior's canary, each in its own failure domain: one behavior's fault leaves the others' decisions. */
    const checkAll = Effect.fn("CanaryMonitor.checkAll")(function* () {
      const decisions: Record<string, CanaryOutcome> = {}
      const faults: Record<string, string> = {}
      for (const behavior of config.behaviors) {
        const outcome = yield* isolated(check(behavior))
        if (isBehaviorFault(outcome)) faults[behavior] = outcome.fault
        else decisions[behavior] = outcome
      }
      return { decisions, faults }
    })

    const expected = makeExpected(sql, config)

    return { check, checkAll, expected } as const
  })
}) {}

/**
 * `autotune status`: per behavior, the packs serving, the canary's share and last decision, the judge's
 * agreement with people and the rubric in force; then the store, the spend and the batches. Read from the
 * store's rollups and the pack files, never a row per turn.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings, storeLocation } from "../config/Config.js"
import { canaryShares } from "../store/Packs.js"
import { inPercent, packShare, toPercent } from "../Domain/Share.js"
import { isPostgres } from "../store/Dialect.js"
import { leaderCycleRunning } from "../store/Runs.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import type { Agreement, LabelAgreement } from "../judge/Agreement.js"
import { CanaryMonitor } from "../canary/Canary.js"
import type { Expected } from "../canary/Simulate.js"
import { type PendingPack, pendingPack } from "../report/Packs.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { recentAttempts, reactionCounts } from "../store/Reactions.js"
import { ingestHosts, turnsSince } from "../store/Traces.js"
import { judgedSince, maskedTurnsSince } from "../store/Scores.js"
import { decisions } from "../store/Decisions.js"
import {
  behaviorSpend,
  egressRedactionsSince,
  pendingBatchTotals,
  spentInAll,
  spentSince,
  structuredAnswers
} from "../store/Spend.js"
import { Rubrics } from "../judge/RubricBook.js"
import { DAY_MS, dayOf } from "../report/Series.js"
import { costBeside } from "../report/Cost.js"

export interface BehaviorStatus {
  readonly behavior: Behavior
  readonly active: string | null
  readonly canary: string | null
  readonly canaryPercent: number | null
  readonly samples: { readonly canary: number; readonly active: number }
  readonly mean: { readonly canary: number | null; readonly active: number | null }
  /** The pairs the canary's last decision bet on (0 before its first pair). */
  readonly pairs: number
  readonly lastDecision: {
    readonly action: string
    readonly reason: string
    readonly at: string
    readonly eUp: number
    readonly eDown: number
  } | null
  readonly spendUsd: number
  /** How well the judge's scores separate users' 👍 from 👎 turns. */
  readonly humanAgreement: Agreement
  /** How the judge's scores agree with a person's grades (`autotune label`): Spearman and weighted kappa. */
  readonly labelAgreement: LabelAgreement
  /** Turns of the last 7 UTC days the judge has scored for this behavior (a sample: the rest stays unjudged). */
  readonly judged7d: number
  /** What optimize selected and has not shipped yet (under AUTOTUNE_DEPLOY_APPROVAL=manual it waits for a person). */
  readonly pending: PendingPack | null
  /** The live canary's shares of requests over its life (canary/Ramp.ts) and what its last look said about the next step. */
  readonly shares: ReadonlyArray<{ readonly at: number; readonly percent: number; readonly reason: string }>
  readonly nextStep: { readonly kind: string; readonly reason: string } | null
  /** How long a +0.10 canary is expected to take to decide at this behavior's traffic of the last 7 days. */
  readonly expected: Expected
  /** The judge's rubric: its version and origin, one waiting for approval, and alignment's last attempt (align/). */
  readonly rubric: {
    readonly version: string
    readonly source: string
    readonly pending: string | null
    readonly lastAttempt: { readonly at: string; readonly outcome: string; readonly why: string } | null
  }
}

/** Alignment's last attempt at a behavior's rubric, and what it concluded. */
const lastAttempt = (behavior: Behavior) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [last] = yield* recentAttempts(sql, behavior, 0, 1)
    if (last === undefined) return null
    return { at: new Date(last.at).toISOString(), outcome: last.outcome, why: last.why }
  })

/** Which store, and in a fleet its hosts (when each last ingested) and whether a leader's cycle runs now. */
const storeStatus = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const { config } = yield* Settings
  const hosts = yield* ingestHosts(sql)
  const fleet = isPostgres(sql)
  const leading = fleet ? yield* leaderCycleRunning(sql) : null
  return {
    kind: fleet ? ("postgres" as const) : ("sqlite" as const),
    location: storeLocation(config),
    thisHost: config.hostId,
    hosts: hosts.map((h) => ({ host: h.host, files: h.files, lastIngestAt: new Date(h.at).toISOString() })),
    /** PostgreSQL: whether some host's cycle holds the leader lock right now. */
    leaderCycleRunning: leading
  }
})

/**
 * Each arm's samples and mean as the canary's last decision counted them (canary/Stats.ts: a failed turn counts 0,
 * an unscored turn that did not fail is left out, the active arm is its pair sample), and the pairs bet on. What
 * `status` and /metrics show is what decided; before the canary's first look there is nothing to show.
 */
export const armsOfDecision = (figures: Readonly<Record<string, unknown>> | undefined) => {
  const count = (v: unknown) => (typeof v === "number" ? v : 0)
  const mean = (v: unknown) => (typeof v === "number" ? v : null)
  return {
    samples: { canary: count(figures?.["nCanary"]), active: count(figures?.["nActive"]) },
    mean: { canary: mean(figures?.["meanCanary"]), active: mean(figures?.["meanActive"]) },
    pairs: count(figures?.["pairs"])
  }
}

/** `autotune status`: everything aggregated in SQL, nothing but a row per behavior in memory. */
export const statusReport = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const monitor = yield* CanaryMonitor
  const { config } = yield* Settings

  const book = yield* Rubrics
  const rubrics = book.current

  // "Last 7 days" is the last 7 UTC days, today included: the daily rollups' unit.
  const now = yield* Clock.currentTimeMillis
  const week = dayOf(now - 6 * DAY_MS)
  const alignment = yield* JudgeAgreement
  const agreements = yield* alignment.humanAgreement()
  const labelled = yield* alignment.labelAgreements()
  const behaviors: Array<BehaviorStatus> = []
  for (const behavior of config.behaviors) {
    const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
    const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    const activeVersion = active._tag === "Valid" ? active.pack.version : null
    const canaryVersion = canary._tag === "Valid" ? canary.pack.version : null
    const [last] = yield* decisions(sql, behavior, { limit: 1 })
    const figures = last?.figures as
      { eUp?: number; eDown?: number; share?: { step?: { kind: string; reason: string } } } | undefined
    const spend = yield* behaviorSpend(sql, behavior)
    const share = canary._tag === "Valid" ? packShare(canary.pack.metadata) : undefined
    const judged = yield* judgedSince(sql, behavior, rubrics[behavior].version, week)
    behaviors.push({
      behavior,
      active: activeVersion,
      canary: canaryVersion,
      canaryPercent: share === undefined ? null : toPercent(share),
      ...armsOfDecision(canaryVersion !== null && last?.version === canaryVersion ? last.figures : undefined),
      lastDecision:
        last === undefined
          ? null
          : {
              action: last.action,
              reason: last.reason,
              at: new Date(last.at).toISOString(),
              eUp: figures?.eUp ?? 0,
              eDown: figures?.eDown ?? 0
            },
      spendUsd: spend,
      humanAgreement: agreements[behavior]!,
      labelAgreement: labelled[behavior]!,
      judged7d: judged,
      pending: yield* pendingPack(behavior, active._tag === "Valid" ? active.pack.instructions : null),
      shares: canaryVersion === null ? [] : inPercent(yield* canaryShares(sql, behavior, canaryVersion)),
      nextStep:
        canaryVersion === null || last?.version !== canaryVersion || figures?.share?.step === undefined
          ? null
          : { kind: figures.share.step.kind, reason: figures.share.step.reason },
      expected: yield* monitor.expected(behavior),
      rubric: {
        version: rubrics[behavior].version,
        source: book.history(behavior).find((v) => v.status === "active")?.source ?? "built-in",
        pending: book.pending(behavior)?.version ?? null,
        lastAttempt: yield* lastAttempt(behavior)
      }
    })
  }
  // llm_calls is never pruned and grows by millions of rows: totals come from its daily rollup (the last
  // 24 hours from its time index).
  const spentAll = yield* spentInAll(sql)
  const spentDay = yield* spentSince(sql, now - 86_400_000)
  // Structured answers that could not be used, per model, over the last 7 days.
  const parsing = yield* structuredAnswers(sql, week)
  const unparseable = Object.fromEntries(
    parsing.map((p) => [
      p.model,
      { structured: p.structured, unparsed: p.unparsed, share: p.structured === 0 ? 0 : p.unparsed / p.structured }
    ])
  )
  const egress = yield* egressRedactionsSince(sql, week)
  const weekStart = Date.parse(`${week}T00:00:00Z`)
  const turns = yield* turnsSince(sql, weekStart)
  const pending = yield* pendingBatchTotals(sql)
  const masked = yield* maskedTurnsSince(sql, weekStart)
  const reactions = yield* reactionCounts(sql)
  const cost = yield* costBeside(sql, now, config.retentionDays)
  return {
    store: yield* storeStatus,
    behaviors,
    spendUsd: spentAll,
    spend24hUsd: spentDay,
    /** autotune's spend beside the agent's own over the last 24 hours, 7 and 30 days, and the share. */
    cost,
    dailyBudgetUsd: config.dailyBudgetUsd,
    unparseable,
    /** Turns judged in the last 7 days whose text addressed the evaluator: those sentences were masked before judging. */
    addressedMasked7d: masked,
    /** Values the egress guard replaced in outbound requests over the last 7 days. */
    egressRedactions: egress,
    reactions,
    /** Turns of the last 7 UTC days, and how the judge samples them. */
    judging: { turns7d: turns, dailySample: config.judgeDailySample, canaryPairs: config.judgeCanaryPairs },
    /** Judge batches sent and not yet collected: their requests, the most they can cost (held against the budget). */
    batches: {
      mode: config.judgeBatch,
      pending: pending.batches,
      requests: pending.requests,
      reservedUsd: pending.reservedUsd,
      oldestSubmittedAt: pending.oldest === null ? null : new Date(pending.oldest).toISOString()
    }
  }
})

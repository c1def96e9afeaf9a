/**
 * What /metrics reports, read from the store after each cycle (and at start): the running totals, the LLM
 * spend's daily roll-up summed, and the state of each behavior's packs and canary. Aggregated in SQL; nothing
 * here holds or returns message text.
 */
import { canaryShare } from "../Domain/Share.js"
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { ALPHA } from "../canary/Stats.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { Rubrics } from "../judge/RubricBook.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import type { SpendDay } from "../report/ReportData.js"
import { DAY_MS, dayOf } from "../report/Series.js"
import { costBeside } from "../report/Cost.js"
import type { CostBeside } from "../Domain/Cost.js"
import { storeError } from "../store/Db.js"
import { storeBytes } from "../store/Dialect.js"
import { readTotals, type TotalRow } from "../store/Totals.js"
import { decisions } from "../store/Decisions.js"
import { scoresByVersion } from "../store/Scores.js"
import { freshness } from "../store/Runs.js"
import { spendByStage } from "../store/Spend.js"
import { armsOfDecision, type BehaviorStatus } from "./Status.js"

/** What `status` shows of a behavior's packs and arms, and what only the metrics need. */
export interface BehaviorSnapshot extends Pick<BehaviorStatus, "behavior" | "active" | "canary" | "samples" | "mean"> {
  /** The canary's share of requests, 0..1; null without a canary. */
  readonly canaryShare: number | null
  /** The live canary's evidence at its last look; null when it has not been looked at yet. */
  readonly evidence: { readonly promote: number; readonly rollback: number } | null
  readonly auc: number | null
  /** Spearman's correlation of the judge's scores with a person's grades; null before enough grades. */
  readonly gradeSpearman: number | null
  /** Mean judge score per pack version over the last 7 UTC days (the current rubric only). */
  readonly scoreByVersion: ReadonlyArray<{ readonly version: string; readonly mean: number; readonly n: number }>
}

/** The LLM roll-up summed over all days: the report's spend per day without the day. */
export type LlmTotal = Omit<SpendDay, "day" | "unknownCost"> & { readonly egressRedactions: number }

export interface Snapshot {
  readonly at: number
  readonly totals: ReadonlyArray<TotalRow>
  readonly llm: ReadonlyArray<LlmTotal>
  readonly newestTraceAt: number | null
  readonly lastSuccessAt: number | null
  readonly spent24hUsd: number
  readonly dailyBudgetUsd: number
  readonly intervalSeconds: number
  /** Whether the last cycle's LLM work was stopped by the circuit breaker (a failing provider). */
  readonly breakerOpen: boolean
  readonly storeBytes: number
  /** autotune's spend beside the agent's own over the last 24 hours, 7 and 30 days (report/Cost.ts). */
  readonly cost: ReadonlyArray<CostBeside>
  readonly behaviors: ReadonlyArray<BehaviorSnapshot>
  readonly thresholds: { readonly promote: number; readonly rollback: number }
}

const behaviorSnapshot = (behavior: Behavior, auc: number | null, gradeSpearman: number | null) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const rubric = (yield* Rubrics).current[behavior]
    const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
    const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    const activeVersion = active._tag === "Valid" ? active.pack.version : null
    const canaryVersion = canary._tag === "Valid" ? canary.pack.version : null
    const [last] = canaryVersion === null ? [] : yield* decisions(sql, behavior, { version: canaryVersion, limit: 1 })
    const figures = last?.figures as { eUp?: number; eDown?: number } | undefined
    const arms = armsOfDecision(last?.figures)
    const byVersion = yield* scoresByVersion(
      sql,
      behavior,
      rubric.version,
      dayOf((yield* Clock.currentTimeMillis) - 6 * DAY_MS)
    )
    return {
      behavior,
      active: activeVersion,
      canary: canaryVersion,
      canaryShare: canary._tag === "Valid" ? canaryShare(canary.pack.metadata, config.canaryFraction) : null,
      samples: arms.samples,
      mean: arms.mean,
      evidence: figures === undefined ? null : { promote: figures.eUp ?? 0, rollback: figures.eDown ?? 0 },
      auc,
      gradeSpearman,
      scoreByVersion: byVersion.map((v) => ({ version: v.version, n: Number(v.n), mean: Number(v.sum) / Number(v.n) }))
    } satisfies BehaviorSnapshot
  })

/** Reads the snapshot; runs with the cycle's services, so it sees what the cycle just wrote. */
export const readSnapshot = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const { config } = yield* Settings
  const runner = yield* LlmRunner
  const alignment = yield* JudgeAgreement
  const agreements = yield* alignment.agreements()
  const graded = yield* alignment.labelAgreements()
  const behaviors: Array<BehaviorSnapshot> = []
  for (const behavior of config.behaviors)
    behaviors.push(
      yield* behaviorSnapshot(behavior, agreements[behavior]?.auc ?? null, graded[behavior]?.spearman ?? null)
    )
  const llm = yield* spendByStage(sql)
  const now = yield* Clock.currentTimeMillis
  const times = yield* freshness(sql, now - DAY_MS)
  const halt = yield* runner.halt
  return {
    at: now,
    totals: yield* readTotals(sql),
    llm,
    newestTraceAt: times.newestTraceAt,
    lastSuccessAt: times.lastSuccessAt,
    spent24hUsd: times.spent,
    dailyBudgetUsd: config.dailyBudgetUsd,
    intervalSeconds: config.intervalMinutes * 60,
    breakerOpen: halt?.kind === "provider",
    storeBytes: yield* storeBytes(sql),
    cost: yield* costBeside(sql, now, config.retentionDays),
    behaviors,
    thresholds: { promote: 1 / ALPHA.promote, rollback: 1 / ALPHA.rollbackScore }
  } satisfies Snapshot
}).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError("read the metrics")(e))))

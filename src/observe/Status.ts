import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Settings, storeLocation } from "../config/Config.js"
import { storeError } from "../store/Db.js"
import { canaryShares } from "../store/Packs.js"
import { inPercent, packShare, toPercent } from "../Domain/Share.js"
import { isPostgres } from "../store/Dialect.js"
import { LEADER_LOCK } from "../store/Postgres.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import type { Agreement, LabelAgreement } from "../judge/Agreement.js"
import { CanaryMonitor } from "../canary/Canary.js"
import type { Expected } from "../canary/Simulate.js"
import { type PendingPack, pendingPack } from "../report/Packs.js"
import { Alignment } from "../judge/Alignment.js"
import { attemptDetail } from "../align/Signals.js"
import { Rubrics } from "../judge/RubricBook.js"
import { DAY_MS, dayOf } from "../report/Series.js"

export interface BehaviorStatus {
  readonly behavior: Behavior
  readonly active: string | null
  readonly canary: string | null
  readonly canaryPercent: number | null
  readonly samples: { readonly canary: number; readonly active: number }
  readonly mean: { readonly canary: number | null; readonly active: number | null }
  /** The pairs the canary's last decision bet on (0 before its first pair). */
  readonly pairs: number
  readonly lastDecision: { readonly action: string; readonly reason: string; readonly at: string; readonly eUp: number; readonly eDown: number } | null
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
    const rows = yield* sql<{ at: number; outcome: string; detailJson: string }>`
      SELECT at, outcome, detail_json AS "detailJson" FROM align_attempts WHERE behavior = ${behavior} ORDER BY at DESC LIMIT 1`
    const last = rows[0]
    if (last === undefined) return null
    return { at: new Date(Number(last.at)).toISOString(), outcome: last.outcome, why: attemptDetail(last.detailJson).why }
  })

/** Which store, and in a fleet its hosts (when each last ingested) and whether a leader's cycle runs now. */
const storeStatus = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const { config } = yield* Settings
  const hosts = yield* sql<{ host: string; files: number; at: number }>`
    SELECT host_id AS host, COUNT(*) AS files, MAX(updated_at) AS at FROM ingest_positions GROUP BY host_id ORDER BY host_id`
  const fleet = isPostgres(sql)
  const leading = fleet
    ? Number((yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = ${LEADER_LOCK} AND granted`)[0]?.n ?? 0) > 0
    : null
  return {
    kind: fleet ? ("postgres" as const) : ("sqlite" as const),
    location: storeLocation(config),
    thisHost: config.hostId,
    hosts: hosts.map((h) => ({ host: h.host, files: Number(h.files), lastIngestAt: new Date(Number(h.at)).toISOString() })),
    /** PostgreSQL: whether some host's cycle holds the leader lock right now. */
    leaderCycleRunning: leading
  }
})

/**
 * Each arm's samples and mean as the canary's last decision counted them (canary/Stats.ts: a failed turn counts 0,
 * an unscored turn that did not fail is left out, the active arm is its pair sample), and the pairs bet on. What
 * `status` and /metrics show is what decided; before the canary's first look there is nothing to show.
 */
export const armsOfDecision = (figuresJson: string | undefined) => {
  const f = figuresJson === undefined ? undefined : (JSON.parse(figuresJson) as { nCanary?: number; nActive?: number; meanCanary?: number | null; meanActive?: number | null; pairs?: number })
  return {
    samples: { canary: f?.nCanary ?? 0, active: f?.nActive ?? 0 },
    mean: { canary: f?.meanCanary ?? null, active: f?.meanActive ?? null },
    pairs: f?.pairs ?? 0
  }
}

/** `autotune status`: everything aggregated in SQL, nothing but a row per behavior in memory. */
export const statusReport = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const monitor = yield* CanaryMonitor
  const { config } = yield* Settings
  const fail = storeError("read status")

  const book = yield* Rubrics
  const rubrics = book.current

  // "Last 7 days" is the last 7 UTC days, today included: the daily rollups' unit.
  const week = dayOf(Date.now() - 6 * DAY_MS)
  const alignment = yield* Alignment
  const agreements = yield* alignment.humanAgreement()
  const labelled = yield* alignment.labelAgreements()
  const behaviors: Array<BehaviorStatus> = []
  for (const behavior of config.behaviors) {
    const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
    const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    const activeVersion = active._tag === "Valid" ? active.pack.version : null
    const canaryVersion = canary._tag === "Valid" ? canary.pack.version : null
    const decisions = yield* sql<{ action: string; reason: string; figuresJson: string; createdAt: number; version: string }>`
      SELECT action, reason, figures_json AS "figuresJson", created_at AS "createdAt", canary_version AS "version" FROM canary_decisions
      WHERE behavior = ${behavior} ORDER BY created_at DESC, id DESC LIMIT 1`.pipe(Effect.mapError(fail))
    const last = decisions[0]
    const figures = last === undefined ? undefined : (JSON.parse(last.figuresJson) as { eUp?: number; eDown?: number; share?: { step?: { kind: string; reason: string } } })
    const spend = yield* sql<{ usd: number | null }>`SELECT SUM(cost_usd) AS usd FROM llm_daily WHERE stage LIKE ${`%:${behavior}:%`}`.pipe(Effect.mapError(fail))
    const share = canary._tag === "Valid" ? packShare(canary.pack.metadata) : undefined
    const judged = yield* sql<{ n: number | null }>`
      SELECT SUM(n) AS n FROM score_daily WHERE behavior = ${behavior} AND rubric_version = ${rubrics[behavior].version} AND day >= ${week}`.pipe(Effect.mapError(fail))
    behaviors.push({
      behavior,
      active: activeVersion,
      canary: canaryVersion,
      canaryPercent: share === undefined ? null : toPercent(share),
      ...armsOfDecision(canaryVersion !== null && last?.version === canaryVersion ? last.figuresJson : undefined),
      lastDecision:
        last === undefined
          ? null
          : { action: last.action, reason: last.reason, at: new Date(last.createdAt).toISOString(), eUp: figures?.eUp ?? 0, eDown: figures?.eDown ?? 0 },
      spendUsd: spend[0]?.usd ?? 0,
      humanAgreement: agreements[behavior]!,
      labelAgreement: labelled[behavior]!,
      judged7d: Number(judged[0]?.n ?? 0),
      pending: yield* pendingPack(behavior, active._tag === "Valid" ? active.pack.instructions : null),
      shares: canaryVersion === null ? [] : inPercent(yield* canaryShares(sql, behavior, canaryVersion)),
      nextStep: canaryVersion === null || last?.version !== canaryVersion || figures?.share?.step === undefined ? null : { kind: figures.share.step.kind, reason: figures.share.step.reason },
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
  const totals = yield* sql<{ all: number | null; day: number | null }>`
    SELECT (SELECT SUM(cost_usd) FROM llm_daily) AS "all", (SELECT SUM(cost_usd) FROM llm_calls WHERE created_at >= ${Date.now() - 86_400_000}) AS "day"`.pipe(
    Effect.mapError(fail)
  )
  // Structured answers that could not be used, per model, over the last 7 days.
  const parsing = yield* sql<{ model: string; structured: number; unparsed: number }>`
    SELECT model, SUM(structured) AS structured, SUM(unparsed) AS unparsed FROM llm_daily
    WHERE day >= ${week} GROUP BY model HAVING SUM(structured) > 0 ORDER BY model`.pipe(Effect.mapError(fail))
  const unparseable = Object.fromEntries(parsing.map((p) => [p.model, { structured: p.structured, unparsed: p.unparsed, share: p.structured === 0 ? 0 : p.unparsed / p.structured }]))
  const egress = yield* sql<{ n: number | null }>`SELECT SUM(egress_redactions) AS n FROM llm_daily WHERE day >= ${week}`.pipe(Effect.mapError(fail))
  const turns = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM traces WHERE created_at >= ${Date.parse(`${week}T00:00:00Z`)}`.pipe(Effect.mapError(fail))
  const pending = yield* sql<{ batches: number; requests: number | null; reserved: number | null; oldest: number | null }>`
    SELECT COUNT(*) AS batches, SUM(requests) AS requests, SUM(estimated_usd) AS reserved, MIN(submitted_at) AS oldest FROM llm_batches WHERE status = 'pending'`.pipe(Effect.mapError(fail))
  const masked = yield* sql<{ n: number }>`
    SELECT COUNT(DISTINCT trace_id) AS n FROM judge_scores WHERE stage = 1 AND addressed_masked > 0 AND created_at >= ${Date.parse(`${week}T00:00:00Z`)}`.pipe(Effect.mapError(fail))
  const feedback = yield* sql<{ n: number; negative: number }>`SELECT COUNT(*) AS n, SUM(CASE WHEN feedback_type = 'negative' THEN 1 ELSE 0 END) AS negative FROM feedback`.pipe(Effect.mapError(fail))
  return {
    store: yield* storeStatus.pipe(Effect.mapError(fail)),
    behaviors,
    spendUsd: totals[0]?.all ?? 0,
    spend24hUsd: totals[0]?.day ?? 0,
    dailyBudgetUsd: config.dailyBudgetUsd,
    unparseable,
    /** Turns judged in the last 7 days whose text addressed the evaluator: those sentences were masked before judging. */
    addressedMasked7d: Number(masked[0]?.n ?? 0),
    /** Values the egress guard replaced in outbound requests over the last 7 days. */
    egressRedactions: Number(egress[0]?.n ?? 0),
    reactions: { total: Number(feedback[0]?.n ?? 0), negative: Number(feedback[0]?.negative ?? 0) },
    /** Turns of the last 7 UTC days, and how the judge samples them. */
    judging: { turns7d: Number(turns[0]?.n ?? 0), dailySample: config.judgeDailySample, canaryPairs: config.judgeCanaryPairs },
    /** Judge batches sent and not yet collected: their requests, the most they can cost (held against the budget). */
    batches: {
      mode: config.judgeBatch,
      pending: Number(pending[0]?.batches ?? 0),
      requests: Number(pending[0]?.requests ?? 0),
      reservedUsd: Number(pending[0]?.reserved ?? 0),
      oldestSubmittedAt: pending[0]?.oldest == null ? null : new Date(pending[0].oldest).toISOString()
    }
  }
})

/**
 * One cycle, in order: packs a fleet's store says to serve, ingest, behavior tuning, eval, alignment,
 * optimize, deploy (with the canary decisions), retention and the report; each stage's outcome kept apart, a
 * behavior's own fault isolated, and the run recorded with what it adds to the running totals.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Effect, Exit, Option } from "effect"
import { BehaviorTuner } from "../behavior/BehaviorTuner.js"
import { CanaryMonitor } from "../canary/Canary.js"
import { Settings } from "../config/Config.js"
import { warnIfUndecidable } from "./Approval.js"
import { Deployer } from "../canary/Deployer.js"
import { Feedback } from "../ingest/Feedback.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { Judge } from "../judge/Judge.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { Optimizer } from "../optimize/Optimize.js"
import { Aligner } from "../align/Align.js"
import { rescanAfterUpgrade } from "../ingest/Rescan.js"
import { prune } from "./Retention.js"
import { makeProgress } from "./Progress.js"
import { writeReport } from "../report/Report.js"
import { isPostgres } from "../store/Dialect.js"
import { LEADER_LOCK, withAdvisoryLock } from "../store/Postgres.js"
import { TraceSource } from "../ingest/Ingest.js"
import { type BehaviorFaultAt, isBehaviorFault, isolated } from "../Domain/Errors.js"
import { recordRun } from "../store/Runs.js"
import { cycleTotals } from "./Totals.js"
import * as path from "node:path"

/** What one stage of a run did: its summary, that it was skipped and why, or that it failed and how. */
export type StageResult<A> =
  | { readonly status: "ok"; readonly summary: A }
  | { readonly status: "skipped"; readonly why: string }
  | { readonly status: "failed"; readonly error: string }

/** New trace lines, then users' reactions from DotClaw (they join the traces they are about). */
export const ingestStage = Effect.gen(function* () {
  const source = yield* TraceSource
  const progress = makeProgress("ingest")
  const traces = yield* source
    .ingest((p) => progress.update(p.bytesDone, p.bytesTotal, path.basename(p.file)))
    .pipe(Effect.ensuring(Effect.sync(progress.done)))
  const feedback = yield* (yield* Feedback).importNew()
  return { ...traces, feedback }
})

/** Judges what is new, then checks the judge against users' reactions. */
export const evalStage = Effect.gen(function* () {
  const judge = yield* Judge
  const progress = makeProgress("eval")
  const summary = yield* judge
    .evaluate((done, total) => progress.update(done, total, `${done}/${total}`))
    .pipe(Effect.ensuring(Effect.sync(progress.done)))
  const alignment = yield* JudgeAgreement
  const humanAgreement = yield* alignment.humanAgreement()
  const labelAgreement = yield* alignment.labelAgreements()
  return { ...summary, humanAgreement, labelAgreement }
})

export const optimizeStage = Effect.flatMap(Optimizer, (o) => o.optimize())

/** Rubrics the people disagree with, amended on held-out evidence (align/Align.ts); the next run judges with them. */
export const alignStage = Effect.flatMap(Aligner, (a) => a.align())

export const behaviorStage = Effect.flatMap(BehaviorTuner, (t) => t.tune())

/** Ships what `optimize` selected, then runs the canary decisions for every behavior. */
export const deployStage = Effect.gen(function* () {
  const optimizer = yield* Optimizer
  const deployer = yield* Deployer
  const monitor = yield* CanaryMonitor
  const { config } = yield* Settings
  const deployed: Record<string, unknown> = {}
  const faults: Record<string, string> = {}
  const selections = yield* optimizer.selections
  // Under AUTOTUNE_DEPLOY_APPROVAL=manual a selection waits for `autotune approve` (pipeline/Approval.ts).
  const pending =
    config.deployApproval === "manual" ? selections.map((s) => ({ behavior: s.behavior, version: s.version })) : []
  // Each behavior in its own failure domain: a pack file that cannot be written stops that behavior's deploy, and
  // every other behavior still ships and gets its canary decision.
  for (const s of config.deployApproval === "manual" ? [] : selections) {
    const outcome = yield* isolated(
      deployer
        .deploy(
          s.behavior,
          { instructions: s.instructions, lineage: s.lineage, ...(s.metric === undefined ? {} : { metric: s.metric }) },
          { instructions: s.baselineInstructions },
          s.version,
          s.share
        )
        .pipe(Effect.catchTag("DeployRejected", (e) => Effect.succeed({ rejected: e.detail })))
    )
    if (isBehaviorFault(outcome)) {
      faults[s.behavior] = outcome.fault
      continue
    }
    deployed[s.behavior] = outcome
    yield* warnIfUndecidable(monitor, outcome, s.behavior)
  }
  const checked = yield* monitor.checkAll()
  for (const [behavior, fault] of Object.entries(checked.faults))
    faults[behavior] = faults[behavior] === undefined ? fault : `${faults[behavior]}; ${fault}`
  return { deployed, pending, decisions: checked.decisions, faults }
})

/** This host's packs dir brought up to the shared store's active and canary packs. */
const syncPacks = Effect.flatMap(Deployer, (d) => d.syncFromStore())

/** Why a fleet host's cycle did no judging, optimizing or deciding. */
export const FOLLOWER_WHY = "another host holds the fleet's leader lock (it judges, optimizes and decides this cycle)"

/**
 * A command that judges, optimizes or decides (eval, optimize, deploy, behavior, rollback) runs as the fleet's
 * leader on a shared store: when another host's cycle holds the lock, it says so and waits for it to end.
 */
export const asLeader = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    if (!isPostgres(sql)) return yield* effect
    // What this host serves follows the store first: the decisions read the packs dir.
    const led = Effect.zipRight(syncPacks, effect)
    const now = yield* withAdvisoryLock(sql, LEADER_LOCK, "try", led)
    if (Option.isSome(now)) return now.value
    yield* Effect.logInfo("another host holds the fleet's leader lock; waiting for its cycle to end")
    return Option.getOrThrow(yield* withAdvisoryLock(sql, LEADER_LOCK, "wait", led))
  })

/** The behaviors whose own part of a stage failed, from the stage's summary. */
export const faultsOf = (stage: string, summary: unknown): ReadonlyArray<BehaviorFaultAt> => {
  const faults =
    typeof summary === "object" && summary !== null && "faults" in summary
      ? (summary as { faults: Record<string, string> }).faults
      : {}
  return Object.entries(faults).map(([behavior, fault]) => ({ stage, behavior, fault }))
}

/** A stage's span carries the numbers at the top of its summary (counts, seconds, dollars), never its text. */
const annotateCounts = (summary: unknown) =>
  typeof summary !== "object" || summary === null
    ? Effect.void
    : Effect.annotateCurrentSpan(
        Object.fromEntries(
          Object.entries(summary)
            .filter(([, v]) => typeof v === "number")
            .map(([k, v]) => [`autotune.${k}`, v as number])
        )
      )

/** Runs a stage and reports instead of failing, so the next stages still run where they can; the caller logs. */
export const runStage = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) =>
  Effect.map(
    Effect.exit(
      effect.pipe(
        Effect.tap(annotateCounts),
        Effect.withSpan(`stage ${name}`, { attributes: { "autotune.stage": name } })
      )
    ),
    (exit): StageResult<A> => {
      if (Exit.isSuccess(exit)) return { status: "ok", summary: exit.value }
      const failure = Cause.failureOption(exit.cause)
      const error =
        failure._tag === "Some"
          ? ((failure.value as { message?: string }).message ?? String(failure.value))
          : (Cause.pretty(exit.cause).split("\n")[0] ?? "failed")
      return { status: "failed", error: `${name}: ${error}` }
    }
  )

/**
 * One full cycle: ingest, behavior (when AUTOTUNE_BEHAVIOR_ENABLED=1), eval, optimize, deploy and canary
 * decisions, alignment of the rubrics (AUTOTUNE_ALIGN). LLM stages are skipped without a provider.
 */
export const onceStages = Effect.gen(function* () {
  const runner = yield* LlmRunner
  const { config } = yield* Settings
  const sql = yield* SqlClient.SqlClient
  const startedAt = yield* Clock.currentTimeMillis
  // After an upgrade that changed the rules, what older rules stored is cleaned before anything else runs.
  const rescan = yield* runStage("redact", rescanAfterUpgrade)
  // A fleet's store says which packs each host serves: this host's packs dir follows it first.
  const fleet = isPostgres(sql)
  const packs = fleet
    ? yield* runStage("packs", syncPacks)
    : ({ status: "skipped", why: "one host (SQLite store)" } as const)
  const ingest = yield* runStage("ingest", ingestStage)
  const llmSkip = runner.provider.available ? undefined : runner.provider.why
  // Once a stage has stopped the LLM work (a wrong key, an unknown model, a failing provider), later LLM
  // stages are not started: they would fail the same way, and the cause is reported once.
  const llmStage = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      if (llmSkip !== undefined) return { status: "skipped", why: llmSkip } as const
      const halt = yield* runner.halt
      if (halt !== undefined) return { status: "skipped", why: `not run: ${halt.detail}` } as const
      return yield* runStage(name, effect)
    })
  const decide = Effect.gen(function* () {
    const behavior = config.behaviorEnabled
      ? yield* runStage("behavior", behaviorStage)
      : ({ status: "skipped", why: "AUTOTUNE_BEHAVIOR_ENABLED=0" } as const)
    const evaluation = yield* llmStage("eval", evalStage)
    const optimize = yield* llmStage("optimize", optimizeStage)
    // Canary decisions need no LLM: they read stored scores and error rates.
    const deploy = yield* runStage("deploy", deployStage)
    // After the decisions, which read this run's rubric: an adopted rubric is read by the next run, whole.
    const align = config.align
      ? yield* llmStage("align", alignStage)
      : ({ status: "skipped", why: "AUTOTUNE_ALIGN=0" } as const)
    // After the canary decisions: what they still need is known, the rest past AUTOTUNE_RETENTION_DAYS goes.
    const retention = yield* runStage("retention", prune())
    return { behavior, eval: evaluation, optimize, deploy, align, retention }
  })
  // In a fleet, judging, optimizing and deciding run on one host at a time; the others only ingest.
  const led = fleet ? yield* withAdvisoryLock(sql, LEADER_LOCK, "try", decide) : Option.some(yield* decide)
  const follower = { status: "skipped", why: FOLLOWER_WHY } as const
  const {
    behavior,
    eval: evaluation,
    optimize,
    deploy,
    align,
    retention
  } = Option.getOrElse(led, () => ({
    behavior: follower,
    eval: follower,
    optimize: follower,
    deploy: follower,
    align: follower,
    retention: follower
  }))
  const behaviorFaults = Object.entries({ eval: evaluation, optimize, deploy }).flatMap(([stage, r]) =>
    r.status === "ok" ? faultsOf(stage, r.summary) : []
  )
  // Last, so the page shows this cycle's decisions; written atomically, so a reader never sees half of it.
  const report = config.report
    ? yield* runStage("report", writeReport(config.reportPath, config.reportDays, behaviorFaults))
    : ({ status: "skipped", why: "AUTOTUNE_REPORT=0" } as const)
  const stages = { packs, ingest, behavior, eval: evaluation, optimize, deploy, align, retention, report }
  const checked = { redact: rescan, ...stages }
  // A behavior's own fault fails the cycle too (exit 1), named by stage and behavior: the others went on.
  const failed = [
    ...Object.entries(checked)
      .filter(([, r]) => r.status === "failed")
      .map(([name]) => name),
    ...behaviorFaults.map((f) => `${f.stage}:${f.behavior}`)
  ]
  const errors = [
    ...Object.values(checked).flatMap((r) => (r.status === "failed" ? [r.error] : [])),
    ...behaviorFaults.map((f) => `${f.stage} ${f.behavior}: ${f.fault}`)
  ]
  const result = {
    stages,
    failed,
    errors,
    behaviorFaults,
    skippedLlm: llmSkip,
    rescan: rescan.status === "ok" ? (rescan.summary ?? null) : null,
    budget: yield* runner.budget
  }
  // The run's record, for reports and for looking back, with what it adds to the running totals /metrics
  // reports; together or not at all. Failing to write them does not fail the run.
  yield* recordRun(
    sql,
    { runId: runner.runId, command: "once", startedAt, failed: failed.length > 0, summary: result },
    cycleTotals(result)
  ).pipe(Effect.catchAll((e) => Effect.logWarning(`could not record the run: ${e.detail}`)))
  return result
})

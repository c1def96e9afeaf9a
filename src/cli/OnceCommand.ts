/**
 * `autotune once` (and `autotune` alone): one full cycle under the run lock, and its summary.
 */
import { Command } from "@effect/cli"
import { Effect, Either } from "effect"
import { StageFailed } from "../Domain/Errors.js"
import { printJson, printLine } from "./Output.js"
import { FOLLOWER_WHY, type onceStages } from "../pipeline/Pipeline.js"
import { onceLocked } from "../pipeline/Runner.js"
import { withTracing } from "../observe/Observe.js"
import { VERSION } from "../Domain/Version.js"
import { behaviorText } from "./BehaviorCommand.js"
import { Common, common, configInput } from "./Common.js"
import { deployText } from "./DeployCommand.js"
import { evalSummaryText } from "./EvalCommand.js"
import { ingestSummaryLine } from "./IngestCommand.js"
import { alignLines, optimizeText } from "./OptimizeCommand.js"

export const onceHandler = (opts: Common) =>
  Effect.gen(function* () {
    const input = configInput(opts)
    const outcome = yield* Effect.either(onceLocked(input).pipe(withTracing(input, VERSION)))
    if (Either.isLeft(outcome)) {
      if (outcome.left._tag !== "LockBusy") return yield* Effect.fail(outcome.left)
      // A timer run that finds the daemon (or another run) busy has nothing to do: not a failure.
      yield* Effect.logWarning(`${outcome.left.message}; this run is skipped`)
      if (opts.json) yield* printJson({ skipped: outcome.left.message })
      return
    }
    const run = outcome.right
    if (opts.json) yield* printJson(run)
    else yield* printLine(onceText(run))
    // One line that says which stage failed and why: it is what journald shows for the run.
    if (run.failed.length > 0)
      return yield* Effect.fail(new StageFailed({ stage: "once", detail: run.errors.join("; ") }))
  })

export const onceText = (run: Effect.Effect.Success<typeof onceStages>) => {
  const lines: Array<string> = []
  const { packs, ingest, deploy } = run.stages
  if (packs.status === "failed") lines.push(`packs: ${packs.error}`)
  else if (packs.status === "ok" && packs.summary.length > 0)
    lines.push(`packs from the store: ${packs.summary.join(", ")}`)
  lines.push(
    ingest.status === "ok"
      ? ingestSummaryLine(ingest.summary)
      : `ingest: ${ingest.status === "failed" ? ingest.error : ingest.why}`
  )
  // A fleet host that did not lead this cycle only ingested: one line says so.
  const follower = deploy.status === "skipped" && deploy.why === FOLLOWER_WHY
  if (follower) lines.push(`judge, optimize, deploy: ${deploy.why}`)
  else lines.push(...decisionLines(run))
  const page = run.stages.report
  if (page.status === "ok") lines.push(`report: ${page.summary.path}`)
  else if (page.status === "failed") lines.push(`report: ${page.error}`)
  return lines.join("\n")
}

/** What the leading host's cycle did after ingest: behavior, eval, optimize, deploy, retention. */
export const decisionLines = (run: Effect.Effect.Success<typeof onceStages>) => {
  const lines: Array<string> = []
  const { behavior, eval: evaluation, optimize, deploy } = run.stages
  if (behavior.status === "ok") lines.push(behaviorText(behavior.summary))
  else if (behavior.status === "failed") lines.push(`behavior: ${behavior.error}`)
  if (run.skippedLlm !== undefined) lines.push(`skipped eval and optimize: ${run.skippedLlm}`)
  else {
    lines.push(
      evaluation.status === "ok"
        ? evalSummaryText(evaluation.summary)
        : `eval: ${evaluation.status === "failed" ? evaluation.error : evaluation.why}`
    )
    lines.push(
      optimize.status === "ok"
        ? optimizeText(optimize.summary, "")
        : `optimize: ${optimize.status === "failed" ? optimize.error : optimize.why}`
    )
  }
  lines.push(
    deploy.status === "ok"
      ? deployText(deploy.summary)
      : `deploy: ${deploy.status === "failed" ? deploy.error : deploy.why}`
  )
  const align = run.stages.align
  if (align.status === "failed") lines.push(`align: ${align.error}`)
  else if (align.status === "ok") lines.push(...alignLines(align.summary))
  const kept = run.stages.retention
  if (kept.status === "failed") lines.push(`retention: ${kept.error}`)
  else if (kept.status === "ok" && kept.summary.traces > 0) {
    const r = kept.summary
    lines.push(
      `retention: ${r.traces} trace(s) older than ${r.cutoff} pruned, ${(r.bytesFreed / 1e6).toFixed(1)} MB given back${r.heldBy === null ? "" : ` (held back by the ${r.heldBy})`}`
    )
  }
  return lines
}

export const onceCommand = Command.make("once", common, onceHandler).pipe(
  Command.withDescription("One full cycle: ingest, behavior, eval, optimize, deploy and canary decisions")
)

/**
 * `autotune optimize [--dry-run]`: the optimizer's runs, or their plan and cost.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Record } from "effect"
import { Settings } from "../config/Config.js"
import { type Behavior } from "../Domain/Behavior.js"
import { printJson, printLine, table, usd } from "./Output.js"
import { CanaryMonitor } from "../canary/Canary.js"
import type { Expected } from "../canary/Simulate.js"
import { Optimizer } from "../optimize/Optimize.js"
import { alignStage, asLeader, optimizeStage } from "../pipeline/Pipeline.js"
import { type AlignPlan, Aligner } from "../align/Align.js"
import { common, failOnFaults, requireProvider, withApp } from "./Common.js"
import { egressLine } from "./Text.js"

/** `next`: what a person runs after a selection; inside `once`, which deploys it itself, nothing. */
export const optimizeText = (s: Effect.Effect.Success<typeof optimizeStage>, next = "; run `autotune deploy`") =>
  Object.entries(s.behaviors)
    .map(([b, o]) =>
      o.outcome === "skipped" || o.outcome === "failed"
        ? `optimize ${b}: ${o.outcome}: ${o.why}`
        : (o.outcome === "no_gain"
            ? `optimize ${b}: no gain, keeping the baseline: ${o.why} (${o.calls} calls, ${usd(o.costUsd)})`
            : `optimize ${b}: selected ${o.version} (${o.winner.id}, round ${o.winner.round}): +${o.winner.meanDiff.toFixed(3)} over the baseline (95% lower bound ${o.winner.lowerBound.toFixed(3)}, n=${o.winner.n}; ${o.calls} calls, ${usd(o.costUsd)})${next}`) +
          `\n  ${o.rounds.length} round(s), stopped at ${o.stopped}` +
          o.rounds
            .map(
              (r) =>
                `\n  round ${r.round}: parent ${r.parent}${r.mergedWith === undefined ? "" : ` merged with ${r.mergedWith}`}, ${r.proposed} proposed, ${r.accepted.length} beat it on the minibatch${r.accepted.length === 0 ? "" : ` (${r.accepted.map((a) => `${a.id} ${a.validationMean === null ? "-" : a.validationMean.toFixed(3)}`).join(", ")} on validation)`}`
            )
            .join("")
    )
    .join("\n")

/** One line per behavior alignment tried; a behavior it only considered is said in --json. */
export const alignLines = (s: Effect.Effect.Success<typeof alignStage>) =>
  Object.entries(s.behaviors)
    .flatMap(([b, o]) =>
      o.status !== "tried"
        ? []
        : [
            o.adopted !== null
              ? `align ${b}: rubric ${o.adopted} ${o.pending ? "waits for `autotune rubric approve " + b + "`" : "adopted; the next run judges with it"}: ${o.why}`
              : `align ${b}: current rubric kept: ${o.why}${o.dropped.length > 0 ? ` (${o.dropped.length} proposal(s) dropped: ${o.dropped.join("; ")})` : ""}`
          ]
    )
    .map((line) => line + ` (${s.calls} calls, ${usd(s.costUsd)})`)

export const alignPlanText = (plans: ReadonlyArray<AlignPlan>) =>
  plans
    .map((p) =>
      p.attempt
        ? `align ${p.behavior}: would try (${p.why}): up to ${p.calls} calls, ${usd(p.costUsd, 3)}`
        : `align ${p.behavior}: would not try: ${p.why}`
    )
    .join("\n")

export const planText = (p: Effect.Effect.Success<ReturnType<Optimizer["plan"]>>) =>
  Object.entries(p.behaviors)
    .map(([b, plan]) =>
      !plan.ready
        ? `optimize ${b}: would skip: ${plan.why}`
        : `optimize ${b}: up to ${plan.rounds} round(s) of ${plan.candidates} candidates; ${plan.heldOutTurns} held-out turns, ${plan.validationTurns} validation turns, reflection draws on ${plan.reflectionTurns} others; ` +
          `at most ${plan.upperBoundCalls} calls${plan.calls.reduce((n, c) => n + c.calls, 0) > plan.upperBoundCalls ? " (AUTOTUNE_OPTIMIZE_MAX_CALLS; the stages below add up every round with every child kept)" : ""}, about ${usd(plan.costUsd, 2)}\n` +
          table(
            ["STAGE", "MODEL", "CALLS", "TOKENS IN", "TOKENS OUT", "COST", "TOKENS FROM"],
            plan.calls.map((c) => [
              c.stage,
              c.model,
              String(c.calls),
              String(c.tokensIn),
              String(c.tokensOut),
              usd(c.costUsd, 3),
              c.tokensFrom
            ])
          )
    )
    .join("\n") + "\ndry run: no LLM call was made"

export const optimizeCommand = Command.make(
  "optimize",
  {
    ...common,
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Print the plan (behaviors, turns, calls, estimated cost per model) and make no call")
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        if (opts.dryRun) {
          const plan = yield* (yield* Optimizer).plan()
          // Whether a canary could decide within its life at this traffic is worth knowing before one ships.
          const monitor = yield* CanaryMonitor
          const canary: Record<string, Expected> = {}
          for (const [b, p] of Object.entries(plan.behaviors))
            if (p.ready) canary[b] = yield* monitor.expected(b as Behavior)
          // What the next `once` would spend aligning the rubrics, beside the optimizer's plan.
          const { config } = yield* Settings
          const align = config.align ? yield* (yield* Aligner).plan() : []
          return yield* opts.json
            ? printJson({ dryRun: true, ...plan, canary, align })
            : printLine(
                planText(plan) +
                  Object.entries(canary)
                    .map(([b, f]) => `\nif a canary ships for ${b}: ${f.text}`)
                    .join("") +
                  (align.length === 0 ? "" : `\n${alignPlanText(align)}`)
              )
        }
        yield* requireProvider
        const summary = yield* asLeader(optimizeStage)
        yield* opts.json ? printJson(summary) : printLine(optimizeText(summary) + egressLine(summary.egressRedactions))
        yield* failOnFaults("optimize", summary)
      })
    )
).pipe(Command.withDescription("Propose better instructions per behavior and keep only measured, held-out gains"))

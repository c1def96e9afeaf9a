/**
 * `autotune eval`: the judge's scores of what decisions need.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { StageFailed } from "../Domain/Errors.js"
import { printJson, printLine, table, usd } from "./Output.js"
import type { EvalSummary } from "../judge/Tasks.js"
import { asLeader, evalStage } from "../pipeline/Pipeline.js"
import { common, failOnFaults, requireProvider, withApp } from "./Common.js"
import { agreementLines, egressLine, fmt } from "./Text.js"

export const evalSummaryText = (s: EvalSummary) =>
  table(
    [
      "BEHAVIOR",
      "SCORED",
      "UNSCORED",
      "FAILED",
      "MEAN",
      "CANARY/PAIRS/TREND",
      "TREND RATE",
      "STAGE-2",
      "CALLS",
      "TOKENS",
      "COST"
    ],
    Object.entries(s.behaviors).map(([b, e]) => [
      b,
      String(e.scored),
      String(e.unscored),
      String(e.failed),
      fmt(e.mean),
      `${e.canaryTraces}/${e.pairTraces}/${e.trendTraces}`,
      `${(e.sampling.trendRate * 100).toFixed(1)}%`,
      `${(e.stage2Share * 100).toFixed(0)}%`,
      String(e.calls),
      String(e.tokensIn + e.tokensOut),
      usd(e.costUsd)
    ])
  ) +
  `\njudged: every canary turn, the active turns paired with them, and a daily sample for the trend (the trend rate of the turns); the rest stays unjudged` +
  (s.batches.startedDirect === 0
    ? ""
    : `\nstarted: ${s.batches.startedDirect} trend turn(s) judged at once, at full price (${usd(s.batches.startedDirectCostUsd)}), so that the optimizer has the turns it needs this cycle`) +
  (s.batches.mode === "off" && s.batches.collected === 0
    ? ""
    : `\nbatches: ${s.batches.submitted} trend turn(s) sent at half price, ${s.batches.collected} answer(s) collected, ${s.batches.pendingBatches} batch(es) still out` +
      (s.batches.pendingBatches === 0
        ? ""
        : `; their scores arrive with the first cycle after the batch ends (most end within an hour, all within 24 hours; the daemon runs one every AUTOTUNE_INTERVAL_MINUTES), or now with \`autotune eval --wait-batches\``)) +
  `\neval: ${s.calls} call(s), ${usd(s.costUsd)}${s.budgetExhausted ? `; stopped early, a budget ran out (AUTOTUNE_DAILY_BUDGET_USD or AUTOTUNE_MAX_COST_USD): ${Object.values(s.skippedForBudget).reduce((a, b) => a + b, 0)} trace judgement(s) left for a later run` : ""}` +
  egressLine(s.egressRedactions)

export const evalCommand = Command.make("eval", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      yield* requireProvider
      const summary = yield* asLeader(evalStage)
      yield* opts.json
        ? printJson(summary)
        : printLine(evalSummaryText(summary) + agreementLines(summary.humanAgreement, summary.labelAgreement))
      yield* failOnFaults("eval", summary)
      const failed = Object.values(summary.behaviors).reduce((n, b) => n + b.failed, 0)
      if (failed > 0 && !summary.budgetExhausted) {
        return yield* Effect.fail(
          new StageFailed({
            stage: "eval",
            detail: `${failed} judge call(s) failed; those traces are retried next run`
          })
        )
      }
    })
  )
).pipe(Command.withDescription("Score new traces with the LLM judge (two stages; idempotent; canary traces first)"))

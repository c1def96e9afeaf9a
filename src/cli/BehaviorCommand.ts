/**
 * `autotune behavior`: DotClaw's behavior.json knobs and the daily report.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { printJson, printLine } from "./Output.js"
import { asLeader, behaviorStage } from "../pipeline/Pipeline.js"
import { common, withApp } from "./Common.js"

export const behaviorText = (s: Effect.Effect.Success<typeof behaviorStage>) =>
  [
    `behavior: ${s.why}`,
    ...("changes" in s ? (s.changes ?? []).map((c) => `  ${c.knob}: ${c.from} -> ${c.to} (${c.why})`) : []),
    ...("packs" in s ? Object.entries(s.packs ?? {}).map(([b, p]) => `  pack ${b}: ${p}`) : []),
    ...("report" in s ? [`  report: ${s.report}`] : [])
  ].join("\n")

export const behaviorCommand = Command.make("behavior", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* asLeader(behaviorStage)
      yield* opts.json ? printJson(summary) : printLine(behaviorText(summary))
    })
  )
).pipe(
  Command.withDescription(
    "Tune behavior.json from the last AUTOTUNE_BEHAVIOR_DAYS of traces and write the daily report"
  )
)

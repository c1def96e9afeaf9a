/**
 * `autotune deploy`: ships what was selected, then every canary's decision.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { printJson, printLine } from "./Output.js"
import { asLeader, deployStage } from "../pipeline/Pipeline.js"
import { common, failOnFaults, withApp } from "./Common.js"

export const deployText = (s: Effect.Effect.Success<typeof deployStage>) => {
  const lines = Object.entries(s.deployed).map(([b, d]) => {
    const r = d as { version?: string; as?: string; rejected?: string }
    return r.rejected !== undefined
      ? `deploy ${b}: not deployed: ${r.rejected}`
      : `deploy ${b}: ${r.version} out as ${r.as}`
  })
  for (const [b, fault] of Object.entries(s.faults)) lines.push(`deploy ${b}: failed: ${fault}`)
  for (const p of s.pending)
    lines.push(
      `deploy ${p.behavior}: ${p.version} selected; waits for \`autotune approve ${p.behavior}\` or \`autotune reject ${p.behavior}\` (AUTOTUNE_DEPLOY_APPROVAL=manual)`
    )
  for (const [b, d] of Object.entries(s.decisions)) {
    if (d.action === "none") continue
    lines.push(
      `canary ${b}: ${d.action} (${d.reason})${d.step?.kind === "up" || d.step?.kind === "down" ? `; ${d.step.reason}` : d.percent === undefined || d.action !== "waiting" ? "" : `; at ${d.percent}%`}`
    )
  }
  return lines.length === 0 ? "deploy: nothing selected, no canary out" : lines.join("\n")
}

export const deployCommand = Command.make("deploy", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* asLeader(deployStage)
      yield* opts.json ? printJson(summary) : printLine(deployText(summary))
      yield* failOnFaults("deploy", summary)
    })
  )
).pipe(
  Command.withDescription(
    "Ship what optimize selected as canary packs, then promote, roll back or keep waiting on every canary"
  )
)

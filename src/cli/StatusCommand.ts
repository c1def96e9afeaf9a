/**
 * `autotune status`: per behavior, what its canary is doing and why; spend and the judge's health.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { printJson, printLine, shown, table, usd } from "./Output.js"
import { formatEvidence } from "../canary/Stats.js"
import { statusReport } from "../observe/Status.js"
import { common, withApp } from "./Common.js"
import { agreementText, batchesLine, costLine, fmt, pendingText } from "./Text.js"

/** The store, and in a fleet each host's last ingest and whether a leader's cycle runs now. */
export const storeLine = (s: Effect.Effect.Success<typeof statusReport>["store"]) => {
  if (s.kind === "sqlite") return `SQLite ${s.location}`
  const hosts = s.hosts
    .map((h) => `${h.host}${h.host === s.thisHost ? " (this host)" : ""} last ingest ${h.lastIngestAt}`)
    .join(", ")
  return `PostgreSQL ${s.location}; hosts: ${hosts === "" ? "none has ingested yet" : hosts}; ${s.leaderCycleRunning === true ? "a leader's cycle is running now" : "no cycle is running"}`
}

/** A live canary's share over its life and what its last look said about the next step. */
export const shareText = (b: Effect.Effect.Success<typeof statusReport>["behaviors"][number]) => {
  const path = b.shares.map((s) => `${s.percent}%`).join(" -> ")
  const last = b.shares.length > 1 ? b.shares[b.shares.length - 1]! : undefined
  return (
    `\ncanary share, ${b.behavior}: ${path === "" ? `${b.canaryPercent ?? "?"}% (placed by hand: fixed)` : path}` +
    (last === undefined ? "" : ` (${new Date(last.at).toISOString().slice(0, 16)}Z: ${last.reason})`) +
    (b.nextStep === null || b.nextStep.kind === "up" || b.nextStep.kind === "down"
      ? ""
      : `; next: ${b.nextStep.reason}`)
  )
}

/** A rubric that is not the built-in one, waits for approval, or that alignment tried: one line. */
export const rubricStatusText = (b: Effect.Effect.Success<typeof statusReport>["behaviors"][number]) => {
  const r = b.rubric
  if (r.source === "built-in" && r.pending === null && r.lastAttempt === null) return ""
  const parts = [`rubric ${b.behavior}: ${shown(r.version)} (${r.source})`]
  if (r.pending !== null)
    parts.push(`${shown(r.pending)} waits for \`autotune rubric approve ${b.behavior}\` or \`rubric reject\``)
  if (r.lastAttempt !== null)
    parts.push(`alignment ${r.lastAttempt.at.slice(0, 16)}Z: ${r.lastAttempt.outcome}, ${r.lastAttempt.why}`)
  return `\n${parts.join("; ")}`
}

export const statusCommand = Command.make("status", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const report = yield* statusReport
      if (opts.json) return yield* printJson(report)
      yield* printLine(
        table(
          [
            "BEHAVIOR",
            "ACTIVE",
            "CANARY (SHARE)",
            "N C/A",
            "MEAN C/A",
            "EVIDENCE UP/DOWN",
            "LAST DECISION",
            "SPEND $",
            "USERS AUC (N)",
            "GRADES RHO/KAPPA (N)"
          ],
          report.behaviors.map((b) => [
            b.behavior,
            b.active ?? "-",
            b.canary === null ? "-" : `${b.canary} (${b.canaryPercent ?? "?"}%)`,
            b.canary === null ? "-" : `${b.samples.canary}/${b.samples.active}`,
            b.canary === null ? "-" : `${fmt(b.mean.canary, 2)}/${fmt(b.mean.active, 2)}`,
            b.lastDecision === null
              ? "-"
              : `${formatEvidence(b.lastDecision.eUp)}/${formatEvidence(b.lastDecision.eDown)}`,
            b.lastDecision === null ? "-" : `${b.lastDecision.action}: ${b.lastDecision.reason}`.slice(0, 70),
            b.spendUsd.toFixed(4),
            agreementText(b.humanAgreement),
            b.labelAgreement.n === 0
              ? "-"
              : `${fmt(b.labelAgreement.spearman, 2)}/${fmt(b.labelAgreement.kappa, 2)} (${b.labelAgreement.n})`
          ])
        ) +
          `\nstore: ${storeLine(report.store)}` +
          `\ntotal LLM spend: $${report.spendUsd.toFixed(4)} (last 24 h: $${report.spend24hUsd.toFixed(4)})` +
          costLine(report.cost) +
          `\nusers' reactions imported: ${report.reactions.total} (${report.reactions.negative} 👎)` +
          `\njudged, last 7 days, of ${report.judging.turns7d} turns: ${report.behaviors.map((b) => `${b.behavior} ${b.judged7d}`).join(", ")}` +
          (report.judging.dailySample === 0
            ? " (every turn: AUTOTUNE_JUDGE_DAILY_SAMPLE=0)"
            : ` (a sample of ${report.judging.dailySample} a day per behavior, every canary turn and ${report.judging.canaryPairs === 0 ? "every active turn" : `about ${report.judging.canaryPairs} active turns per canary turn`}; the rest stays unjudged)`) +
          `\negress guard, last 7 days: ${report.egressRedactions} value(s) replaced before sending` +
          `\naddressed to the evaluator, last 7 days: ${report.addressedMasked7d} judged turn(s) had such sentences masked before judging` +
          batchesLine(report.batches) +
          `\ndaily budget: ${report.dailyBudgetUsd === 0 ? "none (AUTOTUNE_DAILY_BUDGET_USD=0)" : `${usd(report.spend24hUsd, 2)} of ${usd(report.dailyBudgetUsd, 2)} spent in the last 24 hours${report.spend24hUsd >= report.dailyBudgetUsd ? ": exhausted, LLM stages wait" : ""}`}` +
          Object.entries(report.unparseable)
            .map(
              ([model, p]) =>
                `\nunusable structured answers, last 7 days, ${model}: ${p.unparsed} of ${p.structured} (${(p.share * 100).toFixed(1)}%)`
            )
            .join("") +
          report.behaviors.flatMap((b) => (b.pending === null ? [] : [pendingText(b.behavior, b.pending)])).join("") +
          report.behaviors.map((b) => (b.canary === null ? "" : shareText(b))).join("") +
          report.behaviors
            .map((b) => `\nexpected at the last 7 days' traffic, ${b.behavior}: ${b.expected.text}`)
            .join("") +
          report.behaviors.map(rubricStatusText).join("")
      )
    })
  )
).pipe(
  Command.withDescription(
    "Per behavior: active and canary packs, samples and scores per arm, evidence, last decision, spend"
  )
)

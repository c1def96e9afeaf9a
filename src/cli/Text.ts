/**
 * Text helpers more than one command prints with: figures, word diffs, the judge's agreement, a pending pack.
 */
import { Record } from "effect"
import { usd } from "./Output.js"
import type { Agreement, LabelAgreement } from "../judge/Agreement.js"
import { type PendingPack } from "../report/Packs.js"
import { type DiffPart } from "../report/Diff.js"
import { type CostBeside, costText } from "../Domain/Cost.js"

export const fmt = (x: number | null, digits = 3) => (x === null ? "-" : x.toFixed(digits))

/** Where the judge's batches stand: said when batching is on or a batch is still out. */
export const batchesLine = (b: {
  readonly mode: string
  readonly pending: number
  readonly requests: number
  readonly reservedUsd: number
  readonly oldestSubmittedAt: string | null
}) =>
  b.mode === "off" && b.pending === 0
    ? ""
    : `\njudge batches: ${b.pending === 0 ? "none pending" : `${b.pending} pending (${b.requests} request(s), up to ${usd(b.reservedUsd)} held against the budget, oldest sent ${b.oldestSubmittedAt})`}` +
      (b.mode === "off"
        ? " (AUTOTUNE_JUDGE_BATCH=off: collected, none sent)"
        : "; the trend sample goes through Message Batches at half price")

/** Said only when the guard found something: stored text that the current rules would have cleaned. */
export const egressLine = (n: number) =>
  n === 0
    ? ""
    : `\negress guard: ${n} value(s) replaced in requests before sending; run autotune redact --rescan to clean the store`

/** "0.71 [0.60, 0.82] (n=120)", "-" without both kinds of reaction, flagged when the judge disagrees with users. */
export const agreementText = (a: Agreement) =>
  a.auc === null
    ? a.n === 0
      ? "-"
      : `- (n=${a.n})`
    : `${a.auc.toFixed(2)} [${a.low!.toFixed(2)}, ${a.high!.toFixed(2)}] (n=${a.n})${a.disagrees ? " DISAGREES" : ""}`

export const interval = (v: number | null, lo: number | null, hi: number | null) =>
  v === null ? "-" : `${v.toFixed(2)}${lo === null ? "" : ` [${lo.toFixed(2)}, ${hi!.toFixed(2)}]`}`

/** The judge against a person's grades: Spearman and weighted kappa with their intervals, or "-" before any grade. */
export const labelText = (a: LabelAgreement) =>
  a.n === 0
    ? "-"
    : `rho ${interval(a.spearman, a.spearmanLow, a.spearmanHigh)}, kappa ${interval(a.kappa, a.kappaLow, a.kappaHigh)} (n=${a.n})`

/** One line per behavior users reacted to or a person graded: how well the judge agrees with them. */
export const agreementLines = (agreements: Record<string, Agreement>, labelled: Record<string, LabelAgreement> = {}) =>
  Object.entries(agreements)
    .filter(([, a]) => a.n > 0)
    .map(([b, a]) => `\njudge vs users' reactions, ${b}: AUC ${agreementText(a)}`)
    .join("") +
  Object.entries(labelled)
    .filter(([, a]) => a.n > 0)
    .map(([b, a]) => `\njudge vs your grades, ${b}: ${labelText(a)}`)
    .join("")

/** A word diff for a terminal: [-removed-] {+added+}. */
export const diffText = (parts: ReadonlyArray<DiffPart>) =>
  parts.map((p) => (p.op === "same" ? p.text : p.op === "add" ? `{+${p.text}+}` : `[-${p.text}-]`)).join("")

export const pendingText = (behavior: string, p: PendingPack) =>
  `\n${behavior}: ${p.version} waits for approval: held-out gain ${fmt(p.heldOutGain, 3)} (95% lower bound ${fmt(p.lowerBound, 3)}); ` +
  `\`autotune approve ${behavior}\` ships it as a canary, \`autotune reject ${behavior}\` discards it\n  ${diffText(p.diff).replace(/\n/g, "\n  ")}` +
  p.chosenOn
    .map((t) => `\n  gained on: ${JSON.stringify(t.message)} ${fmt(t.baseline, 2)} -> ${fmt(t.winner, 2)}`)
    .join("")

/** One line: autotune's spend beside the agent's, the week first (the window a person plans by). */
export const costLine = (windows: ReadonlyArray<CostBeside>) => {
  const order = [...windows].sort((a, b) => (a.days === 7 ? -1 : b.days === 7 ? 1 : a.days - b.days))
  return `\nautotune beside the agent: ${order.map(costText).join("; ")}`
}

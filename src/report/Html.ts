/**
 * The report page, pure: figures in, one self-contained HTML document out. Every fact is written as HTML
 * (tables a screen reader and a text browser can read); the charts are drawn in the page from the same
 * figures, embedded as JSON, by the bundled chart library. Nothing is fetched.
 */
import { ALPHA, formatEvidence } from "../canary/Stats.js"
import { formatShare } from "../Domain/Share.js"
import { costText } from "../Domain/Cost.js"
import { CLIENT_SCRIPT } from "./Client.js"
import { droppedByRule } from "../optimize/Search.js"
import type { DiffPart } from "./Diff.js"
import { shortVersion } from "./Format.js"
import type { BehaviorReport, CanaryRun, OptimizerRun, ReportData } from "./ReportData.js"
import type { Trend } from "./Series.js"

export interface ChartAssets {
  /** d3's UMD bundle and Observable Plot's, inlined as they are. */
  readonly d3: string
  readonly plot: string
}

const esc = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)
const usd = (x: number) => `$${x < 10 ? x.toFixed(4) : x.toFixed(2)}`
const num = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits)
const when = (iso: string) => `${iso.slice(0, 16).replace("T", " ")} UTC`
/** A pack version in a cell: a short label that does not wrap, the full id in its title. */
const ver = (version: string) => `<span class="version" title="${esc(version)}">${esc(shortVersion(version))}</span>`

/** Cells are HTML already escaped by the caller. On a phone a row becomes a card, each cell labelled by its header. */
const table = (caption: string, header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  `<table><caption>${esc(caption)}</caption><thead><tr>${header.map((h) => `<th scope="col">${esc(h)}</th>`).join("")}</tr></thead>` +
  `<tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td data-label="${esc(header[i] ?? "")}">${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`

/** A chart slot the page script fills, with its numbers as a table beside it. */
const figure = (
  chart: string,
  behavior: string | null,
  title: string,
  hasData: boolean,
  tableHtml: string,
  empty: string
) =>
  `<figure data-chart="${chart}"${behavior === null ? "" : ` data-behavior="${esc(behavior)}"`}><figcaption>${esc(title)}</figcaption>` +
  (hasData
    ? `<div class="chart" role="img" aria-label="${esc(title)}"></div><details><summary>Table</summary>${tableHtml}</details>`
    : `<p class="none">${esc(empty)}</p>`) +
  `</figure>`

const ACTION_WORDS: Record<string, string> = {
  promoted: "promoted canary",
  rolled_back: "rolled back canary",
  expired: "let canary expire (inconclusive)",
  waiting: "canary still running",
  none: "no canary"
}

export const decisionInWords = (d: BehaviorReport["lastDecision"]) =>
  d === null
    ? "no canary decision yet"
    : `${ACTION_WORDS[d.action] ?? d.action} ${shortVersion(d.version)} (${when(d.at)}): ${d.reason}`

export const trendInWords = (t: Trend) => {
  if (t.direction === "unknown")
    return t.last7.n === 0
      ? "no scores in the last 7 days"
      : `${num(t.last7.mean)} over ${t.last7.n} turns (nothing the week before to compare)`
  const arrow = t.direction === "up" ? "▲ better" : t.direction === "down" ? "▼ worse" : "▬ no clear change"
  return `${arrow}: ${num(t.last7.mean)} vs ${num(t.previous7.mean)} the week before (${t.change! >= 0 ? "+" : ""}${num(t.change)}; n ${t.last7.n} / ${t.previous7.n})`
}

const summary = (data: ReportData) => {
  const rows = data.behaviors.map((b) => [
    `<a href="#b-${esc(b.behavior)}">${esc(b.behavior)}</a>`,
    b.active === null ? "none" : ver(b.active),
    b.canary === null ? "none" : `${ver(b.canary)}${b.canaryPercent === null ? "" : ` (${b.canaryPercent}%)`}`,
    `<span class="trend ${b.trend.direction}">${esc(trendInWords(b.trend))}</span>`,
    esc(decisionInWords(b.lastDecision)),
    usd(b.spend30dUsd)
  ])
  const s = data.spend
  const budget = s.dailyBudgetUsd > 0 ? ` of the ${usd(s.dailyBudgetUsd)} daily budget` : " (no daily budget)"
  const unknown =
    s.unknownCostCalls > 0 ? ` ${s.unknownCostCalls} call(s) had no known price and are not in these sums.` : ""
  return (
    `<section id="summary"><h2>At a glance</h2>` +
    `<p class="spend">LLM spend: <strong>${usd(s.last24hUsd)}</strong> in the last 24 hours${budget}; <strong>${usd(s.last30dUsd)}</strong> in the last 30 days.${esc(unknown)}</p>` +
    `<p class="cost">Beside the agent it improves: ${data.cost.map((c) => esc(costText(c))).join("; ")}.</p>` +
    table(
      "Per behavior",
      ["behavior", "active pack", "canary (share)", "trend, last 7 days", "last decision", "spend, 30 days"],
      rows
    ) +
    `</section>`
  )
}

const spendSection = (data: ReportData) => {
  const rows = data.spendDaily.map((d) => [
    esc(d.day),
    esc(d.stage),
    esc(d.model),
    String(d.calls),
    String(d.failed),
    String(d.tokensIn),
    String(d.tokensOut),
    usd(d.costUsd)
  ])
  return (
    `<section id="spend"><h2>Spend</h2>` +
    figure(
      "spend",
      null,
      `LLM spend per day by stage, last ${data.days} days (USD); the line is the agent's own spend`,
      rows.length > 0,
      table(
        "Spend per day, stage and model",
        ["day", "stage", "model", "calls", "failed", "tokens in", "tokens out", "cost"],
        rows
      ) +
        table(
          "The agent's own spend per day (its traces' cost_total_usd)",
          ["day", "turns", "turns priced", "cost"],
          data.agentDaily.map((d) => [esc(d.day), String(d.turns), String(d.priced), usd(d.usd)])
        ),
      "No LLM calls in this window."
    ) +
    `</section>`
  )
}

const scoresFigure = (b: BehaviorReport) => {
  const rows = b.scores.map((p) => [
    esc(p.day),
    ver(p.version),
    String(p.n),
    num(p.mean),
    `${num(p.low)} – ${num(p.high)}`
  ])
  const events =
    b.events.length === 0
      ? ""
      : `<p class="events">Deployments and rubric versions: ${b.events.map((e) => `${esc(when(e.at))} ${esc(e.action)} ${ver(e.version)}`).join("; ")}</p>`
  return (
    figure(
      "scores",
      b.behavior,
      `Judge score per day and pack version under rubric ${b.rubricVersion} (mean, 95% interval band; dashed lines: deployments and rubric versions)`,
      rows.length > 0,
      table("Daily judge scores", ["day", "pack version", "n", "mean", "95% interval"], rows),
      "No scored turns in this window."
    ) + events
  )
}

const GATES: ReadonlyArray<[string, number]> = [
  ["errorCeiling", ALPHA.errorCeiling],
  ["toolCeiling", ALPHA.toolCeiling],
  ["errorDelta", ALPHA.errorDelta],
  ["toolDelta", ALPHA.toolDelta],
  ["negativeDelta", ALPHA.negativeDelta]
]

const canaryFigure = (b: BehaviorReport, c: CanaryRun | null) => {
  if (c === null) return `<h3>Canary</h3><p class="none">No canary has gone out for ${esc(b.behavior)}.</p>`
  const f = (c.last?.figures ?? {}) as {
    nCanary?: number
    nActive?: number
    pairs?: number
    meanCanary?: number | null
    meanActive?: number | null
    meanDiff?: number | null
    canaryErrorRate?: number | null
    canaryToolFailureRate?: number | null
    health?: Record<string, number>
    byShare?: ReadonlyArray<{ share: number | null; pairs: number; meanDiff: number }>
  }
  const looks = c.looks.map((l) => [
    esc(when(l.at)),
    l.percent === null ? "–" : `${l.percent}%`,
    String(l.n),
    esc(formatEvidence(l.eUp, 2)),
    esc(formatEvidence(l.eDown, 2))
  ])
  const byShare = (f.byShare ?? [])
    .filter((x) => x.share !== null)
    .map((x) => `${formatShare(x.share!)}: ${x.pairs} (mean ${num(x.meanDiff)})`)
  const gates = GATES.map(([gate, alpha]) => {
    const e = f.health?.[gate] ?? 0
    return [esc(gate), esc(formatEvidence(e, 2)), String(1 / alpha), e >= 1 / alpha ? "tripped" : "passing"]
  })
  const state = c.live ? "live" : "ended"
  return (
    `<h3>Canary ${ver(c.version)} (${state}) against ${c.activeVersion === null ? "no active pack" : ver(c.activeVersion)}</h3>` +
    (c.last === null
      ? ""
      : `<p class="decision"><strong>${esc(ACTION_WORDS[c.last.action] ?? c.last.action)}</strong>: ${esc(c.last.reason)}</p>`) +
    figure(
      "canary",
      b.behavior,
      `Evidence by canary samples, against the thresholds (promote at ${c.thresholds.promote}, roll back at ${c.thresholds.rollback}; log scale)`,
      looks.length > 0,
      table("Evidence at each look", ["look", "share", "canary samples", "toward promotion", "toward rollback"], looks),
      "No look at this canary yet."
    ) +
    table(
      "Means per arm",
      ["arm", "scored turns", "mean score", "error rate (health window)", "tool-failure rate (health window)"],
      [
        ["canary", String(f.nCanary ?? 0), num(f.meanCanary), num(f.canaryErrorRate), num(f.canaryToolFailureRate)],
        ["active", String(f.nActive ?? 0), num(f.meanActive), "–", "–"]
      ]
    ) +
    `<p>Paired differences: ${f.pairs ?? 0}, mean ${num(f.meanDiff)}${byShare.length > 1 ? `; by the share their canary turn was served at: ${esc(byShare.join(", "))}` : ""}.</p>` +
    (c.shares.length === 0
      ? ""
      : table(
          "Share of requests over the canary's life",
          ["from", "share", "why"],
          c.shares.map((x) => [esc(when(x.at)), `${x.percent}%`, esc(x.reason)])
        )) +
    table(
      "Health gates (evidence against the gate; it trips at the threshold)",
      ["gate", "evidence", "threshold", "state"],
      gates
    )
  )
}

const diffParts = (parts: ReadonlyArray<DiffPart>) =>
  parts
    .map((p) =>
      p.op === "same" ? esc(p.text) : p.op === "add" ? `<ins>${esc(p.text)}</ins>` : `<del>${esc(p.text)}</del>`
    )
    .join("")

const diffHtml = (run: OptimizerRun) =>
  run.diff === null
    ? ""
    : `<details open><summary>Instructions of ${esc(run.version ?? "the winner")} against the baseline</summary><p class="diff">${diffParts(run.diff)}</p></details>`

const optimizerFigure = (b: BehaviorReport) => {
  const runs = b.optimizer
  if (runs.length === 0)
    return `<h3>Optimizer</h3><p class="none">No optimizer run for ${esc(b.behavior)} in this window.</p>`
  const latest = runs.find((r) => r.heldOut.length > 0)
  const rows = runs.map((r) => [
    esc(when(r.at)),
    esc(r.outcome),
    ver(r.baselineVersion),
    r.baseline === null ? "–" : `${num(r.baseline.mean)} (n ${r.baseline.n})`,
    r.rounds === null ? "1" : `${r.rounds.count} (stopped at ${esc(r.rounds.stopped)})`,
    r.heldOut
      .map((h) => `${esc(h.label)}: ${num(h.mean)}, gain ${num(h.meanDiff)} (95% lower bound ${num(h.lowerBound)})`)
      .join("<br>") || "–",
    // Per rule with its count, then each reason with the words it found.
    r.linted.length === 0
      ? "none"
      : `${esc(
          Object.entries(droppedByRule(r.linted))
            .map(([rule, n]) => `${rule} ×${n}`)
            .join(", ")
        )}<br><small>${esc(r.linted.join("; "))}</small>`,
    r.calls === null ? "–" : String(r.calls),
    r.costUsd === null ? "–" : usd(r.costUsd),
    esc(r.version ?? r.why ?? "")
  ])
  const candidates =
    latest === undefined
      ? []
      : latest.heldOut.map((h) => [esc(h.label), String(h.n), num(h.mean), num(h.meanDiff), num(h.lowerBound)])
  return (
    `<h3>Optimizer</h3>` +
    figure(
      "optimizer",
      b.behavior,
      `Held-out gain over the baseline per candidate, latest run${latest === undefined ? "" : ` (${when(latest.at)})`}: mean and 95% lower bound`,
      candidates.length > 0,
      table(
        "Candidates of the latest run",
        ["candidate", "held-out turns", "mean", "gain", "95% lower bound"],
        candidates
      ),
      "No candidate was scored in this window."
    ) +
    table(
      "Optimizer runs",
      [
        "when",
        "outcome",
        "baseline",
        "baseline held-out mean",
        "rounds",
        "candidates",
        "dropped by lint",
        "calls",
        "cost",
        "shipped / why"
      ],
      rows
    ) +
    runs.map(diffHtml).join("")
  )
}

const judgeFigure = (b: BehaviorReport) => {
  const rows = b.judge.daily.map((d) => [
    esc(d.day),
    String(d.stage1),
    String(d.stage2),
    String(d.unscored),
    num(d.unscoredShare),
    num(d.stage2Share),
    num(d.disagreement)
  ])
  const a = b.judge.agreement
  const users =
    a.auc === null
      ? `Agreement with users' reactions: not enough reactions yet (${a.positive} thumbs-up, ${a.negative} thumbs-down on scored turns).`
      : `Agreement with users' reactions: AUC ${num(a.auc, 2)} [${num(a.low, 2)}, ${num(a.high, 2)}] over ${a.positive} thumbs-up and ${a.negative} thumbs-down turns${a.disagrees ? " — the judge disagrees with users" : ""}.`
  const g = b.judge.grades
  const interval = (v: number | null, lo: number | null, hi: number | null) =>
    `${num(v, 2)}${lo === null ? "" : ` [${num(lo, 2)}, ${num(hi, 2)}]`}`
  const grades =
    g.n === 0
      ? "Agreement with your grades: none yet (autotune label grades judged turns 1-5)."
      : `Agreement with your grades: Spearman ${interval(g.spearman, g.spearmanLow, g.spearmanHigh)}, weighted kappa ${interval(g.kappa, g.kappaLow, g.kappaHigh)} over ${g.n} graded turns.`
  return (
    `<h3>Judge health</h3>` +
    figure(
      "judge",
      b.behavior,
      "Judge health per day: unscored share and stage-2 share by the day of judging, mean stage-1/stage-2 gap by the day of the turn (0–1)",
      rows.length > 0,
      table(
        "Judge verdicts per day",
        ["day", "stage-1 scored", "stage-2 scored", "unscored", "unscored share", "stage-2 share", "stage gap"],
        rows
      ),
      "No judge verdicts in this window."
    ) +
    `<p>${esc(users)}</p>` +
    `<p>${esc(grades)}</p>` +
    calibrationFigure(b) +
    alignmentTable(b) +
    `<p>Turns judged in the last 7 days whose text addressed the evaluator (masked before judging): ${b.judge.addressedMasked7d}.</p>`
  )
}

/** Alignment's attempts at the rubric: what each concluded, and the held-out figures it concluded on. */
const alignmentTable = (b: BehaviorReport) =>
  b.judge.alignment.length === 0
    ? ""
    : table(
        "Rubric alignment: attempts to amend the rubric where people disagree with the judge (held-out agreement: AUC against reactions or Spearman against grades)",
        [
          "when",
          "outcome",
          "rubric",
          "candidate",
          "held-out turns",
          "agreement now",
          "agreement of candidate",
          "lower bound",
          "alpha",
          "why"
        ],
        b.judge.alignment.map((a) => [
          esc(when(a.at)),
          esc(a.outcome),
          ver(a.rubricVersion),
          a.candidate === null ? "-" : ver(a.candidate),
          a.test === null ? "-" : String(a.test.n),
          a.test === null ? "-" : num(a.test.current, 2),
          a.test === null ? "-" : num(a.test.candidate, 2),
          a.test === null ? "-" : num(a.test.lower, 3),
          a.test === null ? "-" : num(a.test.alpha, 4),
          esc(a.why)
        ])
      )

const BANDS = ["0–0.2", "0.2–0.4", "0.4–0.6", "0.6–0.8", "0.8–1"]

/** Does a higher judge score mean people liked the turn more? Drawn only once people reacted or graded. */
const calibrationFigure = (b: BehaviorReport) => {
  const bands = b.judge.calibration
  if (bands.length === 0)
    return `<p>Calibration: no turn people reacted to or graded (<code>autotune label</code>) has a score of the current rubric yet.</p>`
  const rows = bands.map((c) => [
    BANDS[c.band - 1]!,
    String(c.reactions),
    c.reactions === 0 ? "-" : num(c.thumbsUp / c.reactions, 2),
    String(c.grades),
    c.meanGrade === null ? "-" : num(c.meanGrade, 2)
  ])
  return figure(
    "calibration",
    b.behavior,
    "Calibration: per judge-score band, the users' thumbs-up share and your mean grade (1–5, drawn as 0–1); the diagonal is a judge that agrees",
    true,
    table(
      "Calibration per judge-score band",
      ["judge score", "reacted turns", "thumbs-up share", "graded turns", "mean grade"],
      rows
    ),
    ""
  )
}

/** The selection waiting for the operator: its figures, its diff against what serves now, the turns it gained most on. */
const pendingSection = (b: BehaviorReport) => {
  const p = b.pending
  if (p === null) return ""
  return (
    `<h3>Waiting for approval</h3><p>${ver(p.version)}: held-out gain ${num(p.heldOutGain)} (95% lower bound ${num(p.lowerBound)}). ` +
    `<code>autotune approve ${esc(b.behavior)}</code> ships it as a canary; <code>autotune reject ${esc(b.behavior)}</code> discards it.</p>` +
    `<details open><summary>Against what serves now</summary><p class="diff">${diffParts(p.diff)}</p></details>` +
    (p.chosenOn.length === 0
      ? ""
      : table(
          "Held-out turns it gained most on (stored, redacted text)",
          ["message", "baseline", "this pack"],
          p.chosenOn.map((t) => [esc(t.message), num(t.baseline, 2), num(t.winner, 2)])
        ))
  )
}

const lowestTable = (b: BehaviorReport) =>
  b.lowest.length === 0
    ? ""
    : `<h3>Lowest-scored turns of the last 7 days</h3>` +
      table(
        "Stored, redacted text, clipped",
        ["when", "score", "judge's reason", "user", "reply"],
        b.lowest.map((l) => [esc(when(l.at)), num(l.score, 2), esc(l.reason), esc(l.input), esc(l.output)])
      )

const behaviorSection = (b: BehaviorReport) =>
  `<section class="behavior" id="b-${esc(b.behavior)}"><h2>${esc(b.behavior)}</h2>` +
  b.faults
    .map((f) => `<p class="fault">The last cycle failed for this behavior: ${esc(f)}. The other behaviors went on.</p>`)
    .join("") +
  `<p>Active ${b.active === null ? "none" : ver(b.active)}; canary ${b.canary === null ? "none" : ver(b.canary)}. ${esc(trendInWords(b.trend))}. ` +
  `Judged ${b.judged7d.scored} of the ${b.judged7d.turns} turns of the last 7 days (a sample; the rest stays unjudged).</p>` +
  scoresFigure(b) +
  canaryFigure(b, b.canaryRun) +
  optimizerFigure(b) +
  pendingSection(b) +
  judgeFigure(b) +
  lowestTable(b) +
  `</section>`

const STYLE = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1b1f; --muted: #5b5b66; --line: #d8d8de; --ins: #d9f5dd; --del: #fbdcdc; }
@media (prefers-color-scheme: dark) { :root { --bg: #16161a; --fg: #e8e8ee; --muted: #a0a0ad; --line: #3a3a44; --ins: #1f4d2a; --del: #5c2424; } }
* { box-sizing: border-box; }
.version { white-space: nowrap; }
body { margin: 0 auto; padding: 1rem; max-width: 1200px; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, sans-serif; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { border-top: 1px solid var(--line); padding-top: 1rem; } h3 { margin-top: 1.5rem; }
.meta, .none, figcaption, caption { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .9rem; display: block; overflow-x: auto; }
caption { text-align: left; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
figure { margin: 1rem 0; } .chart { width: 100%; min-height: 2rem; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
.trend.up { color: #1a7f37; } .trend.down { color: #cf222e; }
@media (prefers-color-scheme: dark) { .trend.up { color: #57d36a; } .trend.down { color: #ff7b72; } }
ins { background: var(--ins); text-decoration: none; } del { background: var(--del); }
.diff { white-space: pre-wrap; border: 1px solid var(--line); padding: .5rem; }
.fault { border-left: 4px solid #cf222e; padding: .25rem .5rem; }
.empty { font-size: 1.1rem; padding: 1rem; border: 1px dashed var(--line); }
td { overflow-wrap: anywhere; }
@media (max-width: 700px) {
  table { display: table; } thead { display: none; }
  tr { display: block; border-bottom: 2px solid var(--line); padding: .25rem 0; }
  td { display: block; border: 0; padding: .15rem 0; }
  td::before { content: attr(data-label) ": "; color: var(--muted); }
}
`

/** JSON inside a script element: nothing in it may close the element. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")

export const renderReport = (data: ReportData, assets: ChartAssets): string => {
  const body = data.empty
    ? `<p class="empty">No data yet: the store has no traces and no LLM calls. Run <code>autotune once</code> (or let the daemon run) and this page fills in.</p>` +
      summary(data)
    : summary(data) + spendSection(data) + data.behaviors.map(behaviorSection).join("")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>autotune report ${esc(data.generatedAt.slice(0, 10))}</title><style>${STYLE}</style></head>
<body><header><h1>autotune report</h1><p class="meta">Generated ${esc(when(data.generatedAt))}; the last ${data.days} days. Scores are the judge's (0 to 1); days are UTC.</p></header>
<main>${body}</main>
<script id="report-data" type="application/json">${scriptJson(data)}</script>
<script>${assets.d3}</script>
<script>${assets.plot}</script>
<script>${CLIENT_SCRIPT}</script>
</body></html>
`
}

/**
 * npm run bench:cost [-- --per-day=1000 --days=5 --runs=2000]
 * What judging costs per 1,000 DotClaw traces at the defaults, before (every turn judged for every behavior:
 * AUTOTUNE_JUDGE_DAILY_SAMPLE=0, AUTOTUNE_JUDGE_CANARY_PAIRS=0) and after (the defaults), through the built
 * CLI against the fake provider on 127.0.0.1 with the real SDK and the project's price table. The traffic:
 * `--days` days of `--per-day` turns (`trace-<uuid>` ids, tool calls, memory), six behaviors with an active
 * pack, a 10% canary of response-quality on the last two days that scores better. Then the canary decision
 * on that traffic in both stores, and, through the monitor's decision code, how many canary samples a
 * decision takes when only the sampled active turns are compared (seeded Monte Carlo, 10/90 split).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { BEHAVIORS } from "../src/Domain/Behavior.js"
import { sampleDraw } from "../src/Domain/Trace.js"
import { CanaryProcess, type Sample, type Thresholds } from "../src/canary/Stats.js"
import { pairRate } from "../src/judge/Sampling.js"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceObject } from "../test/helpers/traces.js"
import { arg, machine, measureCommand } from "./util.js"
import { rng } from "../src/Domain/Random.js"

const PER_DAY = arg("per-day", 1000)
const DAYS = arg("days", 5)
const RUNS = arg("runs", 2000)
const DAY_MS = 86_400_000
const N = PER_DAY * DAYS

const uuid = (n: number) => {
  const h = createHash("sha256").update(`cost-${n}`).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-9${h.slice(17, 20)}-${h.slice(20, 32)}`
}
/** A judge's 5-level scores, a third of them in the unsure band that goes to stage 2. */
const LEVELS = [0.25, 0.5, 0.75, 1]
const level = (r: () => number, better: boolean) => {
  const p = better ? [0.05, 0.25, 0.35, 0.35] : [0.1, 0.35, 0.3, 0.25]
  let u = r()
  for (let i = 0; i < 4; i++) if ((u -= p[i]!) < 0) return LEVELS[i]!
  return 1
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-cost-"))
// The traffic ends now: no turn from the future.
const start = Date.now() - DAYS * DAY_MS
const canaryFrom = start + (DAYS - 2) * DAY_MS
const r = rng(7)
let body = ""
for (let i = 0; i < N; i++) {
  const at = start + Math.floor((i * DAY_MS) / PER_DAY)
  const canary = at >= canaryFrom && r() < 0.1
  const packs = Object.fromEntries(
    BEHAVIORS.map((b) => [b, b === "response-quality" && canary ? "rq-canary" : `${b}-v1`])
  )
  const t = traceObject(i, {
    packVersions: packs,
    toolFailure: i % 13 === 0,
    text: `Please check the weather in Lisbon for trip ${i} and remind me tomorrow SCORE=${level(r, canary)}`
  })
  body +=
    JSON.stringify({ ...t, trace_id: `trace-${uuid(i)}`, timestamp: new Date(at).toISOString(), created_at: at }) + "\n"
}
const prompts = (home: string) => {
  const dir = path.join(home, "prompts")
  fs.mkdirSync(dir, { recursive: true })
  for (const b of BEHAVIORS)
    fs.writeFileSync(
      path.join(dir, `${b}.json`),
      JSON.stringify({ name: b, version: `${b}-v1`, behavior: b, instructions: "Answer first." })
    )
  fs.writeFileSync(
    path.join(dir, "response-quality.canary.json"),
    JSON.stringify({
      name: "rq",
      version: "rq-canary",
      behavior: "response-quality",
      instructions: "Answer first, briefly.",
      metadata: { canaryPercent: 10 }
    })
  )
  // Placed by hand when its first turn was served: the monitor counts the canary from the file's time.
  fs.utimesSync(path.join(dir, "response-quality.canary.json"), new Date(canaryFrom), new Date(canaryFrom))
}

const fake = await startFakeProvider()
console.log(
  `bench:cost: ${N} traces (${PER_DAY} a day for ${DAYS} days, a 10% canary on the last two), six behaviors; machine: ${machine()}`
)

interface Eval {
  calls: number
  costUsd: number
  tokensIn: number
  tokensOut: number
  batches: { submitted: number; collected: number }
  behaviors: Record<
    string,
    {
      scored: number
      stage2: number
      tokensIn: number
      tokensOut: number
      canaryTraces: number
      pairTraces: number
      trendTraces: number
    }
  >
}
interface Deploy {
  decisions: Record<
    string,
    { action: string; figures?: { nCanary: number; nActive: number; pairs: number; eUp: number; eDown: number } }
  >
}
// Batched modes wait for their batch in the same run (the fake ends it at once), so one run shows the whole bill.
const modes = [
  {
    name: "before (every turn, direct calls)",
    env: { AUTOTUNE_JUDGE_DAILY_SAMPLE: "0", AUTOTUNE_JUDGE_CANARY_PAIRS: "0", AUTOTUNE_JUDGE_BATCH: "off" },
    args: []
  },
  { name: "sampled, direct calls", env: { AUTOTUNE_JUDGE_BATCH: "off" }, args: [] },
  {
    name: "defaults (sampled, trend in Message Batches)",
    env: { AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "0.2" },
    args: ["--wait-batches"]
  },
  {
    name: "defaults + AUTOTUNE_JUDGE_COMBINED=1",
    env: { AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "0.2", AUTOTUNE_JUDGE_COMBINED: "1" },
    args: ["--wait-batches"]
  }
]
const rows: Array<{
  name: string
  judged: number
  calls: number
  tokensIn: number
  tokensOut: number
  costUsd: number
  seconds: number
  decision: Deploy["decisions"][string]
}> = []
for (const mode of modes) {
  const home = path.join(root, `mode-${modes.indexOf(mode)}`)
  fs.mkdirSync(path.join(home, "traces"), { recursive: true })
  fs.writeFileSync(path.join(home, "traces", "trace-all.jsonl"), body)
  prompts(home)
  const env = {
    ...process.env,
    ...mode.env,
    AUTOTUNE_HOME: home,
    AUTOTUNE_CONFIG_PATH: "",
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: fake.url,
    // Everything a run would judge over a day of hourly cycles, in one run; no budget in the way of the count.
    AUTOTUNE_EVAL_MAX_TRACES: String(N),
    AUTOTUNE_DAILY_BUDGET_USD: "0",
    AUTOTUNE_LLM_CONCURRENCY: "16",
    AUTOTUNE_REPORT: "0"
  }
  await measureCommand("dist/bin.js", ["ingest"], env)
  const run = await measureCommand("dist/bin.js", ["eval", "--json", ...mode.args], env)
  const e = JSON.parse(run.stdout.trim().split("\n").pop()!) as Eval
  const deploy = JSON.parse(
    (await measureCommand("dist/bin.js", ["deploy", "--json"], env)).stdout.trim().split("\n").pop()!
  ) as Deploy
  const b = Object.values(e.behaviors)
  rows.push({
    name: mode.name,
    judged: b.reduce((n, x) => n + x.scored, 0),
    calls: e.calls,
    tokensIn: e.tokensIn,
    tokensOut: e.tokensOut,
    costUsd: e.costUsd,
    seconds: run.seconds,
    decision: deploy.decisions["response-quality"]!
  })
}
await fake.close()
const per1k = (x: number) => (x * 1000) / N
console.log(
  "| | judged turn-behaviors | calls | tokens in | tokens out | cost | per 1,000 traces: calls | per 1,000 traces: cost | canary decision (n canary / pairs) |"
)
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (const x of rows) {
  const f = x.decision.figures
  console.log(
    `| ${x.name} | ${x.judged} | ${x.calls} | ${x.tokensIn} | ${x.tokensOut} | $${x.costUsd.toFixed(2)} | ${per1k(x.calls).toFixed(0)} | $${per1k(x.costUsd).toFixed(2)} | ${x.decision.action}${f === undefined ? "" : ` (${f.nCanary} / ${f.pairs}, evidence ${f.eUp.toFixed(1)})`} |`
  )
}
const after = rows[2]!
const perJudged = after.costUsd / Math.max(1, after.judged)
// Monthly, as the defaults judge: six behaviors' trend samples every day (at most 40 turns each; every behavior
// taken as applying to every turn, an upper bound), and each canary's own turns with about six pairs apiece.
const month = (perDay: number) => 30 * BEHAVIORS.length * Math.min(40, perDay) * perJudged
console.log(
  `cost per judged turn-behavior at the defaults (canary turns and pairs direct, trend batched): $${perJudged.toFixed(5)}; monthly at 100 / 500 / 5,000 turns a day: ` +
    [100, 500, 5000].map((d) => `$${month(d).toFixed(2)}`).join(" / ") +
    `, plus $${(100 * 7 * perJudged).toFixed(2)} per 100 canary turns while a canary runs`
)

// The canary test on sampled pairs against all pairs, same seeded traffic: Likert scores, 10/90, a look an hour.
const thresholds: Thresholds = {
  minImprovement: 0.02,
  minSamples: 20,
  maxSamples: 500,
  maxAgeMs: 14 * DAY_MS,
  healthWindowMs: DAY_MS,
  maxErrorRate: 0.12,
  maxToolFailureRate: 0.25,
  maxErrorRateDelta: 0.05,
  maxToolFailureRateDelta: 0.12,
  maxNegativeRateDelta: 0.1
}
const LIKERT = [0.04, 0.06, 0.15, 0.37, 0.38]
const LIKERT_MEAN = 0.7475
/** A Likert score, moved so the arm's mean rises by exactly `lift` within [0, 1] (as bench:canary does). */
const likert = (u: number, lift: number) => {
  let s = 1
  for (let i = 0; i < 5; i++)
    if ((u -= LIKERT[i]!) < 0) {
      s = i / 4
      break
    }
  return s + (lift * (1 - s)) / (1 - LIKERT_MEAN)
}
const q = pairRate(6, 0.1)
const simulate = (lift: number, sampledOnly: boolean) => {
  let promoted = 0
  let rolledBack = 0
  const toDecide: Array<number> = []
  for (let run = 0; run < RUNS; run++) {
    const rr = rng(1000 + run)
    const p = new CanaryProcess(thresholds)
    let t = 0
    let canaryN = 0
    let done = false
    for (let hour = 0; hour < 24 * 14 && !done; hour++) {
      for (let i = 0; i < 100; i++) {
        t += 36_000
        const id = `trace-${run}-${hour}-${i}`
        const canary = rr() < 0.1
        const s: Sample = {
          at: t,
          score: likert(rr(), canary ? lift : 0),
          error: rr() < 0.04,
          toolFailure: rr() < 0.5 ? (rr() < 0.08 ? 1 : 0) : null,
          sampled: !sampledOnly || sampleDraw(id) < q
        }
        p.add(s, canary ? "canary" : "active")
        if (canary) canaryN++
      }
      const d = p.decision(t, 0)
      if (d.action === "promote" || d.action === "rollback" || d.action === "expire") {
        if (d.action === "promote") {
          promoted++
          toDecide.push(canaryN)
        }
        if (d.action === "rollback") rolledBack++
        done = true
      }
    }
  }
  toDecide.sort((a, b) => a - b)
  return {
    promoted: promoted / RUNS,
    rolledBack: rolledBack / RUNS,
    median: toDecide[Math.floor(toDecide.length / 2)] ?? null
  }
}
console.log(
  `canary test, ${RUNS} seeded runs a cell, Likert scores, 10/90, hourly looks: all active turns judged vs a ${(q * 100).toFixed(0)}% sample`
)
for (const lift of [0, 0.05, 0.1]) {
  const all = simulate(lift, false)
  const some = simulate(lift, true)
  const fmt = (x: typeof all) =>
    `promoted ${(x.promoted * 100).toFixed(1)}%, rolled back ${(x.rolledBack * 100).toFixed(1)}%, median canary samples to promote ${x.median ?? "-"}`
  console.log(`lift ${lift.toFixed(2)}: all: ${fmt(all)}; sampled: ${fmt(some)}`)
}
fs.rmSync(root, { recursive: true, force: true })

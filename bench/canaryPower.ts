/**
 * npm run bench:canary-power [-- --runs=2000 --lag-runs=400 --sizing-only]
 * The canary decision under the conditions of a real install, through the monitor's decision code (`decide`,
 * `CanaryProcess`): 5-level judge scores (a lift moves a turn up one level), a daily cycle of hard hours that
 * lowers both arms, 10/90 traffic at 100 turns an hour, a look every 6 hours. Two ways scores arrive:
 * - in order: the judge keeps up (every turn scored by the next look);
 * - behind: the judge scores at most 200 turns per look, every canary turn first, then active turns, so the
 *   active side lags (before: newest first, and a turn not scored yet is simply missing at that look; after:
 *   oldest first, and the bets stop at the first pair still waiting).
 * Before: the sample cap of 500 and the old handling; after: the cap of 1,000 and the prefix rule. Prints, per
 * cell, promotions and rollbacks with the upper end of their 95% interval (Wilson), and the median canary
 * samples to promote.
 */
import { CanaryProcess, decide, type Sample, type Thresholds } from "../src/canary/Stats.js"
import { likert, type Plan, rng, seedOf, simulate, type World } from "../src/canary/Simulate.js"
import { SETTINGS } from "../src/config/Table.js"
import { arg, machine } from "./util.js"

/** The default canary turns at a share before a step up (AUTOTUNE_CANARY_STEP_MIN_TURNS). */
const STEP_MIN_TURNS = SETTINGS.canaryStepMinTurns.default("") as number

const RUNS = arg("runs", 2000)
const LAG_RUNS = arg("lag-runs", 400)
const LOW_RUNS = arg("low-runs", 3000)

const thresholds = (maxSamples: number): Thresholds => ({
  minImprovement: 0.02,
  minSamples: 20,
  maxSamples,
  maxAgeMs: 60 * 86_400_000,
  healthWindowMs: 86_400_000,
  maxErrorRate: 0.5,
  maxToolFailureRate: 0.5,
  maxErrorRateDelta: 0.5,
  maxToolFailureRateDelta: 0.5,
  maxNegativeRateDelta: 0.5
})

interface Version {
  readonly name: string
  readonly cap: number
  readonly prefix: boolean
}
const VERSIONS: ReadonlyArray<Version> = [
  { name: "before (cap 500)", cap: 500, prefix: false },
  { name: "after (cap 1,000)", cap: 1000, prefix: true }
]

/** One canary's life: turns each hour, a look every 6 hours, until a decision. */
const life = (seed: number, lift: number, v: Version, behind: boolean) => {
  const r = rng(seed)
  const canary: Array<Sample> = []
  const active: Array<Sample> = []
  const judged = new Set<number>()
  const process = new CanaryProcess(thresholds(v.cap))
  const t = thresholds(v.cap)
  let at = 0
  for (let hour = 0; ; hour++) {
    const hard = Math.sin((2 * Math.PI * (hour % 24)) / 24) > 0.5
    for (let i = 0; i < 100; i++) {
      at += 36_000
      const isCanary = r() < 0.1
      let score = likert(r, isCanary ? lift : 0)
      if (hard && r() < 0.3) score = Math.max(0, score - 0.25)
      const sample: Sample = { at, score, error: false, toolFailure: null }
      if (isCanary) canary.push(sample)
      else active.push(sample)
      if (!behind) process.add(sample, isCanary ? "canary" : "active")
    }
    if (hour % 6 !== 5) continue
    let decision
    if (!behind) decision = process.decision(at, 0)
    else {
      // Every canary turn of the last 6 hours (60) and then active turns, 200 in all.
      let budget = 200 - 60
      if (v.prefix) {
        for (let i = 0; i < active.length && budget > 0; i++) if (!judged.has(i) && (judged.add(i), true)) budget--
      } else {
        for (let i = active.length - 1; i >= 0 && budget > 0; i--) if (!judged.has(i) && (judged.add(i), true)) budget--
      }
      const view = active.map((s, i) =>
        judged.has(i) ? s : v.prefix ? { ...s, score: null, pending: true } : { ...s, score: null }
      )
      decision = decide({ canary, active: view, startedAt: 0, now: at, thresholds: t })
    }
    if (decision.action !== "wait") return { action: decision.action, samples: canary.length }
  }
}

/** The upper end of the 95% Wilson interval of k successes in n. */
const upper = (k: number, n: number) => {
  const z = 1.96
  const p = k / n
  return (p + (z * z) / (2 * n) + z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n)
}

const SIZING_ONLY = process.argv.includes("--sizing-only")
const LOW_ONLY = process.argv.includes("--low-traffic-only")
console.log(
  `bench:canary-power: ${RUNS} runs a cell in order, ${LAG_RUNS} with the judge behind; machine: ${machine()}`
)
if (!SIZING_ONLY && !LOW_ONLY)
  console.log(
    "| version | arrival | lift | promoted (95% upper) | rolled back (95% upper) | median canary samples to promote |"
  )
if (!SIZING_ONLY && !LOW_ONLY) console.log("| --- | --- | --- | --- | --- | --- |")
for (const behind of SIZING_ONLY || LOW_ONLY ? [] : [false, true]) {
  for (const lift of [0, 0.05, 0.1]) {
    for (const v of VERSIONS) {
      const n = behind ? LAG_RUNS : RUNS
      let promoted = 0
      let rolledBack = 0
      const toPromote: Array<number> = []
      for (let run = 0; run < n; run++) {
        const outcome = life(10_000 + run, lift, v, behind)
        if (outcome.action === "promote") {
          promoted++
          toPromote.push(outcome.samples)
        }
        if (outcome.action === "rollback") rolledBack++
      }
      toPromote.sort((a, b) => a - b)
      const pct = (k: number) => `${((100 * k) / n).toFixed(1)}% (${(100 * upper(k, n)).toFixed(1)}%)`
      console.log(
        `| ${v.name} | ${behind ? "judge behind" : "in order"} | ${lift.toFixed(2)} | ${pct(promoted)} | ${pct(rolledBack)} | ${toPromote[Math.floor(toPromote.length / 2)] ?? "-"} |`
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bet sizing: how the promotion bets were chosen. The same paired differences (a canary turn against the
// mean of 9 active turns, in order, a look every 60 canary samples up to 1,000) in two worlds: the 5-level
// scores above, and pass/fail scores (p = 0.7, the noisiest kind), bet by: the six sizes the monitor used,
// the same without 0.1 (what it uses now), four sizes around the best ones for small lifts, aGRAPA (Waudby-Smith & Ramdas 2024:
// each bet mean / (variance + mean^2) of the payoffs before it, with a prior at +0.05's effect), and an oracle
// told the best fixed size for +0.05 in advance (not a valid procedure: a ceiling). Each is read two ways: the
// evidence at the looks (before), and its highest point since the start, which Ville's inequality covers just
// the same (now): a crossing between two looks counts.
// ---------------------------------------------------------------------------------------------------------
const M = 0.02
type Bettor = { readonly bet: (d: number) => void; readonly evidence: () => number }
const meanExp = (logs: ReadonlyArray<number>) => {
  const max = Math.max(...logs)
  return (Math.exp(max) * logs.reduce((a, l) => a + Math.exp(l - max), 0)) / logs.length
}
const grid = (sizes: ReadonlyArray<number>) => (): Bettor => {
  const logs = sizes.map(() => 0)
  return {
    bet: (d) => sizes.forEach((l, j) => (logs[j]! += Math.log(1 + Math.min(l, 1 / (1 + M)) * (d - M)))),
    evidence: () => meanExp(logs)
  }
}
const agrapa = (n0: number, mean0: number, variance0: number) => (): Bettor => {
  let n = 0
  let sum = 0
  let squares = 0
  let log = 0
  return {
    bet: (d) => {
      const x = d - M
      const mean = (mean0 * n0 + sum) / (n0 + n)
      const variance = (variance0 * n0 + squares) / (n0 + n)
      log += Math.log(1 + Math.min(0.9 / (1 + M), Math.max(0, mean / (variance + mean * mean))) * x)
      squares += (x - mean) ** 2
      sum += x
      n++
    },
    evidence: () => Math.exp(log)
  }
}
const BETTORS: ReadonlyArray<[string, () => Bettor]> = [
  ["six sizes 0.1-0.8 (before)", grid([0.1, 0.2, 0.3, 0.45, 0.6, 0.8])],
  ["five sizes 0.2-0.8 (now)", grid([0.2, 0.3, 0.45, 0.6, 0.8])],
  ["four sizes 0.15-0.6", grid([0.15, 0.25, 0.4, 0.6])],
  ["aGRAPA, prior at +0.05", agrapa(100, 0.03, 0.08)],
  ["oracle (0.375, known in advance)", grid([0.375])]
]
const WORLDS: ReadonlyArray<[string, (r: () => number, lift: number, hard: boolean) => number]> = [
  ["5-level", (r, lift, hard) => (hard && r() < 0.3 ? Math.max(0, likert(r, lift) - 0.25) : likert(r, lift))],
  ["pass/fail", (r, lift) => (r() < 0.7 + lift ? 1 : 0)]
]
/** Per world, lift and bettor: the share promoted within 1,000 canary samples and the median samples, read at looks and at the peak. */
const sizing = (world: (r: () => number, lift: number, hard: boolean) => number, lift: number) => {
  const rows = BETTORS.map(() => ({ looks: [] as Array<number>, peak: [] as Array<number> }))
  for (let run = 0; run < RUNS; run++) {
    const r = rng(99 + run)
    const bettors = BETTORS.map(([, make]) => ({ b: make(), crossedAt: 0, looksAt: 0 }))
    for (let i = 1; i <= 1000; i++) {
      const hard = Math.sin((2 * Math.PI * (Math.floor(i / 10) % 24)) / 24) > 0.5
      let activeSum = 0
      const c = world(r, lift, hard)
      for (let j = 0; j < 9; j++) activeSum += world(r, 0, hard)
      for (const x of bettors) {
        if (x.looksAt > 0) continue
        x.b.bet(c - activeSum / 9)
        if (x.crossedAt === 0 && x.b.evidence() >= 20) x.crossedAt = i
        if (i % 60 === 0 && x.b.evidence() >= 20) x.looksAt = i
      }
    }
    bettors.forEach((x, k) => {
      if (x.looksAt > 0) rows[k]!.looks.push(x.looksAt)
      // Decided at the first look at or after the crossing.
      if (x.crossedAt > 0 && Math.ceil(x.crossedAt / 60) * 60 <= 1000)
        rows[k]!.peak.push(Math.ceil(x.crossedAt / 60) * 60)
    })
  }
  const summary = (xs: Array<number>) => ({
    share: xs.length / RUNS,
    median: xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  })
  return rows.map((row) => ({ looks: summary(row.looks), peak: summary(row.peak) }))
}
if (!LOW_ONLY) sizingTables()
lowTraffic()

function sizingTables() {
  console.log(
    `\nbet sizing, ${RUNS} runs a cell, promotion evidence >= 20 within 1,000 canary samples (at looks / at the peak):`
  )
  console.log(
    "| world | bettor | lift 0: promoted | lift +0.05: promoted | +0.05: median samples | lift +0.10: median samples |"
  )
  console.log("| --- | --- | --- | --- | --- | --- |")
  for (const [worldName, world] of WORLDS) {
    const [zero, five, ten] = [0, 0.05, 0.1].map((lift) => sizing(world, lift))
    BETTORS.forEach(([name], k) => {
      const both = (
        c: ReturnType<typeof sizing>[number],
        f: (x: { share: number; median: number | undefined }) => string
      ) => `${f(c.looks)} / ${f(c.peak)}`
      const share = (x: { share: number }) => `${(100 * x.share).toFixed(1)}%`
      const median = (x: { median: number | undefined }) => String(x.median ?? "-")
      console.log(
        `| ${worldName} | ${name} | ${both(zero![k]!, share)} | ${both(five![k]!, share)} | ${both(five![k]!, median)} | ${both(ten![k]!, median)} |`
      )
    })
  }
}

// ---------------------------------------------------------------------------------------------------------
// Low traffic (issue 28's targets): a personal agent's day (quiet at night), 5-level scores and 3% errors in both
// arms, the monitor looking every hour, a 14-day life: a fixed 10% share (before) against the default steps
// (10%, then 50% once earned; src/canary/Ramp.ts) through src/canary/Simulate.ts. A harmful canary (errors 20 points
// higher, or scores 0.10 lower) is followed until it is rolled back, however long, to count the canary turns it
// served on the way.
// ---------------------------------------------------------------------------------------------------------
function lowTraffic() {
  const T = (days: number): Thresholds => ({
    ...thresholds(1000),
    maxAgeMs: days * 86_400_000,
    maxErrorRate: 0.12,
    maxToolFailureRate: 0.25,
    maxErrorRateDelta: 0.05,
    maxToolFailureRateDelta: 0.12,
    maxNegativeRateDelta: 0.1
  })
  const plans: ReadonlyArray<[string, (days: number) => Plan]> = [
    [
      "fixed 10%",
      (days) => ({ thresholds: T(days), start: 0.1, steps: [], stepMinTurns: STEP_MIN_TURNS, pairs: 6, lookHours: 1 })
    ],
    [
      "steps 10% -> 50% (now)",
      (days) => ({
        thresholds: T(days),
        start: 0.1,
        steps: [0.1, 0.5],
        stepMinTurns: STEP_MIN_TURNS,
        pairs: 6,
        lookHours: 1
      })
    ]
  ]
  const lower = (r: () => number, drop: number) => {
    const s = likert(r, 0)
    return s > 0 && r() < drop / (0.25 * (1 - 0.04)) ? s - 0.25 : s
  }
  const worlds: Record<string, World["turn"]> = {
    "+0.10": (r, c) => ({ score: likert(r, c ? 0.1 : 0), error: r() < 0.03, toolFailure: null }),
    "+0.05": (r, c) => ({ score: likert(r, c ? 0.05 : 0), error: r() < 0.03, toolFailure: null }),
    "errors +20 points": (r, c) => ({ score: likert(r, 0), error: r() < (c ? 0.23 : 0.03), toolFailure: null }),
    "scores -0.10": (r, c) => ({ score: c ? lower(r, 0.1) : likert(r, 0), error: r() < 0.03, toolFailure: null })
  }
  const lives = (turn: World["turn"], perDay: number, plan: Plan) =>
    Array.from({ length: LOW_RUNS }, (_, i) => simulate({ turnsPerDay: perDay, turn }, plan, seedOf(i)))
  const median = (xs: ReadonlyArray<number>, n: number) =>
    xs.length * 2 >= n ? [...xs].sort((a, b) => a - b)[Math.floor(n / 2)]!.toFixed(1) : "never (under half)"
  console.log(`\nlow traffic, ${LOW_RUNS} lives a cell:`)
  console.log(
    "| turns a day | canary | share | promoted within 14 days (95% upper) | median days to promote (unpromoted = never) |"
  )
  console.log("| --- | --- | --- | --- | --- |")
  for (const [perDay, lift] of [
    [48, "+0.10"],
    [48, "+0.05"],
    [24, "+0.10"],
    [96, "+0.10"],
    [1000, "+0.10"]
  ] as const) {
    for (const [name, plan] of plans) {
      const runs = lives(worlds[lift]!, perDay, plan(14))
      const days = runs.filter((l) => l.action === "promote").map((l) => l.days)
      console.log(
        `| ${perDay.toLocaleString("en-US")} | ${lift} | ${name} | ${((100 * days.length) / LOW_RUNS).toFixed(1)}% (${(100 * upper(days.length, LOW_RUNS)).toFixed(1)}%) | ${median(days, LOW_RUNS)} |`
      )
    }
  }
  console.log(
    "\n| turns a day | harmful canary | share | canary turns served until rolled back: median / mean | days to roll back: median |"
  )
  console.log("| --- | --- | --- | --- | --- |")
  for (const harm of ["errors +20 points", "scores -0.10"]) {
    for (const [name, plan] of plans) {
      const runs = lives(worlds[harm]!, 48, plan(400)).filter((l) => l.action === "rollback")
      const turns = runs.map((l) => l.canaryTurns).sort((a, b) => a - b)
      const mean = turns.reduce((a, b) => a + b, 0) / Math.max(1, turns.length)
      console.log(
        `| 48 | ${harm} | ${name} | ${turns[Math.floor(turns.length / 2)] ?? "-"} / ${mean.toFixed(0)} (${runs.length} of ${LOW_RUNS} rolled back) | ${median(
          runs.map((l) => l.days),
          runs.length
        )} |`
      )
    }
  }
}

/**
 * npm run bench:canary [-- --runs=10000 --ramp-runs=2000 --lag-runs=1500 --ramped-only]
 * Seeded Monte Carlo of the canary decision (docs/decisions.md, "Canary decisions"), through the monitor's real
 * decision code (src/canary/Stats.ts: the CanaryProcess that `decide` feeds), beside the naive rule of the
 * original autotune.
 * Fixed-split cells: hourly looks until a decision or 1,000 canary samples (AUTOTUNE_CANARY_MAX_SAMPLES).
 * Ramped cells: a canary's life at 24, 48, 96 and 1,000 turns a day (a personal agent's day: quiet at night),
 * its share stepped by the monitor's own rule (src/canary/Ramp.ts, the default steps) through src/canary/Simulate.ts,
 * with every distribution's drift and judge noise, until a decision or its 14 days; and the same with the judge
 * behind (scores arriving up to a day late, out of order).
 */
import * as os from "node:os"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { CanaryProcess, naiveDecide, type Sample, type Thresholds } from "../src/canary/Stats.js"
import { type Plan, type Rng, rng, simulate, type World } from "../src/canary/Simulate.js"
import { SETTINGS } from "../src/config/Table.js"
import { arg, machine } from "./util.js"

type Dist = "likert" | "beta" | "bimodal" | "passfail"
interface Cell {
  readonly dist: Dist
  readonly lift: number
  /** A fixed split of each hour's turns, sparse hours, or a ramped canary at this many turns a day. */
  readonly split: readonly [number, number] | "sparse" | { readonly perDay: number; readonly lag: boolean }
  readonly drift: boolean
}
interface CellResult {
  readonly cell: Cell
  readonly runs: number
  readonly promoted: number
  readonly rolledBack: number
  readonly naivePromoted: number
  readonly naiveRolledBack: number
  readonly samplesToPromote: ReadonlyArray<number>
}

const normal = (r: Rng) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
const gamma = (r: Rng, k: number): number => {
  // Marsaglia-Tsang
  if (k < 1) return gamma(r, k + 1) * Math.pow(r(), 1 / k)
  const d = k - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    let x: number
    let v: number
    do {
      x = normal(r)
      v = 1 + c * x
    } while (v <= 0)
    v = v * v * v
    const u = r()
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
  }
}
const beta = (r: Rng, a: number, b: number) => {
  const x = gamma(r, a)
  return x / (x + gamma(r, b))
}
const LIKERT_P = [0.04, 0.06, 0.15, 0.37, 0.38]
const MEANS: Record<Dist, number> = { likert: 0.7475, beta: 6 / 7.5, bimodal: 0.6, passfail: 0.7 }
const draw = (r: Rng, dist: Dist): number => {
  switch (dist) {
    case "likert": {
      let u = r()
      for (let i = 0; i < 5; i++) if ((u -= LIKERT_P[i]!) < 0) return i / 4
      return 1
    }
    case "beta":
      return Math.round(beta(r, 6, 1.5) * 10) / 10
    case "bimodal":
      return r() < 0.25 ? 0 : beta(r, 8, 2)
    case "passfail":
      return r() < 0.7 ? 1 : 0
  }
}
const clip = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x)
/** Shifts a score so the arm's mean moves by exactly `lift` and stays in [0, 1]. */
const lifted = (s: number, lift: number, mean: number) =>
  lift >= 0 ? s + (lift * (1 - s)) / (1 - mean) : s + (lift * s) / mean

const THRESHOLDS: Thresholds = {
  minImprovement: 0.02,
  minSamples: 20,
  maxSamples: 1000,
  maxAgeMs: Number.MAX_SAFE_INTEGER,
  healthWindowMs: 24 * 3_600_000,
  maxErrorRate: 0.12,
  maxToolFailureRate: 0.25,
  maxErrorRateDelta: 0.05,
  maxToolFailureRateDelta: 0.12,
  maxNegativeRateDelta: 0.1
}
const HOUR = 3_600_000

const runOnce = (cell: Cell, seed: number) => {
  const r = rng(seed)
  const process = new CanaryProcess(THRESHOLDS)
  const sums = { canary: 0, active: 0, nCanary: 0, nActive: 0 }
  let drift = 0
  let naive: "promote" | "rollback" | undefined
  const sample = (at: number, lift: number): Sample => {
    const base = clip(draw(r, cell.dist) + drift)
    const score = clip(lifted(base, lift, MEANS[cell.dist]) + 0.1 * normal(r))
    // Both arms fail and fail tools alike: the health gates must not fire on a canary that is no worse.
    const error = r() < 0.04
    const toolFailure = r() < 0.6 ? (r() < 0.08 ? 1 : 0) : null
    return { at, score, error, toolFailure }
  }
  for (let hour = 0; ; hour++) {
    if (cell.drift && hour % 24 === 0) drift = (r() * 2 - 1) * 0.1
    const split = cell.split as readonly [number, number] | "sparse"
    const canaryThisHour = split === "sparse" ? Math.floor(r() * 4) : split[0]
    const activeThisHour = split === "sparse" ? 9 * Math.floor(r() * 4) + 3 : split[1]
    const batch: Array<{ s: Sample; arm: "canary" | "active" }> = []
    for (let i = 0; i < canaryThisHour; i++)
      batch.push({ s: sample(hour * HOUR + r() * HOUR, cell.lift), arm: "canary" })
    for (let i = 0; i < activeThisHour; i++) batch.push({ s: sample(hour * HOUR + r() * HOUR, 0), arm: "active" })
    batch.sort((a, b) => a.s.at - b.s.at)
    for (const { s, arm } of batch) {
      process.add(s, arm)
      const value = s.error ? 0 : s.score!
      if (arm === "canary") {
        sums.canary += value
        sums.nCanary++
      } else {
        sums.active += value
        sums.nActive++
      }
    }
    const now = (hour + 1) * HOUR
    if (naive === undefined) {
      const n = naiveDecide(
        sums.nCanary,
        sums.canary / Math.max(1, sums.nCanary),
        sums.active / Math.max(1, sums.nActive),
        THRESHOLDS.minSamples,
        THRESHOLDS.minImprovement
      )
      if (n === "promote" || n === "rollback") naive = n
    }
    const d = process.decision(now, 0)
    if (d.action !== "wait") return { action: d.action, samples: d.figures.nCanary, naive }
  }
}

/** The default plan (config/Table.ts): 10% stepping to 50% after the default canary turns, 6 pairs, a look an hour, 14 days. */
const RAMP_PLAN: Plan = {
  thresholds: { ...THRESHOLDS, maxAgeMs: 14 * 86_400_000 },
  start: 0.1,
  steps: [0.1, 0.5],
  stepMinTurns: SETTINGS.canaryStepMinTurns.default("") as number,
  pairs: 6,
  lookHours: 1
}

/** One ramped life: the distribution's scores with a daily drift shared by both arms and judge noise, 4% errors in both. */
const rampOnce = (
  cell: Cell & { readonly split: { readonly perDay: number; readonly lag: boolean } },
  seed: number
) => {
  const r = rng(seed ^ 0x5bd1e995)
  const drifts: Array<number> = []
  const world: World = {
    turnsPerDay: cell.split.perDay,
    turn: (rr, isCanary, hour) => {
      const day = Math.floor(hour / 24)
      while (drifts.length <= day) drifts.push(cell.drift ? (r() * 2 - 1) * 0.1 : 0)
      const base = clip(draw(rr, cell.dist) + drifts[day]!)
      return {
        score: clip(lifted(base, isCanary ? cell.lift : 0, MEANS[cell.dist]) + 0.1 * normal(rr)),
        error: rr() < 0.04,
        toolFailure: rr() < 0.6 ? (rr() < 0.08 ? 1 : 0) : null
      }
    },
    ...(cell.split.lag ? { lagHours: (rr: Rng) => rr() * 24 } : {})
  }
  // With the judge behind, the monitor rebuilds its decision from the store at each look: every third hour here.
  const life = simulate(world, cell.split.lag ? { ...RAMP_PLAN, lookHours: 3 } : RAMP_PLAN, seed)
  return { action: life.action, samples: life.canaryTurns, naive: undefined }
}

const isRamped = (c: Cell) => typeof c.split === "object" && "perDay" in c.split
const isLagged = (c: Cell) => typeof c.split === "object" && "perDay" in c.split && c.split.lag

const runCell = (cell: Cell, runs: number, seedBase: number): CellResult => {
  let promoted = 0
  let rolledBack = 0
  let naivePromoted = 0
  let naiveRolledBack = 0
  const samplesToPromote: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const split = cell.split
    const result =
      typeof split === "object" && "perDay" in split
        ? rampOnce({ ...cell, split }, seedBase + i * 7919)
        : runOnce(cell, seedBase + i * 7919)
    if (result.action === "promote") {
      promoted++
      samplesToPromote.push(result.samples)
    } else if (result.action === "rollback") rolledBack++
    if (result.naive === "promote") naivePromoted++
    else if (result.naive === "rollback") naiveRolledBack++
  }
  return { cell, runs, promoted, rolledBack, naivePromoted, naiveRolledBack, samplesToPromote }
}

const splitName = (s: Cell["split"]) =>
  s === "sparse"
    ? "sparse 0-3/h"
    : "perDay" in s
      ? `ramped at ${s.perDay.toLocaleString("en-US")}/day${s.lag ? ", judge behind" : ""}`
      : `${s[0]}/${s[1]}`
const cellName = (c: Cell) =>
  `${c.dist}, lift ${c.lift >= 0 ? "+" : ""}${c.lift.toFixed(2)}, ${splitName(c.split)}${c.drift ? ", drift" : ""}`

/** Wilson 95% interval for k successes in n. */
const wilson = (k: number, n: number) => {
  const z = 1.96
  const p = k / n
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n)
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n)
  return [Math.max(0, centre - half), Math.min(1, centre + half)] as const
}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`
const rate = (k: number, n: number) => {
  const [lo, hi] = wilson(k, n)
  return `${pct(k / n)} [${pct(lo)}, ${pct(hi)}]`
}
const quantile = (xs: ReadonlyArray<number>, q: number) => {
  if (xs.length === 0) return NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

const cells = (): Array<Cell> => {
  const out: Array<Cell> = []
  const dists: Array<Dist> = ["likert", "beta", "bimodal", "passfail"]
  for (const dist of dists)
    for (const lift of [0, 0.05, 0.1, -0.1]) out.push({ dist, lift, split: [10, 90], drift: false })
  for (const dist of dists)
    for (const split of [
      [5, 95],
      [50, 50]
    ] as const)
      for (const lift of [0, 0.1]) out.push({ dist, lift, split, drift: false })
  for (const dist of dists) for (const lift of [0, 0.1]) out.push({ dist, lift, split: "sparse", drift: false })
  for (const dist of dists) for (const lift of [0, 0.1]) out.push({ dist, lift, split: [10, 90], drift: true })
  for (const dist of dists)
    for (const perDay of [24, 48, 96, 1000])
      for (const lift of [0, 0.1]) out.push({ dist, lift, split: { perDay, lag: false }, drift: true })
  for (const dist of dists)
    for (const perDay of [48, 1000])
      for (const lift of [0, 0.1]) out.push({ dist, lift, split: { perDay, lag: true }, drift: true })
  return out
}

if (isMainThread) {
  const runs = arg("runs", 10_000)
  const rampRuns = arg("ramp-runs", 2000)
  const lagRuns = arg("lag-runs", 1500)
  const workers = Math.max(1, Math.min(os.cpus().length, 8))
  // The ramped cells alone: the fixed-split cells do not depend on the steps (no share changes there).
  const all = process.argv.includes("--ramped-only") ? cells().filter(isRamped) : cells()
  const started = Date.now()
  console.log(
    `bench:canary: ${all.length} cells: ${runs} runs a fixed-split cell, ${rampRuns} a ramped cell, ${lagRuns} with the judge behind; ${workers} worker(s); machine: ${machine()}`
  )
  const results: Array<CellResult> = []
  await Promise.all(
    Array.from(
      { length: workers },
      (_, w) =>
        new Promise<void>((resolve, reject) => {
          const mine = all.map((cell, i) => ({ cell, i })).filter(({ i }) => i % workers === w)
          const worker = new Worker(new URL(import.meta.url), { workerData: { cells: mine, runs, rampRuns, lagRuns } })
          worker.on("message", (r: CellResult) => results.push(r))
          worker.on("error", reject)
          worker.on("exit", () => resolve())
        })
    )
  )
  const order = new Map(all.map((c, i) => [cellName(c), i]))
  results.sort((a, b) => order.get(cellName(a.cell))! - order.get(cellName(b.cell))!)
  console.log(
    "\n| cell | e-process: promoted | e-process: rolled back | samples to promote (median / p90) | naive: promoted | naive: rolled back |"
  )
  console.log("| --- | --- | --- | --- | --- | --- |")
  let worstFalsePromote = 0
  let worstFalseRollback = 0
  for (const r of results) {
    if (r.cell.lift === 0) {
      worstFalsePromote = Math.max(worstFalsePromote, wilson(r.promoted, r.runs)[1])
      worstFalseRollback = Math.max(worstFalseRollback, wilson(r.rolledBack, r.runs)[1])
    }
    if (r.cell.lift > 0) worstFalseRollback = Math.max(worstFalseRollback, wilson(r.rolledBack, r.runs)[1])
    console.log(
      `| ${cellName(r.cell)} | ${rate(r.promoted, r.runs)} | ${rate(r.rolledBack, r.runs)} | ${r.samplesToPromote.length === 0 ? "-" : `${quantile(r.samplesToPromote, 0.5)} / ${quantile(r.samplesToPromote, 0.9)}`} | ${isRamped(r.cell) ? "–" : rate(r.naivePromoted, r.runs)} | ${isRamped(r.cell) ? "–" : rate(r.naiveRolledBack, r.runs)} |`
    )
  }
  console.log(
    `\nworst upper 95% bound: false promotion ${pct(worstFalsePromote)}, false rollback ${pct(worstFalseRollback)} (both must be <= 5%)`
  )
  console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`)
  if (worstFalsePromote > 0.05 || worstFalseRollback > 0.05) process.exitCode = 1
} else {
  const {
    cells: mine,
    runs,
    rampRuns,
    lagRuns
  } = workerData as { cells: Array<{ cell: Cell; i: number }>; runs: number; rampRuns: number; lagRuns: number }
  for (const { cell, i } of mine)
    parentPort!.postMessage(
      runCell(cell, isLagged(cell) ? lagRuns : isRamped(cell) ? rampRuns : runs, 1_000_003 * (i + 1))
    )
}

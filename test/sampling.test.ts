import Database from "better-sqlite3"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import type { ConfigKey } from "../src/config/Table.js"
import { sampleDraw } from "../src/Domain/Trace.js"
import { decide, type Sample, type Thresholds } from "../src/canary/Stats.js"
import { Judge } from "../src/judge/Judge.js"
import { canaryShare } from "../src/Domain/Share.js"
import { pairRate, trendRate } from "../src/judge/Sampling.js"
import { escalation } from "../src/judge/Escalation.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import { fullLayer, tempHome } from "./helpers/app.js"
import { mockLlm } from "./helpers/mockLlm.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"
const DAY = 86_400_000
const uuid = (n: number) => {
  const h = createHash("sha256").update(String(n)).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

describe("the sample's draw and rates", () => {
  it("spreads DotClaw's ids and sequential ids evenly over [0, 1), the same every time", () => {
    for (const id of [(i: number) => `trace-${uuid(i)}`, (i: number) => `t-2026-11-20-${i}`]) {
      const draws = Array.from({ length: 50_000 }, (_, i) => sampleDraw(id(i)))
      for (const q of [0.01, 0.1, 0.5, 0.9]) {
        const share = draws.filter((d) => d < q).length / draws.length
        // 50,000 draws: 4 standard errors of a binomial share at most 0.009.
        expect(Math.abs(share - q), `${id(0)} below ${q}`).toBeLessThan(
          4 * Math.sqrt((q * (1 - q)) / draws.length) + 1e-9
        )
      }
      expect(sampleDraw(id(7))).toBe(sampleDraw(id(7)))
    }
  })

  it("samples a day's worth spread over the window, pairs about k active turns per canary turn, and 0 means every turn", () => {
    expect(trendRate(40, 14 * 1000, 14)).toBeCloseTo(0.04, 10)
    expect(trendRate(40, 30, 3)).toBe(1)
    expect(trendRate(0, 14 * 1000, 14)).toBe(1)
    expect(pairRate(6, 0.1)).toBeCloseTo(6 / 9, 10)
    expect(pairRate(6, 0.5)).toBe(1)
    expect(pairRate(0, 0.1)).toBe(1)
    expect(canaryShare({ canaryPercent: 20 }, 0.1)).toBe(0.2)
    expect(canaryShare(undefined, 0.1)).toBe(0.1)
  })
})

/**
 * A store with `days` days of `perDay` turns of response-quality; the last day's turns after noon are served
 * 10% by a canary and 90% by the active pack, whose files are on disk.
 */
const world = (
  days: number,
  perDay: number,
  overrides: Partial<Record<ConfigKey, unknown>> = {},
  llm: { readonly batches?: boolean } = {}
) => {
  const home = tempHome()
  const start = Date.UTC(2026, 10, 10)
  const canaryFrom = start + (days - 1) * DAY + DAY / 2
  let body = ""
  for (let i = 0; i < days * perDay; i++) {
    const at = start + Math.floor((i * DAY) / perDay)
    const version = at < canaryFrom ? "active-1" : i % 10 === 0 ? "canary-1" : "active-1"
    const t = traceObject(i, { packVersions: { [B]: version } })
    body +=
      JSON.stringify({ ...t, trace_id: `trace-${uuid(i)}`, timestamp: new Date(at).toISOString(), created_at: at }) +
      "\n"
  }
  fs.writeFileSync(path.join(home, "traces", "trace-all.jsonl"), body)
  const prompts = path.join(home, "prompts")
  fs.mkdirSync(prompts)
  fs.writeFileSync(
    path.join(prompts, `${B}.json`),
    JSON.stringify({ name: B, version: "active-1", behavior: B, instructions: "Be brief." })
  )
  fs.writeFileSync(
    path.join(prompts, `${B}.canary.json`),
    JSON.stringify({
      name: B,
      version: "canary-1",
      behavior: B,
      instructions: "Be briefer.",
      metadata: { canaryPercent: 10 }
    })
  )
  const mock = mockLlm([], undefined, llm)
  const layer = fullLayer(home, mock.layer, {
    behaviors: [B],
    judgeAuditShare: 0,
    evalMaxTraces: 100_000,
    ...overrides
  })
  const run = () =>
    Effect.runPromise(
      Effect.gen(function* () {
        yield* (yield* TraceSource).ingest()
        return yield* (yield* Judge).evaluate()
      }).pipe(Effect.provide(layer))
    )
  const judged = () => {
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const rows = db
      .prepare(
        `SELECT t.trace_id AS id, t.created_at AS at, p.version, t.sample_draw AS draw FROM judge_scores j
      JOIN traces t ON t.trace_id = j.trace_id JOIN trace_packs p ON p.trace_id = t.trace_id AND p.created_at = t.created_at WHERE j.stage = 1`
      )
      .all() as Array<{ id: string; at: number; version: string; draw: number }>
    db.close()
    return rows
  }
  return { run, judged, seen: mock.seen, batched: mock.batched, canaryFrom, start, home }
}

describe("what the judge scores", () => {
  it("every canary turn, about six active turns beside each, and a daily sample of AUTOTUNE_JUDGE_DAILY_SAMPLE turns for the trend", async () => {
    const w = world(10, 400)
    const summary = await w.run()
    const rows = w.judged()
    const canary = rows.filter((r) => r.version === "canary-1")
    expect(canary).toHaveLength(20)
    // Active turns since six hours before the canary's first turn: a share pairRate(6, 0.1) = 2/3 of them.
    const pairWindow = rows.filter((r) => r.version === "active-1" && r.at >= w.canaryFrom - 6 * 3_600_000)
    expect(pairWindow.length).toBeGreaterThan(0.55 * 280)
    expect(pairWindow.length).toBeLessThan(0.8 * 280)
    // Trend: days 1-8 have no canary; each gets about 40 of its 400 turns (binomial sd 6).
    for (let d = 0; d < 8; d++) {
      const n = rows.filter((r) => r.at >= w.start + d * DAY && r.at < w.start + (d + 1) * DAY).length
      expect(n, `day ${d}`).toBeGreaterThan(20)
      expect(n, `day ${d}`).toBeLessThan(65)
    }
    const b = summary.behaviors[B]!
    expect(b.canaryTraces).toBe(20)
    expect(b.pairTraces + b.trendTraces + b.canaryTraces).toBe(rows.length)
    expect(b.sampling.pairRate).toBeCloseTo(2 / 3, 10)
    expect(rows.length).toBeLessThan(1000)
    // The same turns are chosen again: a second run has nothing left to judge.
    expect((await w.run()).calls).toBe(0)
  })

  it("spends a short run on canary turns first, then their pairs, and the trend last", async () => {
    const w = world(10, 400, { evalMaxTraces: 120 })
    await w.run()
    const rows = w.judged()
    expect(rows.filter((r) => r.version === "canary-1")).toHaveLength(20)
    expect(rows).toHaveLength(120)
    // All 100 others are pairs from the canary's window: none of the trend sample yet.
    expect(rows.every((r) => r.at >= w.canaryFrom - 6 * 3_600_000)).toBe(true)
  })

  it("with batching on, canary turns and their pairs are judged at once and only the trend sample goes in the batch", async () => {
    const w = world(10, 400, { judgeBatch: "trend" }, { batches: true })
    const first = await w.run()
    const b = first.behaviors[B]!
    const direct = w.judged()
    // Every canary turn and its pairs now; nothing of the trend yet.
    expect(direct.filter((r) => r.version === "canary-1")).toHaveLength(20)
    expect(direct.every((r) => r.at >= w.canaryFrom - 6 * 3_600_000)).toBe(true)
    expect(b.trendTraces).toBe(0)
    expect(w.batched).toHaveLength(1)
    expect(b.batched).toBe(w.batched[0]!.length)
    expect(b.batched).toBeGreaterThan(250)
    const db = new Database(path.join(w.home, "autotune.db"), { readonly: true })
    expect(db.prepare("SELECT DISTINCT need FROM judge_batch_items").all()).toEqual([{ need: "trend" }])
    db.close()
    // The next run collects the sample; every turn chosen is judged once.
    const second = await w.run()
    expect(second.batches).toMatchObject({ collected: b.batched, submitted: 0, pendingBatches: 0 })
    const all = w.judged()
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length)
    expect(all.length).toBe(direct.length + b.batched!)
  })

  it("judges every turn with AUTOTUNE_JUDGE_DAILY_SAMPLE=0 and AUTOTUNE_JUDGE_CANARY_PAIRS=0", async () => {
    const w = world(2, 150, { judgeDailySample: 0, judgeCanaryPairs: 0 })
    await w.run()
    expect(w.judged()).toHaveLength(300)
  })
})

describe("the canary test with a sample of the active turns", () => {
  const thresholds: Thresholds = {
    minImprovement: 0.02,
    minSamples: 20,
    maxSamples: 500,
    maxAgeMs: 14 * DAY,
    healthWindowMs: DAY,
    maxErrorRate: 0.5,
    maxToolFailureRate: 0.5,
    maxErrorRateDelta: 0.5,
    maxToolFailureRateDelta: 0.5,
    maxNegativeRateDelta: 0.1
  }
  const traffic = (activeFor: (i: number) => Sample) => {
    const canary: Array<Sample> = []
    const active: Array<Sample> = []
    for (let i = 0; i < 2000; i++) {
      const at = 1_000_000 + i * 60_000
      if (i % 10 === 0) canary.push({ at, score: 0.7, error: false, toolFailure: null })
      else active.push(activeFor(i))
    }
    return { canary, active }
  }

  it("compares the canary's scores only with sampled active turns: unsampled failures weigh nothing", () => {
    // Sampled active turns score as the canary does; unsampled ones all failed (a failed turn counts 0).
    const { canary, active } = traffic((i) => {
      const sampled = i % 3 !== 0
      return { at: 1_000_000 + i * 60_000, score: sampled ? 0.7 : null, error: !sampled, toolFailure: null, sampled }
    })
    const d = decide({ canary, active, startedAt: 0, now: 1_000_000 + 2000 * 60_000, thresholds })
    expect(d.figures.meanDiff).toBeCloseTo(0, 10)
    expect(d.action).toBe("wait")
    // Were they let in, the canary would look far better than it is.
    const naive = decide({
      canary,
      active: active.map((s) => ({ ...s, sampled: true })),
      startedAt: 0,
      now: 1_000_000 + 2000 * 60_000,
      thresholds
    })
    expect(naive.figures.meanDiff!).toBeGreaterThan(0.1)
  })

  it("decides exactly as before when every active turn is sampled", () => {
    const scores = [0.25, 0.5, 0.75, 1]
    const { canary, active } = traffic((i) => ({
      at: 1_000_000 + i * 60_000,
      score: scores[i % 4]!,
      error: i % 17 === 0,
      toolFailure: i % 5 === 0 ? 1 : 0
    }))
    const a = decide({ canary, active, startedAt: 0, now: 1_000_000 + 2000 * 60_000, thresholds })
    const b = decide({
      canary,
      active: active.map((s) => ({ ...s, sampled: true })),
      startedAt: 0,
      now: 1_000_000 + 2000 * 60_000,
      thresholds
    })
    expect(b).toEqual(a)
    expect(a.figures.pairs).toBe(200)
  })
})

describe("the stage-2 rule", () => {
  it("follows the band until a level has 30 pairs, then that level's own record", () => {
    const band = { low: 0.35, high: 0.65 }
    const fresh = escalation([], band)
    expect([0.25, 0.5, 0.75].map(fresh.escalate)).toEqual([false, true, false])
    const known = escalation(
      [
        { level: 0.5, n: 30, flips: 2 },
        { level: 1, n: 60, flips: 15 },
        { level: 0.25, n: 29, flips: 29 }
      ],
      band
    )
    expect([0.25, 0.5, 0.55, 0.75, 1].map(known.escalate)).toEqual([false, false, false, false, true])
    expect(known.calibrated.map((c) => c.level)).toEqual([0.5, 1])
  })
})

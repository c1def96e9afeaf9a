import { describe, expect, it } from "vitest"
import { CanaryProcess, decide, type Sample, type Thresholds } from "../src/canary/Stats.js"

const T: Thresholds = {
  minImprovement: 0.02,
  minSamples: 20,
  maxSamples: 500,
  maxAgeMs: 14 * 86_400_000,
  healthWindowMs: 24 * 3_600_000,
  maxErrorRate: 0.12,
  maxToolFailureRate: 0.25,
  maxErrorRateDelta: 0.05,
  maxToolFailureRateDelta: 0.12,
  maxNegativeRateDelta: 0.1
}
const HOUR = 3_600_000

// A deterministic stream: every hour `c` canary and `a` active samples, scores from the functions.
const stream = (
  hours: number,
  c: number,
  a: number,
  canary: (i: number) => Partial<Sample>,
  active: (i: number) => Partial<Sample> = () => ({})
) => {
  const cs: Array<Sample> = []
  const as: Array<Sample> = []
  for (let h = 0; h < hours; h++) {
    for (let i = 0; i < a; i++)
      as.push({ at: h * HOUR + (i * HOUR) / a, score: 0.7, error: false, toolFailure: null, ...active(as.length) })
    for (let i = 0; i < c; i++)
      cs.push({
        at: h * HOUR + ((i + 0.5) * HOUR) / c,
        score: 0.7,
        error: false,
        toolFailure: null,
        ...canary(cs.length)
      })
  }
  return { canary: cs, active: as }
}
const wobble = (i: number, base: number) => base + ((i * 7919) % 11) / 50 - 0.1

describe("canary decision (e-process)", () => {
  it("decides nothing before AUTOTUNE_CANARY_MIN_SAMPLES canary samples", () => {
    const s = stream(
      1,
      10,
      90,
      () => ({ score: 1 }),
      () => ({ score: 0 })
    )
    const d = decide({ ...s, startedAt: 0, now: HOUR, thresholds: T })
    expect(d.action).toBe("wait")
    expect(d.rule).toBe("min-samples")
  })

  it("promotes a clearly better canary and rolls back a clearly worse one", () => {
    const better = stream(
      12,
      10,
      90,
      (i) => ({ score: wobble(i, 0.85) }),
      (i) => ({ score: wobble(i, 0.6) })
    )
    const up = decide({ ...better, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(up.action).toBe("promote")
    expect(up.figures.eUp).toBeGreaterThanOrEqual(20)
    const worse = stream(
      12,
      10,
      90,
      (i) => ({ score: wobble(i, 0.5) }),
      (i) => ({ score: wobble(i, 0.75) })
    )
    const down = decide({ ...worse, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(down.action).toBe("rollback")
    expect(down.rule).toBe("score")
  })

  it("counts a crossing between two looks: evidence that reached 20 and fell back still promotes, and the first side to cross decides", () => {
    // 8 hours far better, then 30 hours far worse: the evidence toward promotion peaks above 20 and falls away.
    const swing = (better: number, worse: number) =>
      stream(
        better + worse,
        10,
        90,
        (i) => ({ score: i < better * 10 ? wobble(i, 0.9) : wobble(i, 0.55) }),
        (i) => ({ score: wobble(i, 0.7) })
      )
    const s = swing(8, 30)
    const d = decide({ ...s, startedAt: 0, now: 38 * HOUR, thresholds: T })
    expect(d.figures.eUpNow).toBeLessThan(20)
    expect(d.figures.eUp).toBeGreaterThanOrEqual(20)
    expect(d.figures.eDownNow).toBeGreaterThanOrEqual(40)
    // Promotion crossed first: that decides, though the evidence toward rollback is above its threshold now.
    expect(d).toMatchObject({ action: "promote", rule: "score" })
    // The same at every look after the crossing: the peak never falls.
    for (const hour of [10, 20, 30]) {
      const part = {
        canary: s.canary.filter((x) => x.at < hour * HOUR),
        active: s.active.filter((x) => x.at < hour * HOUR)
      }
      expect(decide({ ...part, startedAt: 0, now: hour * HOUR, thresholds: T }).action).toBe("promote")
    }
    // Worse first, better later: rollback crossed first.
    const late = stream(
      38,
      10,
      90,
      (i) => ({ score: i < 300 ? wobble(i, 0.5) : wobble(i, 0.95) }),
      (i) => ({ score: wobble(i, 0.7) })
    )
    expect(decide({ ...late, startedAt: 0, now: 38 * HOUR, thresholds: T })).toMatchObject({
      action: "rollback",
      rule: "score"
    })
  })

  it("keeps waiting on a canary no better than the active pack, then expires it as inconclusive", () => {
    const same = stream(
      10,
      10,
      90,
      (i) => ({ score: wobble(i, 0.7) }),
      (i) => ({ score: wobble(i + 3, 0.7) })
    )
    expect(decide({ ...same, startedAt: 0, now: 10 * HOUR, thresholds: T }).action).toBe("wait")
    expect(decide({ ...same, startedAt: 0, now: 10 * HOUR, thresholds: { ...T, maxSamples: 100 } }).action).toBe(
      "expire"
    )
    const old = decide({ ...same, startedAt: 0, now: 15 * 86_400_000, thresholds: T })
    expect(old.action).toBe("expire")
    expect(old.rule).toBe("age")
  })

  it("rolls back on the error-rate health gate before the score test", () => {
    const failing = stream(
      6,
      10,
      90,
      (i) => ({ error: i % 3 === 0, score: 0.9 }),
      () => ({ score: 0.6 })
    )
    const d = decide({ ...failing, startedAt: 0, now: 6 * HOUR, thresholds: T })
    expect(d.action).toBe("rollback")
    expect(["errorCeiling", "errorDelta"]).toContain(d.rule)
  })

  it("rolls back on the tool-failure gates", () => {
    const tools = stream(
      6,
      10,
      90,
      (i) => ({ toolFailure: i % 2 === 0 ? 1 : 0 }),
      () => ({ toolFailure: 0 })
    )
    const d = decide({ ...tools, startedAt: 0, now: 6 * HOUR, thresholds: T })
    expect(d.action).toBe("rollback")
    expect(["toolCeiling", "toolDelta"]).toContain(d.rule)
  })

  it("counts only the health window for the health gates", () => {
    const early = stream(3, 10, 90, (i) => ({ error: i % 3 === 0 }))
    const late = stream(30, 10, 90, () => ({}))
    const shifted = {
      canary: [...early.canary, ...late.canary.map((s) => ({ ...s, at: s.at + 3 * HOUR }))],
      active: [...early.active, ...late.active.map((s) => ({ ...s, at: s.at + 3 * HOUR }))]
    }
    const d = decide({ ...shifted, startedAt: 0, now: 33 * HOUR, thresholds: T })
    expect(d.figures.canaryErrorRate).toBe(0)
    expect(d.rule).not.toMatch(/^error/)
  })

  it("treats unscored turns as missing, and failed turns as 0", () => {
    const unscored = stream(
      12,
      10,
      90,
      (i) => ({ score: i % 2 === 0 ? null : 0.7 }),
      () => ({ score: 0.7 })
    )
    const d = decide({ ...unscored, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(d.figures.nCanary).toBe(60)
    expect(d.figures.meanCanary).toBeCloseTo(0.7)
    expect(d.action).toBe("wait")
    const failing = stream(
      2,
      10,
      90,
      (i) => ({ error: i < 2, score: 1 }),
      () => ({ score: 1 })
    )
    expect(decide({ ...failing, startedAt: 0, now: 2 * HOUR, thresholds: T }).figures.meanCanary).toBeCloseTo(0.9)
  })

  it("is deterministic and gives the same decision fed all at once or look by look", () => {
    const s = stream(
      12,
      10,
      90,
      (i) => ({ score: wobble(i, 0.8) }),
      (i) => ({ score: wobble(i, 0.65) })
    )
    const a = decide({ ...s, startedAt: 0, now: 12 * HOUR, thresholds: T })
    const b = decide({ ...s, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(a).toEqual(b)
    const process = new CanaryProcess(T)
    const merged = [
      ...s.canary.map((x) => ({ x, arm: "canary" as const })),
      ...s.active.map((x) => ({ x, arm: "active" as const }))
    ].sort((p, q) => p.x.at - q.x.at || (p.arm === "active" ? -1 : 1))
    let hour = 1
    for (const { x, arm } of merged) {
      while (x.at >= hour * HOUR) process.decision(hour++ * HOUR, 0)
      process.add(x, arm)
    }
    expect(process.decision(12 * HOUR, 0).figures).toEqual(a.figures)
  })

  it("bets in pair order and stops at the first pair still waiting for a score: later scores cannot move it", () => {
    const s = stream(
      24,
      10,
      90,
      (i) => ({ score: wobble(i, 0.72) }),
      (i) => ({ score: wobble(i, 0.7) })
    )
    const all = decide({ ...s, startedAt: 0, now: 24 * HOUR, thresholds: T })
    // Canary turn 100 not judged yet: only the pairs before it are bet on, whatever the later scores are.
    const waiting = (scores: (i: number) => number) => ({
      canary: s.canary.map((c, i) =>
        i === 100 ? { ...c, score: null, pending: true } : i > 100 ? { ...c, score: scores(i) } : c
      ),
      active: s.active
    })
    const a = decide({ ...waiting(() => 1), startedAt: 0, now: 24 * HOUR, thresholds: T })
    const b = decide({ ...waiting(() => 0), startedAt: 0, now: 24 * HOUR, thresholds: T })
    expect(a.figures.pairs).toBe(100)
    expect(b.figures).toMatchObject({ pairs: 100, eUp: a.figures.eUp, eDown: a.figures.eDown })
    // The prefix is what the full record bets on first: the same evidence as the first 100 pairs alone.
    const prefix = decide({
      canary: s.canary.slice(0, 100),
      active: s.active.filter((x) => x.at < s.canary[100]!.at),
      startedAt: 0,
      now: 24 * HOUR,
      thresholds: T
    })
    expect(prefix.figures).toMatchObject({ pairs: 100, eUp: a.figures.eUp, eDown: a.figures.eDown })
    expect(all.figures.pairs).toBe(240)
    // An active partner still waiting blocks its pair the same way; a failed turn (score 0) never waits.
    // (The most recent active turn before canary turn 100 is in its block.)
    const partner = s.active.filter((x) => x.at < s.canary[100]!.at).length - 1
    const activeWaiting = decide({
      canary: s.canary,
      active: s.active.map((x, i) => (i === partner ? { ...x, score: null, pending: true } : x)),
      startedAt: 0,
      now: 24 * HOUR,
      thresholds: T
    })
    expect(activeWaiting.figures).toMatchObject({ pairs: 100, eUp: a.figures.eUp })
    const failed = decide({
      canary: s.canary.map((c, i) => (i === 100 ? { ...c, score: null, pending: true, error: true } : c)),
      active: s.active,
      startedAt: 0,
      now: 24 * HOUR,
      thresholds: T
    })
    expect(failed.figures.pairs).toBe(240)
  })

  it("gives the same sequence of bets whatever order the scores arrive in (canary first, newest first, a few per run)", () => {
    const s = stream(
      30,
      10,
      90,
      (i) => ({ score: wobble(i, 0.7) }),
      (i) => ({ score: wobble(i, 0.7) })
    )
    // Per look: the evidence for each number of pairs bet on. Orders differ in which scores are in at a look.
    const trail = (order: ReadonlyArray<{ arm: "canary" | "active"; i: number }>, perLook: number) => {
      const known = { canary: new Set<number>(), active: new Set<number>() }
      const seen = new Map<number, [number, number]>()
      for (let k = 0; k < order.length; k += perLook) {
        for (const o of order.slice(k, k + perLook)) known[o.arm].add(o.i)
        const view = (arm: "canary" | "active") =>
          s[arm].map((x, i) => (known[arm].has(i) ? x : { ...x, score: null, pending: true }))
        const d = decide({
          canary: view("canary"),
          active: view("active"),
          startedAt: 0,
          now: 30 * HOUR,
          thresholds: T
        })
        seen.set(d.figures.pairs, [d.figures.eUp, d.figures.eDown])
      }
      return seen
    }
    const ids = (arm: "canary" | "active") => s[arm].map((_, i) => ({ arm, i }))
    const inOrder = [...ids("canary"), ...ids("active")].sort((x, y) => s[x.arm][x.i]!.at - s[y.arm][y.i]!.at)
    // As eval produces them: every canary turn first, then the active turns newest first, 150 a run.
    const evalOrder = [...ids("canary"), ...ids("active").reverse()]
    let r = 12345
    const shuffled = [...inOrder].sort(() => (r = (r * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5)
    const reference = trail(inOrder, 50)
    for (const order of [evalOrder, shuffled]) {
      const other = trail(order, 150)
      let shared = 0
      for (const [pairs, evidence] of other) {
        if (!reference.has(pairs)) continue
        shared++
        expect(evidence).toEqual(reference.get(pairs))
      }
      expect(shared).toBeGreaterThan(0)
      // Once every score is in, both orders reach the same bets.
      expect(other.get(300)).toEqual(reference.get(300))
    }
  })

  it("promotes a lone canary (no active pack) once the health gates pass, and rolls it back when they do not", () => {
    const s = stream(3, 10, 0, () => ({}))
    expect(decide({ ...s, startedAt: 0, now: 3 * HOUR, thresholds: T, lone: true }).action).toBe("promote")
    const bad = stream(3, 10, 0, (i) => ({ error: i % 2 === 0 }))
    expect(decide({ ...bad, startedAt: 0, now: 3 * HOUR, thresholds: T, lone: true }).action).toBe("rollback")
  })
})

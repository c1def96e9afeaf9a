import { describe, expect, it } from "vitest"
import { CanaryProcess, decide, type Sample, type Thresholds } from "../src/stages/CanaryStats.js"

const T: Thresholds = {
  minImprovement: 0.02, minSamples: 20, maxSamples: 500, maxAgeMs: 14 * 86_400_000, healthWindowMs: 24 * 3_600_000,
  maxErrorRate: 0.12, maxToolFailureRate: 0.25, maxErrorRateDelta: 0.05, maxToolFailureRateDelta: 0.12, maxNegativeRateDelta: 0.1
}
const HOUR = 3_600_000

// A deterministic stream: every hour `c` canary and `a` active samples, scores from the functions.
const stream = (hours: number, c: number, a: number, canary: (i: number) => Partial<Sample>, active: (i: number) => Partial<Sample> = () => ({})) => {
  const cs: Array<Sample> = []
  const as: Array<Sample> = []
  for (let h = 0; h < hours; h++) {
    for (let i = 0; i < a; i++) as.push({ at: h * HOUR + (i * HOUR) / a, score: 0.7, error: false, toolFailure: null, ...active(as.length) })
    for (let i = 0; i < c; i++) cs.push({ at: h * HOUR + ((i + 0.5) * HOUR) / c, score: 0.7, error: false, toolFailure: null, ...canary(cs.length) })
  }
  return { canary: cs, active: as }
}
const wobble = (i: number, base: number) => base + ((i * 7919) % 11) / 50 - 0.1

describe("canary decision (e-process)", () => {
  it("decides nothing before AUTOTUNE_CANARY_MIN_SAMPLES canary samples", () => {
    const s = stream(1, 10, 90, () => ({ score: 1 }), () => ({ score: 0 }))
    const d = decide({ ...s, startedAt: 0, now: HOUR, thresholds: T })
    expect(d.action).toBe("wait")
    expect(d.rule).toBe("min-samples")
  })

  it("promotes a clearly better canary and rolls back a clearly worse one", () => {
    const better = stream(12, 10, 90, (i) => ({ score: wobble(i, 0.85) }), (i) => ({ score: wobble(i, 0.6) }))
    const up = decide({ ...better, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(up.action).toBe("promote")
    expect(up.figures.eUp).toBeGreaterThanOrEqual(20)
    const worse = stream(12, 10, 90, (i) => ({ score: wobble(i, 0.5) }), (i) => ({ score: wobble(i, 0.75) }))
    const down = decide({ ...worse, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(down.action).toBe("rollback")
    expect(down.rule).toBe("score")
  })

  it("keeps waiting on a canary no better than the active pack, then expires it as inconclusive", () => {
    const same = stream(10, 10, 90, (i) => ({ score: wobble(i, 0.7) }), (i) => ({ score: wobble(i + 3, 0.7) }))
    expect(decide({ ...same, startedAt: 0, now: 10 * HOUR, thresholds: T }).action).toBe("wait")
    expect(decide({ ...same, startedAt: 0, now: 10 * HOUR, thresholds: { ...T, maxSamples: 100 } }).action).toBe("expire")
    const old = decide({ ...same, startedAt: 0, now: 15 * 86_400_000, thresholds: T })
    expect(old.action).toBe("expire")
    expect(old.rule).toBe("age")
  })

  it("rolls back on the error-rate health gate before the score test", () => {
    const failing = stream(6, 10, 90, (i) => ({ error: i % 3 === 0, score: 0.9 }), () => ({ score: 0.6 }))
    const d = decide({ ...failing, startedAt: 0, now: 6 * HOUR, thresholds: T })
    expect(d.action).toBe("rollback")
    expect(["errorCeiling", "errorDelta"]).toContain(d.rule)
  })

  it("rolls back on the tool-failure gates", () => {
    const tools = stream(6, 10, 90, (i) => ({ toolFailure: i % 2 === 0 ? 1 : 0 }), () => ({ toolFailure: 0 }))
    const d = decide({ ...tools, startedAt: 0, now: 6 * HOUR, thresholds: T })
    expect(d.action).toBe("rollback")
    expect(["toolCeiling", "toolDelta"]).toContain(d.rule)
  })

  it("counts only the health window for the health gates", () => {
    const early = stream(3, 10, 90, (i) => ({ error: i % 3 === 0 }))
    const late = stream(30, 10, 90, () => ({}))
    const shifted = { canary: [...early.canary, ...late.canary.map((s) => ({ ...s, at: s.at + 3 * HOUR }))], active: [...early.active, ...late.active.map((s) => ({ ...s, at: s.at + 3 * HOUR }))] }
    const d = decide({ ...shifted, startedAt: 0, now: 33 * HOUR, thresholds: T })
    expect(d.figures.canaryErrorRate).toBe(0)
    expect(d.rule).not.toMatch(/^error/)
  })

  it("treats unscored turns as missing, and failed turns as 0", () => {
    const unscored = stream(12, 10, 90, (i) => ({ score: i % 2 === 0 ? null : 0.7 }), () => ({ score: 0.7 }))
    const d = decide({ ...unscored, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(d.figures.nCanary).toBe(60)
    expect(d.figures.meanCanary).toBeCloseTo(0.7)
    expect(d.action).toBe("wait")
    const failing = stream(2, 10, 90, (i) => ({ error: i < 2, score: 1 }), () => ({ score: 1 }))
    expect(decide({ ...failing, startedAt: 0, now: 2 * HOUR, thresholds: T }).figures.meanCanary).toBeCloseTo(0.9)
  })

  it("is deterministic and gives the same decision fed all at once or look by look", () => {
    const s = stream(12, 10, 90, (i) => ({ score: wobble(i, 0.8) }), (i) => ({ score: wobble(i, 0.65) }))
    const a = decide({ ...s, startedAt: 0, now: 12 * HOUR, thresholds: T })
    const b = decide({ ...s, startedAt: 0, now: 12 * HOUR, thresholds: T })
    expect(a).toEqual(b)
    const process = new CanaryProcess(T)
    const merged = [...s.canary.map((x) => ({ x, arm: "canary" as const })), ...s.active.map((x) => ({ x, arm: "active" as const }))].sort((p, q) => p.x.at - q.x.at || (p.arm === "active" ? -1 : 1))
    let hour = 1
    for (const { x, arm } of merged) {
      while (x.at >= hour * HOUR) process.decision(hour++ * HOUR, 0)
      process.add(x, arm)
    }
    expect(process.decision(12 * HOUR, 0).figures).toEqual(a.figures)
  })

  it("promotes a lone canary (no active pack) once the health gates pass, and rolls it back when they do not", () => {
    const s = stream(3, 10, 0, () => ({}))
    expect(decide({ ...s, startedAt: 0, now: 3 * HOUR, thresholds: T, lone: true }).action).toBe("promote")
    const bad = stream(3, 10, 0, (i) => ({ error: i % 2 === 0 }))
    expect(decide({ ...bad, startedAt: 0, now: 3 * HOUR, thresholds: T, lone: true }).action).toBe("rollback")
  })
})

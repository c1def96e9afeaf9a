import { describe, expect, it } from "vitest"
import { agreement } from "../src/judge/Agreement.js"
import { decide, type Sample, type Thresholds } from "../src/canary/Stats.js"
import { reflectionExamples } from "../src/optimize/Search.js"
import { fallbackMode, strictSchema } from "../src/llm/Structured.js"

describe("judge agreement with users (AUC)", () => {
  it("is 1 when every 👍 turn scores above every 👎 turn, 0 in reverse, 0.5 for ties", () => {
    expect(agreement([0.9, 0.8], [0.2, 0.1]).auc).toBe(1)
    expect(agreement([0.2, 0.1], [0.9, 0.8]).auc).toBe(0)
    expect(agreement([0.5, 0.5], [0.5]).auc).toBe(0.5)
    // 3 of 4 pairs ordered right, one tie: (3 + 0.5) / 4.
    expect(agreement([0.9, 0.4], [0.4, 0.1]).auc).toBeCloseTo(0.875, 10)
  })

  it("has no AUC without both kinds of reaction, and flags disagreement only when the interval says so", () => {
    expect(agreement([0.9], [])).toMatchObject({ auc: null, n: 1, disagrees: false })
    const few = agreement([0.1], [0.9])
    expect(few.auc).toBe(0)
    // One pair is no evidence: the interval reaches past 0.5.
    expect(few.disagrees).toBe(false)
    const many = agreement(
      Array.from({ length: 40 }, (_, i) => 0.1 + (i % 5) * 0.05),
      Array.from({ length: 40 }, (_, i) => 0.6 + (i % 5) * 0.05)
    )
    expect(many.auc).toBe(0)
    expect(many.high!).toBeLessThan(0.5)
    expect(many.disagrees).toBe(true)
  })
})

const thresholds: Thresholds = {
  minImprovement: 0.02,
  minSamples: 20,
  maxSamples: 500,
  maxAgeMs: 14 * 86_400_000,
  healthWindowMs: 7 * 86_400_000,
  maxErrorRate: 0.12,
  maxToolFailureRate: 0.25,
  maxErrorRateDelta: 0.05,
  maxToolFailureRateDelta: 0.12,
  maxNegativeRateDelta: 0.1
}

/** Both arms scored alike; a share of turns carries a reaction with the given 👎 rate per arm. */
const world = (canaryNegative: number, activeNegative: number, seed = 1) => {
  let x = seed
  const rand = () => (x = (x * 16807) % 2147483647) / 2147483647
  const canary: Array<Sample> = []
  const active: Array<Sample> = []
  const start = Date.UTC(2026, 10, 20)
  for (let i = 0; i < 3000; i++) {
    const at = start + i * 60_000
    const isCanary = i % 5 === 0
    const reacted = rand() < 0.5
    const negative = reacted ? (rand() < (isCanary ? canaryNegative : activeNegative) ? 1 : 0) : null
    const sample: Sample = { at, score: 0.7, error: false, toolFailure: null, negative }
    ;(isCanary ? canary : active).push(sample)
  }
  return { canary, active, startedAt: start, now: start + 3000 * 60_000 }
}

describe("the users' 👎 gate on a canary", () => {
  it("rolls back a canary users dislike far more often than the active pack, naming the gate", () => {
    const w = world(0.6, 0.1)
    const d = decide({ ...w, thresholds: { ...thresholds, maxSamples: 100_000 } })
    expect(d.action).toBe("rollback")
    expect(d.rule).toBe("negativeDelta")
    expect(d.reason).toContain("AUTOTUNE_CANARY_MAX_NEGATIVE_RATE_DELTA")
    expect(d.figures.reactions.canaryNegativeRate!).toBeGreaterThan(0.5)
  })

  it("leaves alone a canary users react to like the active pack", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const d = decide({ ...world(0.2, 0.2, seed), thresholds: { ...thresholds, maxSamples: 100_000 } })
      expect(d.rule).not.toBe("negativeDelta")
    }
  })

  it("places no bet without reactions", () => {
    const w = world(0, 0)
    const bare = {
      ...w,
      canary: w.canary.map((s) => ({ ...s, negative: null })),
      active: w.active.map((s) => ({ ...s, negative: null }))
    }
    const d = decide({ ...bare, thresholds })
    expect(d.figures.health.negativeDelta).toBe(1)
    expect(d.figures.reactions).toMatchObject({ canary: 0, active: 0, canaryNegativeRate: null })
  })
})

describe("what reflection is shown", () => {
  it("puts users' 👎 turns first among failures and 👍 turns first among successes", () => {
    const rows = [
      { id: "a", score: 0.1, reaction: null },
      { id: "b", score: 0.9, reaction: "negative" },
      { id: "c", score: 0.95, reaction: null },
      { id: "d", score: 0.6, reaction: "positive" },
      { id: "e", score: 0.3, reaction: null }
    ]
    const { failures, successes } = reflectionExamples(rows, 3, 2)
    expect(failures.map((r) => r.id)).toEqual(["b", "a", "e"])
    expect(successes.map((r) => r.id)).toEqual(["d", "c"])
  })
})

describe("structured answers", () => {
  it("steps down from a forced tool to a JSON Schema format to a plain instruction only on a matching refusal", () => {
    expect(fallbackMode("tool", "Forced tool use (tool_choice) is not supported with this model")).toBe("json_schema")
    expect(fallbackMode("json_schema", "output_config.format: unsupported for this model")).toBe("prompt")
    expect(fallbackMode("tool", "max_tokens: must be at most 8192")).toBeUndefined()
    expect(fallbackMode("prompt", "anything")).toBeUndefined()
  })

  it("closes every object schema and drops numeric bounds for strict modes", () => {
    const schema = strictSchema({
      type: "object",
      properties: {
        score: { type: "number", minimum: 0, maximum: 1 },
        items: { type: "array", items: { type: "object", properties: { a: { type: "string" } } } }
      }
    })
    expect(schema).toEqual({
      type: "object",
      additionalProperties: false,
      properties: {
        score: { type: "number" },
        items: {
          type: "array",
          items: { type: "object", additionalProperties: false, properties: { a: { type: "string" } } }
        }
      }
    })
  })
})

import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { BehaviorTuner, deriveChanges, readAsDotClaw } from "../src/behavior/BehaviorTuner.js"
import type { ConfigKey } from "../src/config/Table.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import type { Behavior } from "../src/Domain/Behavior.js"
import { approve } from "../src/pipeline/Approval.js"
import { fullLayer, tempHome } from "./helpers/app.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { answer, mockLlm } from "./helpers/mockLlm.js"
import { traceLine } from "./helpers/traces.js"

const recent = (i: number, o: Parameters<typeof traceLine>[1] = {}) => {
  const t = JSON.parse(traceLine(i, o))
  const at = Date.now() - i * 60_000
  return JSON.stringify({ ...t, trace_id: `b-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) + "\n"
}

const setup = (lines: string, overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const home = tempHome()
  fs.writeFileSync(path.join(home, "traces", "trace-x.jsonl"), lines)
  const mock = mockLlm([], () => answer({ score: 0.5, reason: "meh" }))
  const layer = fullLayer(home, mock.layer, overrides)
  const tune = () =>
    Effect.runPromise(
      Effect.gen(function* () {
        yield* (yield* TraceSource).ingest()
        return yield* (yield* BehaviorTuner).tune()
      }).pipe(Effect.provide(layer))
    )
  const run = <A, E>(effect: Effect.Effect<A, E, never>) => Effect.runPromise(effect)
  const approveNow = (behavior: Behavior) =>
    run(approve(behavior).pipe(Effect.provide(layer)) as Effect.Effect<unknown, unknown, never>)
  return { home, tune, approveNow, file: path.join(home, "behavior.json"), reports: path.join(home, "reports") }
}

describe("behavior.json under DotClaw's rules", () => {
  it("reads like DotClaw: clamps to [0,1], non-numbers are 0.5, unknown style is balanced, defaults when absent", () => {
    expect(
      readAsDotClaw({
        tool_calling_bias: 3,
        memory_importance_threshold: -1,
        response_style: "shouty",
        caution_bias: "high"
      })
    ).toEqual({
      tool_calling_bias: 1,
      memory_importance_threshold: 0,
      response_style: "balanced",
      caution_bias: 0.5
    })
    expect(readAsDotClaw({})).toEqual({
      tool_calling_bias: 0.5,
      memory_importance_threshold: 0.55,
      response_style: "balanced",
      caution_bias: 0.5
    })
  })

  it("derives small, explained steps from the metrics", () => {
    const base = readAsDotClaw({})
    const changes = deriveChanges(
      {
        traces: 100,
        errorRate: 0.2,
        latencyMs: 1000,
        responseChars: 2000,
        toolCallsPerTurn: 2,
        toolFailureRate: 0.4,
        memoryFactsPerTurn: 3,
        evalScore: 0.5
      },
      base
    )
    expect(changes.map((c) => [c.knob, c.to])).toEqual([
      ["tool_calling_bias", 0.45],
      ["caution_bias", 0.55],
      ["memory_importance_threshold", 0.6],
      ["response_style", "concise"]
    ])
    expect(changes.every((c) => c.why.length > 10)).toBe(true)
    expect(
      deriveChanges(
        {
          traces: 100,
          errorRate: 0.05,
          latencyMs: 1000,
          responseChars: 500,
          toolCallsPerTurn: 1,
          toolFailureRate: 0.1,
          memoryFactsPerTurn: 1,
          evalScore: 0.9
        },
        base
      )
    ).toEqual([])
  })

  it("writes behavior.json atomically in DotClaw's format, round-trips it, and writes the daily report", async () => {
    let lines = ""
    for (let i = 0; i < 40; i++) lines += recent(i, { toolFailure: i % 4 !== 0, error: i % 5 === 0 })
    const t = setup(lines)
    fs.writeFileSync(
      t.file,
      JSON.stringify({
        tool_calling_bias: 0.7,
        memory_importance_threshold: 0.55,
        response_style: "detailed",
        caution_bias: 0.5,
        last_updated: "2026-01-01T00:00:00Z"
      })
    )
    const result = await t.tune()
    expect(result.changed).toBe(true)
    const written = JSON.parse(fs.readFileSync(t.file, "utf8"))
    expect(written).toMatchObject({ tool_calling_bias: 0.65, caution_bias: 0.55, response_style: "detailed" })
    expect(Date.parse(written.last_updated)).toBeGreaterThan(Date.now() - 60_000)
    // DotClaw reads back exactly what was written.
    const { last_updated: _l, notes: _n, ...knobs } = written
    expect(readAsDotClaw(written)).toEqual(knobs)
    const report = JSON.parse(
      fs.readFileSync(path.join(t.reports, `behavior-${new Date().toISOString().slice(0, 10)}.json`), "utf8")
    )
    expect(report.metrics.traces).toBe(40)
    expect(report.metrics.toolFailureRate).toBeCloseTo(0.375, 3)
    expect(report.changes.length).toBeGreaterThan(0)
  })

  it("changes nothing below AUTOTUNE_BEHAVIOR_MIN_TRACES and says so", async () => {
    const t = setup(recent(1) + recent(2), { behaviorMinTraces: 10 })
    const result = await t.tune()
    expect(result.changed).toBe(false)
    expect(result.why).toContain("AUTOTUNE_BEHAVIOR_MIN_TRACES")
    expect(fs.existsSync(t.file)).toBe(false)
  })

  it("proposes response and tool packs as canaries at AUTOTUNE_BEHAVIOR_CANARY_PERCENT, never over a running canary", async () => {
    let lines = ""
    for (let i = 0; i < 30; i++) lines += recent(i, { toolFailure: true })
    const t = setup(lines, {
      behaviorPromptPacks: true,
      behaviorCanaryPercent: 20,
      behaviorEvalModel: "anthropic/claude-haiku-4-5",
      behaviorEvalSamples: 3
    })
    fs.mkdirSync(path.join(t.home, "prompts"))
    const existing = { name: "x", version: "keep-me", behavior: "response-quality", instructions: "Mine." }
    fs.writeFileSync(path.join(t.home, "prompts", "response-quality.canary.json"), JSON.stringify(existing))
    const result = await t.tune()
    expect("packs" in result && result.packs).toMatchObject({
      "tool-calling": expect.stringContaining("out as canary")
    })
    const canary = JSON.parse(fs.readFileSync(path.join(t.home, "prompts", "tool-calling.canary.json"), "utf8"))
    expect(canary.metadata.canaryPercent).toBe(20)
    expect(dotclawAccepts(path.join(t.home, "prompts", "tool-calling.canary.json"))).toBe(true)
    expect(dotclawAccepts(path.join(t.home, "prompts", "tool-calling.json"))).toBe(true)
    expect(
      JSON.parse(fs.readFileSync(path.join(t.home, "prompts", "response-quality.canary.json"), "utf8")).version
    ).toBe("keep-me")
  })

  it("under AUTOTUNE_DEPLOY_APPROVAL=manual its packs wait for a person too, then ship at their share", async () => {
    let lines = ""
    for (let i = 0; i < 30; i++) lines += recent(i, { toolFailure: true })
    const t = setup(lines, { behaviorPromptPacks: true, behaviorCanaryPercent: 20, deployApproval: "manual" })
    const result = await t.tune()
    expect("packs" in result && result.packs).toMatchObject({
      "tool-calling": expect.stringContaining("waits for `autotune approve tool-calling`")
    })
    const canaryFile = path.join(t.home, "prompts", "tool-calling.canary.json")
    expect(fs.existsSync(canaryFile)).toBe(false)
    await t.approveNow("tool-calling")
    expect(dotclawAccepts(canaryFile)).toBe(true)
    expect(JSON.parse(fs.readFileSync(canaryFile, "utf8")).metadata.canaryPercent).toBe(20)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, TestClock } from "effect"
import * as path from "node:path"
import { settingsFrom, type ConfigKey } from "../src/Config.js"
import { makeDbLayer } from "../src/store/Db.js"
import type { LlmRequest } from "../src/Domain/Llm.js"
import { Llm } from "../src/llm/Llm.js"
import { LlmRunner, parsePrices } from "../src/llm/LlmRunner.js"
import { tempHome } from "./helpers/app.js"
import { answer, fail, mockLlm, type Step } from "./helpers/mockLlm.js"

const request: LlmRequest = { stage: "judge:test:1", model: "anthropic/claude-haiku-4-5", system: "s", messages: [{ role: "user", content: "u" }], maxTokens: 100, temperature: 0 }

const runnerWith = (script: Array<Step>, overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const home = tempHome()
  const mock = mockLlm(script)
  const settings = settingsFrom({ dbPath: path.join(home, "a.db"), llmMinRetryDelayMs: 1000, llmMaxRetryDelayMs: 8000, llmRetries: 3, llmTimeoutMs: 30_000, ...overrides }, home)
  const layer = LlmRunner.Default.pipe(Layer.provide(mock.layer), Layer.provide(makeDbLayer(path.join(home, "a.db"))), Layer.provide(settings))
  return { layer, seen: mock.seen }
}

describe("LlmRunner policy", () => {
  it.effect("retries 429, 5xx and 529 with backoff, then succeeds and records one call", () => {
    const { layer, seen } = runnerWith([fail("RateLimited", { status: 429 }), fail("ServerError", { status: 500 }), fail("Overloaded", { status: 529 }), answer({ ok: 1 })])
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const fiber = yield* Effect.fork(runner.call(request))
      yield* TestClock.adjust("1 minute")
      const response = yield* Fiber.join(fiber)
      assert.deepStrictEqual(response.structured, { ok: 1 })
      assert.strictEqual(seen.length, 4)
      const usage = (yield* runner.usage)["judge:test:1"]!
      assert.strictEqual(usage.calls, 1)
      // haiku: 100 in at $1/MTok + 20 out at $5/MTok
      assert.closeTo(usage.costUsd, (100 * 1 + 20 * 5) / 1e6, 1e-12)
    }).pipe(Effect.provide(layer))
  })

  it.effect("does not retry a 400", () => {
    const { layer, seen } = runnerWith([fail("BadRequest", { status: 400 }), answer({})])
    return Effect.gen(function* () {
      const error = yield* Effect.flip((yield* LlmRunner).call(request))
      assert.strictEqual(error.reason, "BadRequest")
      assert.strictEqual(seen.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("gives up after the configured retries", () => {
    const { layer, seen } = runnerWith(Array.from({ length: 10 }, () => fail("Overloaded", { status: 529 })), { llmRetries: 2 })
    return Effect.gen(function* () {
      const fiber = yield* Effect.fork(Effect.flip((yield* LlmRunner).call(request)))
      yield* TestClock.adjust("5 minutes")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason, "Overloaded")
      assert.strictEqual(seen.length, 3)
    }).pipe(Effect.provide(layer))
  })

  it.effect("waits as long as retry-after says, not less", () => {
    const { layer, seen } = runnerWith([fail("RateLimited", { status: 429, retryAfterMs: 20_000 }), answer({ ok: 2 })])
    return Effect.gen(function* () {
      const fiber = yield* Effect.fork((yield* LlmRunner).call(request))
      yield* TestClock.adjust("19 seconds")
      assert.strictEqual(seen.length, 1)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual(seen.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("times out a slow call and retries it", () => {
    const { layer, seen } = runnerWith([{ delay: "10 minutes", then: answer({ slow: true }) }, answer({ fast: true })], { llmTimeoutMs: 5000 })
    return Effect.gen(function* () {
      const fiber = yield* Effect.fork((yield* LlmRunner).call(request))
      yield* TestClock.adjust("6 seconds")
      yield* TestClock.adjust("10 seconds")
      const response = yield* Fiber.join(fiber)
      assert.deepStrictEqual(response.structured, { fast: true })
      assert.strictEqual(seen.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("starts no call once the budget is spent", () => {
    const { layer, seen } = runnerWith([], { maxCostUsd: 0.0002 })
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      yield* runner.call(request) // $0.0002
      const error = yield* Effect.flip(runner.call(request))
      assert.strictEqual(error.reason, "BudgetExhausted")
      assert.strictEqual(seen.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("keeps at most AUTOTUNE_LLM_CONCURRENCY calls in flight", () => {
    let inFlight = 0
    let peak = 0
    const home = tempHome()
    const slow = Layer.succeed(Llm, {
      provider: "anthropic",
      complete: () =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            inFlight++
            peak = Math.max(peak, inFlight)
          }),
          () => Effect.as(Effect.sleep("1 second"), answer({})),
          () => Effect.sync(() => void inFlight--)
        )
    })
    const layer = LlmRunner.Default.pipe(Layer.provide(slow), Layer.provide(makeDbLayer(path.join(home, "a.db"))), Layer.provide(settingsFrom({ llmConcurrency: 3 }, home)))
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 10 }), () => runner.call(request), { concurrency: "unbounded" }))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual(peak, 3)
    }).pipe(Effect.provide(layer))
  })

  it("parses price overrides over the defaults", () => {
    const prices = parsePrices("openai/gpt-5=1.25:10, claude-haiku-4-5=2:8")
    assert.deepStrictEqual(prices["gpt-5"], [1.25, 10])
    assert.deepStrictEqual(prices["claude-haiku-4-5"], [2, 8])
    assert.deepStrictEqual(prices["claude-sonnet-4-5"], [3, 15])
  })
})

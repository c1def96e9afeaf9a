import { assert, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Fiber, Layer, TestClock } from "effect"
import * as path from "node:path"
import { settingsFrom } from "../src/config/Config.js"
import { type ConfigKey } from "../src/config/Table.js"
import { makeDbLayer } from "../src/store/Db.js"
import { LlmError, type LlmRequest } from "../src/Domain/Llm.js"
import { Llm } from "../src/llm/Llm.js"
import { LlmRunner, parsePrices } from "../src/llm/LlmRunner.js"
import { tempHome } from "./helpers/app.js"
import { answer, fail, mockLlm, type Step } from "./helpers/mockLlm.js"

const request: LlmRequest = {
  stage: "judge:test:1",
  model: "anthropic/claude-haiku-4-5",
  system: "s",
  messages: [{ role: "user", content: "u" }],
  maxTokens: 100,
  temperature: 0
}

const runnerWith = (script: Array<Step>, overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const home = tempHome()
  const mock = mockLlm(script)
  const settings = settingsFrom(
    {
      dbPath: path.join(home, "a.db"),
      llmMinRetryDelayMs: 1000,
      llmMaxRetryDelayMs: 8000,
      llmRetries: 3,
      llmTimeoutMs: 30_000,
      ...overrides
    },
    home
  )
  const layer = LlmRunner.Default.pipe(
    Layer.provide(mock.layer),
    Layer.provide(makeDbLayer(path.join(home, "a.db"))),
    Layer.provide(settings)
  )
  return { layer, seen: mock.seen }
}

describe("LlmRunner policy", () => {
  it.effect("retries 429, 5xx and 529 with backoff, then succeeds and records one call", () => {
    const { layer, seen } = runnerWith([
      fail("RateLimited", { status: 429 }),
      fail("ServerError", { status: 500 }),
      fail("Overloaded", { status: 529 }),
      answer({ ok: 1 })
    ])
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
      assert.closeTo(usage.costUsd!, (100 * 1 + 20 * 5) / 1e6, 1e-12)
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
    const { layer, seen } = runnerWith(
      Array.from({ length: 10 }, () => fail("Overloaded", { status: 529 })),
      { llmRetries: 2 }
    )
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
    const { layer, seen } = runnerWith(
      [{ delay: "10 minutes", then: answer({ slow: true }) }, answer({ fast: true })],
      { llmTimeoutMs: 5000 }
    )
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
    const layer = LlmRunner.Default.pipe(
      Layer.provide(slow),
      Layer.provide(makeDbLayer(path.join(home, "a.db"))),
      Layer.provide(settingsFrom({ llmConcurrency: 3 }, home))
    )
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const fiber = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 10 }), () => runner.call(request), { concurrency: "unbounded" })
      )
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
    // The JSON forms, from the file (`llm.prices`) or the environment.
    const json = parsePrices('{"openrouter/qwen-3": [0.2, 0.6], "local-llama": {"input": 0, "output": 0}}')
    assert.deepStrictEqual(json["qwen-3"], [0.2, 0.6])
    assert.deepStrictEqual(json["local-llama"], [0, 0])
    assert.deepStrictEqual(parsePrices({ "m-1": [1, 2] })["m-1"], [1, 2])
    assert.throws(() => parsePrices('{"m": [1]}'), /must be \[inUsdPerMTok, outUsdPerMTok\]/)
  })

  it.effect("a rejected key stops every later call without a request and names the variable", () => {
    const { layer, seen } = runnerWith([fail("Auth", { status: 401 })], {})
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const results = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.flip(runner.call(request)), {
        concurrency: "unbounded"
      })
      // The first call goes alone; the other 19 never reach the provider.
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(results.filter((e) => e.reason === "Halted").length, 19)
      const halt = yield* runner.halt
      assert.strictEqual(halt?.kind, "config")
      assert.match(halt!.detail, /rejected the API key .*check ANTHROPIC_API_KEY/)
      const stopped = yield* Effect.flip(runner.ensureRunning)
      assert.strictEqual(stopped._tag, "LlmStopped")
    }).pipe(Effect.provide(layer))
  })

  it.effect("an unknown model (404) names every variable that holds it", () => {
    const { layer } = runnerWith([fail("NotFound", { status: 404 })], {
      judgeStage1Model: "anthropic/claude-nope",
      predictorModel: "anthropic/claude-nope"
    })
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      yield* Effect.flip(runner.call({ ...request, model: "anthropic/claude-nope" }))
      const halt = yield* runner.halt
      assert.match(
        halt!.detail,
        /does not know the model "anthropic\/claude-nope".*check AUTOTUNE_JUDGE_STAGE1_MODEL \/ AUTOTUNE_PREDICTOR_MODEL/
      )
    }).pipe(Effect.provide(layer))
  })

  it.effect("a 400 about one input (too long) does not stop the run", () => {
    const long = new LlmError({
      reason: "BadRequest",
      status: 400,
      detail: "prompt is too long: 250000 tokens > 200000 maximum"
    })
    const { layer, seen } = runnerWith([long, answer({ ok: 1 })])
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      yield* Effect.flip(runner.call(request))
      assert.isUndefined(yield* runner.halt)
      yield* runner.call(request)
      assert.strictEqual(seen.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("the circuit breaker opens after AUTOTUNE_LLM_BREAKER_THRESHOLD failed attempts in a row", () => {
    const { layer, seen } = runnerWith(
      Array.from({ length: 100 }, () => fail("ServerError", { status: 502 })),
      { llmRetries: 3, llmBreakerThreshold: 6 }
    )
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const fiber = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 50 }), () => Effect.flip(runner.call(request)), {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust("10 minutes")
      yield* Fiber.join(fiber)
      // Call 1: 4 attempts; call 2: 2 more, then open. Nothing after that reaches the provider.
      assert.strictEqual(seen.length, 6)
      const halt = yield* runner.halt
      assert.strictEqual(halt?.kind, "provider")
      assert.match(halt!.detail, /is failing: 6 attempts in a row failed, the last with HTTP 502/)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a success closes the count: scattered failures never open the breaker", () => {
    const script: Array<Step> = []
    for (let i = 0; i < 10; i++) script.push(fail("Overloaded", { status: 529 }), answer({ ok: i }))
    const { layer } = runnerWith(script, { llmBreakerThreshold: 2 })
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 10 }), () => runner.call(request)))
      yield* TestClock.adjust("10 minutes")
      yield* Fiber.join(fiber)
      assert.isUndefined(yield* runner.halt)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a model without a price has an unknown cost, never $0", () => {
    const { layer } = runnerWith([answer({ ok: 1 })])
    return Effect.gen(function* () {
      const runner = yield* LlmRunner
      yield* runner.call({ ...request, model: "meta/llama-9" })
      assert.isNull((yield* runner.usage)["judge:test:1"]!.costUsd)
    }).pipe(Effect.provide(layer))
  })

  it("the daily budget counts what earlier runs spent in the last 24 hours, and nothing older", async () => {
    const home = tempHome()
    const dbPath = path.join(home, "a.db")
    const make = () => {
      const mock = mockLlm([answer({}), answer({}), answer({})])
      const settings = settingsFrom({ dbPath, dailyBudgetUsd: 1.0003 }, home)
      return {
        layer: LlmRunner.Default.pipe(
          Layer.provide(mock.layer),
          Layer.provide(makeDbLayer(dbPath)),
          Layer.provide(settings)
        ),
        seen: mock.seen
      }
    }
    // An earlier run: one call ($0.0002), then $1 spent an hour ago and $100 two days ago.
    await Effect.runPromise(Effect.flatMap(LlmRunner, (r) => r.call(request)).pipe(Effect.provide(make().layer)))
    const db = new Database(dbPath)
    const insert = db.prepare(
      "INSERT INTO llm_calls (run_id, stage, provider, model, cost_usd, latency_ms, outcome, created_at) VALUES ('r', 'judge:x', 'mock', 'm', ?, 1, 'ok', ?)"
    )
    insert.run(1, Date.now() - 3_600_000)
    insert.run(100, Date.now() - 2 * 86_400_000)
    db.close()

    const { layer, seen } = make()
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const runner = yield* LlmRunner
        yield* runner.call(request)
        const error = yield* Effect.flip(runner.call(request))
        return { error, budget: yield* runner.budget }
      }).pipe(Effect.provide(layer))
    )
    expect(seen).toHaveLength(1)
    expect(result.error.reason).toBe("BudgetExhausted")
    expect(result.error.detail).toMatch(/in the last 24 hours of AUTOTUNE_DAILY_BUDGET_USD=\$1\.0003/)
    expect(result.budget.exhausted).toBe(true)
    expect(result.budget.spentLast24hUsd).toBeCloseTo(1.0004, 6)
  })
})

import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceLine, traceFileName } from "./helpers/traces.js"

const SECRETS = [
  "sk-ant-api03-TRACESECRETabcdefghijklmnop",
  "ana.secret@example.com",
  "+351 912 345 678",
  "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
]

const writeTraces = (home: string) => {
  let body = ""
  for (let i = 0; i < 6; i++) {
    const text =
      i === 0
        ? `my key is ${SECRETS[0]} and mail ${SECRETS[1]}, call ${SECRETS[2]}, token ${SECRETS[3]}`
        : `question ${i} SCORE=0.${i + 2}`
    body += traceLine(i, { text })
  }
  body += traceLine(10, { error: true })
  fs.writeFileSync(path.join(home, "traces", traceFileName()), body)
}

const fastRetries = {
  AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS: "5",
  AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS: "20",
  AUTOTUNE_BEHAVIORS: "response-quality,tool-calling",
  AUTOTUNE_JUDGE_AUDIT_SHARE: "0"
}

let fake: FakeProvider | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

describe("eval end to end (built CLI, fake provider on 127.0.0.1)", () => {
  it("Anthropic SDK: retries 429/500/529 and a garbage body, stores scores, sends no secret, is idempotent", async () => {
    fake = await startFakeProvider()
    const home = tempHome()
    writeTraces(home)
    // The first call goes alone (it tells whether key and model work), so it meets all four faults: 4 retries.
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      ...fastRetries,
      AUTOTUNE_OPENROUTER_RETRIES: "4"
    }
    expect((await runCli(["ingest"], env)).code).toBe(0)
    fake.faults.push(
      { status: 429, headers: { "retry-after": "0" } },
      { status: 500 },
      { status: 529 },
      { garbage: true }
    )
    const first = await runCli(["eval", "--json"], env)

    expect(first.stderr).not.toMatch(/error/i)
    expect(first.code).toBe(0)
    const summary = jsonOut(first) as {
      behaviors: Record<string, { scored: number; unscored: number; mean: number; stage2: number }>
      calls: number
      costUsd: number
    }
    // 6 answered traces per behavior; the errored turn has no reply to judge.
    expect(summary.behaviors["response-quality"]).toMatchObject({ scored: 6, unscored: 0 })
    expect(summary.behaviors["tool-calling"]).toMatchObject({ scored: 6, unscored: 0 })
    // Scores 0.3..0.7 from the markers fall in the unsure band [0.35, 0.65] and go to stage 2.
    expect(summary.behaviors["response-quality"]!.stage2).toBe(3)
    expect(summary.calls).toBe(18)
    expect(summary.costUsd).toBeGreaterThan(0)
    // 18 logical calls, 4 of them retried once each.
    expect(fake.requests).toHaveLength(22)
    expect(fake.requests.every((r) => r.api === "anthropic" && r.path === "/v1/messages")).toBe(true)
    expect(new Set(fake.requests.map((r) => r.model))).toEqual(new Set(["claude-haiku-4-5", "claude-sonnet-5-5"]))
    // SDK 1.x sends the key as a bearer token (older ones used x-api-key).
    const auth = fake.requests[0]!.headers
    expect([auth["x-api-key"], auth["authorization"]]).toContain(
      auth["x-api-key"] !== undefined ? "sk-ant-test-key-0123456789" : "Bearer sk-ant-test-key-0123456789"
    )
    expect(fake.requests[0]!.body["tool_choice"]).toEqual({ type: "tool", name: "record_score" })
    // Claude Sonnet 5.5 refuses forced tool use: stage 2 asks for a JSON Schema output format instead.
    const stage2 = fake.requests.filter((r) => r.model === "claude-sonnet-5-5")
    expect(stage2.length).toBe(6)
    expect(
      stage2.every(
        (r) =>
          r.body["tools"] === undefined &&
          (r.body["output_config"] as { format?: { type?: string } } | undefined)?.format?.type === "json_schema"
      )
    ).toBe(true)
    const sent = JSON.stringify(fake.requests.map((r) => r.body))
    for (const secret of SECRETS) expect(sent).not.toContain(secret)

    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const scores = db
      .prepare(
        "SELECT behavior, COUNT(*) AS n, MIN(score) AS lo, MAX(score) AS hi FROM trace_scores GROUP BY behavior ORDER BY behavior"
      )
      .all()
    const calls = db
      .prepare("SELECT outcome, COUNT(*) AS n, SUM(attempts) AS attempts FROM llm_calls GROUP BY outcome")
      .all()
    db.close()
    expect(scores).toEqual([
      { behavior: "response-quality", n: 6, lo: 0.3, hi: 0.8 },
      { behavior: "tool-calling", n: 6, lo: 0.3, hi: 0.8 }
    ])
    expect(calls).toEqual([{ outcome: "ok", n: 18, attempts: 22 }])

    const before = fake.requests.length
    const second = jsonOut(await runCli(["eval", "--json"], env)) as { calls: number }
    expect(second.calls).toBe(0)
    expect(fake.requests.length).toBe(before)
    // In words: why each turn was judged, and that the rest is left unjudged on purpose.
    const text = await runCli(["eval"], env)
    expect(text.stdout).toContain("CANARY/PAIRS/TREND")
    expect(text.stdout).toContain("the rest stays unjudged")
  })

  it("OpenRouter over chat completions: a forced function call, lenient JSON parsing, unparseable answers unscored (never 0) and counted, a 400 stops the stage", async () => {
    fake = await startFakeProvider((r) =>
      r.user.includes("SCORE=0.3")
        ? { text: "I think it is pretty good!" }
        : { text: '```json\n{"score": 0.9, "reason": "fine"}\n```' }
    )
    const home = tempHome()
    writeTraces(home)
    const env = {
      AUTOTUNE_HOME: home,
      OPENROUTER_API_KEY: "sk-or-v1-test",
      OPENROUTER_BASE_URL: `${fake.url}/api/v1`,
      ...fastRetries,
      AUTOTUNE_BEHAVIORS: "response-quality"
    }
    expect((await runCli(["ingest"], env)).code).toBe(0)
    const result = await runCli(["eval", "--json"], env)
    expect(result.code).toBe(0)
    const summary = jsonOut(result) as {
      behaviors: Record<string, { scored: number; unscored: number; mean: number }>
      unparseable: Record<string, { structured: number; unparsed: number }>
    }
    expect(summary.behaviors["response-quality"]).toMatchObject({ scored: 5, unscored: 1, mean: 0.9 })
    // The judge asks once more for an unreadable answer: 2 of the stage-1 model's answers were unusable.
    expect(summary.unparseable["anthropic/claude-haiku-4-5"]).toMatchObject({ unparsed: 2 })
    const judgeRequest = fake.requests[0]!.body
    expect(judgeRequest["tool_choice"]).toEqual({ type: "function", function: { name: "record_score" } })
    expect(JSON.stringify(judgeRequest["messages"])).not.toMatch(/record_score tool/)
    expect(
      fake.requests.every(
        (r) => r.path === "/api/v1/chat/completions" && r.headers["authorization"] === "Bearer sk-or-v1-test"
      )
    ).toBe(true)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const unscored = db
      .prepare("SELECT status, score, reason FROM judge_scores WHERE status = 'unscored'")
      .all() as Array<{ score: number | null; reason: string }>
    db.close()
    expect(unscored).toHaveLength(1)
    expect(unscored[0]!.score).toBeNull()
    expect(unscored[0]!.reason).toContain("no structured answer")

    // A 400 about our settings fails at once (no retry), stops the stage with the variable to change, and
    // the trace stays eligible for the next run.
    fs.appendFileSync(path.join(home, "traces", traceFileName()), traceLine(50, { text: "new SCORE=0.9" }))
    await runCli(["ingest"], env)
    const seen = fake.requests.length
    fake.faults.push({ status: 400, body: '{"error":{"message":"bad model"}}' })
    const failed = await runCli(["eval", "--json"], env)
    expect(failed.code).toBe(2)
    expect(failed.stderr).toContain("check AUTOTUNE_JUDGE_STAGE1_MODEL")
    expect(fake.requests.length).toBe(seen + 1)
  })

  it("an explicit deprecated model keeps working: one warning per run naming the variable, no SDK warning per call", async () => {
    fake = await startFakeProvider()
    const home = tempHome()
    writeTraces(home)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      ...fastRetries,
      AUTOTUNE_JUDGE_STAGE2_MODEL: "anthropic/claude-sonnet-4-5"
    }
    await runCli(["ingest"], env)
    const result = await runCli(["eval", "--json"], env)
    expect(result.code).toBe(0)
    expect(fake.requests.filter((r) => r.model === "claude-sonnet-4-5").length).toBeGreaterThanOrEqual(3)
    expect(result.stderr.split("\n").filter((l) => /deprecated/.test(l))).toHaveLength(1)
    expect(result.stderr).toContain("set AUTOTUNE_JUDGE_STAGE2_MODEL")
    expect(result.stderr).not.toContain("Please migrate")
  })

  it("a model that refuses forced tool use gets a JSON Schema format, once, and its unknown price is reported as unknown", async () => {
    fake = await startFakeProvider()
    const home = tempHome()
    writeTraces(home)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      ...fastRetries,
      AUTOTUNE_BEHAVIORS: "response-quality",
      AUTOTUNE_JUDGE_STAGE1_MODEL: "anthropic/claude-opus-4-8",
      AUTOTUNE_JUDGE_UNSURE_LOW: "0",
      AUTOTUNE_JUDGE_UNSURE_HIGH: "0.01"
    }
    await runCli(["ingest"], env)
    fake.faults.push({
      status: 400,
      body: JSON.stringify({
        type: "error",
        error: {
          type: "invalid_request_error",
          message: "tool_choice: forced tool use is not supported for this model"
        }
      })
    })
    const result = await runCli(["eval", "--json"], env)
    expect(result.code).toBe(0)
    const summary = jsonOut(result) as { behaviors: Record<string, { scored: number }>; costUsd: number | null }
    expect(summary.behaviors["response-quality"]!.scored).toBe(6)
    expect(summary.costUsd).toBeNull()
    expect(result.stderr).toContain("no price for model anthropic/claude-opus-4-8")
    // The refused request, its retry with a JSON Schema format, then every later call in that mode.
    expect(fake.requests[0]!.body["tool_choice"]).toBeDefined()
    expect(
      fake.requests.slice(1).every((r) => r.body["tool_choice"] === undefined && r.body["output_config"] !== undefined)
    ).toBe(true)
    expect(fake.requests).toHaveLength(7)
  })

  it("stops starting calls once AUTOTUNE_MAX_COST_USD is spent and finishes cleanly", async () => {
    fake = await startFakeProvider()
    const home = tempHome()
    writeTraces(home)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      ...fastRetries,
      AUTOTUNE_MAX_COST_USD: "0.0000001",
      AUTOTUNE_LLM_CONCURRENCY: "1"
    }
    await runCli(["ingest"], env)
    const result = await runCli(["eval", "--json"], env)
    expect(result.code).toBe(0)
    const summary = jsonOut(result) as { calls: number; budgetExhausted: boolean }
    expect(summary.budgetExhausted).toBe(true)
    expect(summary.calls).toBe(1)
    expect(fake.requests).toHaveLength(1)
  })
})

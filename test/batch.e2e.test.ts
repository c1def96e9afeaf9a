import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceLine, traceFileName } from "./helpers/traces.js"

interface EvalJson {
  readonly behaviors: Record<
    string,
    { scored: number; unscored: number; failed: number; batched: number; trendTraces: number }
  >
  readonly calls: number
  readonly batches: {
    mode: string
    submitted: number
    collected: number
    pendingBatches: number
    startedDirect: number
    startedDirectCostUsd: number | null
  }
  readonly skippedForBudget: Record<string, number>
}

let fake: FakeProvider | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

const SECRET = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

/** Eight answered turns (one carrying a token the store was told not to redact) in a fresh home, ingested. */
const setup = async (extra: Record<string, string> = {}) => {
  fake = await startFakeProvider()
  const home = tempHome()
  let body = ""
  for (let i = 0; i < 8; i++)
    body += traceLine(i, { text: i === 0 ? `deploy with token ${SECRET} please` : `question ${i} SCORE=0.${i + 1}` })
  fs.writeFileSync(path.join(home, "traces", traceFileName()), body)
  const env = {
    AUTOTUNE_HOME: home,
    ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_BEHAVIORS: "response-quality",
    AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
    AUTOTUNE_REDACT: "0",
    AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS: "5",
    AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS: "20",
    ...extra
  }
  expect((await runCli(["ingest"], env)).code).toBe(0)
  const db = () => new Database(path.join(home, "autotune.db"), { readonly: true })
  const evalJson = async (args: ReadonlyArray<string> = []) => {
    const result = await runCli(["eval", "--json", ...args], env)
    expect(result.code, result.stderr).toBe(0)
    return jsonOut(result) as unknown as EvalJson
  }
  return { home, env, db, evalJson, fake }
}

const HTML_502 = {
  status: 502,
  body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
  headers: { "content-type": "text/html" }
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => /error/i.test(l))

const stage1Rows = (db: Database.Database) =>
  db
    .prepare("SELECT trace_id AS id, COUNT(*) AS n FROM judge_scores WHERE stage = 1 GROUP BY trace_id")
    .all() as Array<{ id: string; n: number }>

describe("the trend sample through Anthropic's Message Batches (built CLI, fake provider, real SDK)", () => {
  it("submits in one run, waits while the batch runs, collects in a later run at half price, never sends a turn twice", async () => {
    const t = await setup()
    t.fake.batchEndsAfterPolls = 1
    const first = await t.evalJson()
    expect(first.batches).toEqual({
      mode: "trend",
      submitted: 8,
      collected: 0,
      pendingBatches: 1,
      startedDirect: 0,
      startedDirectCostUsd: 0
    })
    expect(first.behaviors["response-quality"]).toMatchObject({ scored: 0, batched: 8 })
    expect(t.fake.batches).toHaveLength(1)
    expect(t.fake.batches[0]!.items).toHaveLength(8)
    // No direct call: the whole sample went in the batch.
    expect(t.fake.requests.filter((r) => r.path === "/v1/messages")).toHaveLength(0)
    // The egress guard ran on every batched request: the token the store kept (AUTOTUNE_REDACT=0) never left.
    expect(JSON.stringify(t.fake.requests.map((r) => r.body))).not.toContain(SECRET)

    // status says what is out and what it holds against the budget.
    const status = jsonOut(await runCli(["status", "--json"], t.env)) as {
      batches: { pending: number; requests: number; reservedUsd: number }
    }
    expect(status.batches).toMatchObject({ pending: 1, requests: 8 })
    expect(status.batches.reservedUsd).toBeGreaterThan(0)
    expect((await runCli(["status"], t.env)).stdout).toMatch(
      /judge batches: 1 pending \(8 request\(s\), up to \$[\d.]+ held against the budget/
    )

    // Still running at the next run: nothing collected, nothing sent again.
    const second = await t.evalJson()
    expect(second.batches).toEqual({
      mode: "trend",
      submitted: 0,
      collected: 0,
      pendingBatches: 1,
      startedDirect: 0,
      startedDirectCostUsd: 0
    })
    expect(t.fake.batches).toHaveLength(1)

    const third = await t.evalJson()
    expect(third.batches).toMatchObject({ submitted: 0, collected: 8, pendingBatches: 0 })
    // Markers 0.2..0.8: the unsure ones go to stage 2 at once, as with a direct answer.
    expect(third.behaviors["response-quality"]).toMatchObject({ scored: 8, unscored: 0 })
    const db = t.db()
    expect(stage1Rows(db)).toHaveLength(8)
    expect(stage1Rows(db).every((r) => r.n === 1)).toBe(true)
    expect(db.prepare("SELECT COUNT(*) AS n FROM trace_scores").get()).toEqual({ n: 8 })
    // Each answer is on record as a call at half of claude-haiku-4-5's $1/$5 per million tokens.
    const calls = db
      .prepare(
        "SELECT tokens_in AS i, tokens_out AS o, cost_usd AS usd FROM llm_calls WHERE stage LIKE 'judge:response-quality:1:%' AND outcome = 'ok'"
      )
      .all() as Array<{ i: number; o: number; usd: number }>
    expect(calls).toHaveLength(8)
    for (const c of calls) expect(c.usd).toBeCloseTo((0.5 * (c.i * 1 + c.o * 5)) / 1e6, 12)
    expect(db.prepare("SELECT status, requests, succeeded, errored, expired FROM llm_batches").all()).toEqual([
      { status: "collected", requests: 8, succeeded: 8, errored: 0, expired: 0 }
    ])
    expect(db.prepare("SELECT COUNT(*) AS n FROM judge_batch_items").get()).toEqual({ n: 0 })
    db.close()
    // Nothing left to judge.
    const fourth = await t.evalJson()
    expect(fourth.batches).toMatchObject({ submitted: 0, collected: 0, pendingBatches: 0 })
    expect(t.fake.batches).toHaveLength(1)
  })

  it("a request that failed or expired in the batch is sent again; the rest is kept", async () => {
    const t = await setup()
    t.fake.batchFate = (customId) => (customId === "j1" ? "errored" : customId === "j2" ? "expired" : "succeeded")
    await t.evalJson()
    const second = await t.evalJson()
    // 6 answers collected; the 2 freed turns go out again in a new batch.
    expect(second.batches).toMatchObject({ collected: 6, submitted: 2, pendingBatches: 1 })
    expect(t.fake.batches).toHaveLength(2)
    expect(t.fake.batches[1]!.items).toHaveLength(2)
    const db = t.db()
    expect(
      db.prepare("SELECT status, succeeded, errored, expired FROM llm_batches ORDER BY submitted_at").all()
    ).toEqual([
      { status: "collected", succeeded: 6, errored: 1, expired: 1 },
      { status: "pending", succeeded: null, errored: null, expired: null }
    ])
    db.close()
    t.fake.batchFate = () => "succeeded"
    const third = await t.evalJson()
    expect(third.batches).toMatchObject({ collected: 2, submitted: 0, pendingBatches: 0 })
    const after = t.db()
    expect(stage1Rows(after)).toHaveLength(8)
    expect(stage1Rows(after).every((r) => r.n === 1)).toBe(true)
    after.close()
  })

  it("a batch that expired whole frees every turn for the next batch", async () => {
    const t = await setup()
    t.fake.batchFate = () => "expired"
    await t.evalJson()
    const second = await t.evalJson()
    expect(second.batches).toMatchObject({ collected: 0, submitted: 8, pendingBatches: 1 })
    t.fake.batchFate = () => "succeeded"
    const third = await t.evalJson()
    expect(third.batches).toMatchObject({ collected: 8, pendingBatches: 0 })
  })

  it("--wait-batches waits for the batch to end and collects it in the same run", async () => {
    const t = await setup({ AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "0.05" })
    t.fake.batchEndsAfterPolls = 3
    const summary = await t.evalJson(["--wait-batches"])
    expect(summary.batches).toMatchObject({ submitted: 8, collected: 8, pendingBatches: 0 })
    expect(summary.behaviors["response-quality"]!.scored).toBe(8)
  })

  it("stage 2 of the collected answers goes direct at AUTOTUNE_LLM_CONCURRENCY, not one at a time", async () => {
    const t = await setup({ AUTOTUNE_LLM_CONCURRENCY: "4" })
    // Every turn unsure (0.5 is inside the default band [0.35, 0.65]): eight stage-2 calls after the collection.
    t.fake.respond = () => ({ tool: { score: 0.5, reason: "scripted" } })
    expect((await t.evalJson()).batches.submitted).toBe(8)
    t.fake.latencyMs = 300
    const summary = await t.evalJson()
    expect(summary.batches.collected).toBe(8)
    expect(t.fake.requests.filter((r) => r.path === "/v1/messages")).toHaveLength(8)
    expect(t.fake.maxInFlight).toBe(4)
  })

  it("a provider without Message Batches (a proxy answering 404) gets the sample as direct calls, with a warning", async () => {
    const t = await setup()
    t.fake.batchesMissing = true
    const result = await runCli(["eval", "--json"], t.env)
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/no Message Batches.*AUTOTUNE_JUDGE_BATCH=off/)
    const summary = jsonOut(result) as unknown as EvalJson
    expect(summary.behaviors["response-quality"]!.scored).toBe(8)
    expect(summary.batches.submitted).toBe(0)
  })

  it("a batch takes only what the daily budget can pay at its most; the rest waits and is counted as skipped", async () => {
    // The most a request may cost is about $0.0017 here (512 output tokens at half price): room for 2.
    const t = await setup({ AUTOTUNE_DAILY_BUDGET_USD: "0.004" })
    const summary = await t.evalJson()
    expect(summary.batches.submitted).toBe(2)
    expect(summary.skippedForBudget["response-quality"]).toBe(6)
    expect(t.fake.batches[0]!.items).toHaveLength(2)
  })

  it("a wrong key stops at the batch submission: one request, one line, exit 2 (a setting to fix)", async () => {
    const t = await setup()
    t.fake.faults.push({
      status: 401,
      body: JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } })
    })
    const result = await runCli(["eval"], t.env)
    expect(result.code).toBe(2)
    // One error line (the egress guard's warning about the planted token is the only other line).
    expect(result.stderr.split("\n").filter((l) => /error/i.test(l))).toHaveLength(1)
    expect(result.stderr).not.toMatch(/could not submit/)
    expect(result.stderr).toMatch(/rejected the API key.*ANTHROPIC_API_KEY/)
    expect(t.fake.httpCalls).toBe(1)
    expect(t.fake.batches).toHaveLength(0)
  })

  it("a key that stops working while a batch is out: one error line, the batch kept for the next run", async () => {
    const t = await setup()
    t.fake.batchEndsAfterPolls = 5
    expect((await t.evalJson()).batches.submitted).toBe(8)
    t.fake.faults.push({
      status: 401,
      body: JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } })
    })
    const result = await runCli(["eval"], t.env)
    expect(result.code).toBe(2)
    expect(result.stderr.split("\n").filter((l) => l.trim() !== "")).toHaveLength(1)
    expect(result.stderr).toMatch(/rejected the API key/)
    // The key works again: the batch is still there to collect.
    t.fake.batchEndsAfterPolls = 0
    expect((await t.evalJson()).batches).toMatchObject({ collected: 8, pendingBatches: 0 })
  })

  it("a provider failing the submission (502 pages): its retries, then the breaker's one line, exit 1; the turns wait for the next run", async () => {
    const t = await setup()
    for (let i = 0; i < 4; i++) t.fake.faults.push(HTML_502)
    const result = await runCli(["eval"], t.env)
    expect(result.code).toBe(1)
    // The first try and AUTOTUNE_OPENROUTER_RETRIES (3) more; then nothing else is sent.
    expect(t.fake.httpCalls).toBe(4)
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(
        /anthropic is failing: 4 attempts in a row failed, the last with HTTP 502: .*502 Bad Gateway.*this run's LLM stages stopped/
      )
    ])
    expect(result.stderr).not.toMatch(/could not submit/)
    // The provider recovers: the next run sends them.
    expect((await t.evalJson()).batches.submitted).toBe(8)
  })

  it("once: a failing batch submission ends the run like failing direct calls (one line, exit 1, optimize not run)", async () => {
    const t = await setup()
    for (let i = 0; i < 4; i++) t.fake.faults.push(HTML_502)
    const result = await runCli(["once", "--json"], t.env)
    expect(result.code).toBe(1)
    const run = jsonOut(result) as {
      failed: Array<string>
      errors: Array<string>
      stages: Record<string, { status: string; why?: string }>
    }
    expect(run.failed).toEqual(["eval"])
    expect(run.errors).toEqual([
      expect.stringMatching(/^eval: anthropic is failing: 4 attempts in a row failed, the last with HTTP 502/)
    ])
    expect(run.stages["optimize"]).toMatchObject({
      status: "skipped",
      why: expect.stringMatching(/^not run: anthropic is failing/)
    })
    expect(errorLines(result.stderr)).toHaveLength(1)
    expect(t.fake.httpCalls).toBe(4)
  })

  it("a failing status poll of a batch out ends the run the same way; the batch is kept and collected when the provider recovers", async () => {
    const t = await setup()
    t.fake.batchEndsAfterPolls = 5
    expect((await t.evalJson()).batches.submitted).toBe(8)
    t.fake.faultWhen = (method, url) => method === "GET" && /\/batches\/[^/]+$/.test(url.split("?")[0]!)
    for (let i = 0; i < 4; i++) t.fake.faults.push(HTML_502)
    const calls = t.fake.httpCalls
    const result = await runCli(["eval"], t.env)
    expect(result.code).toBe(1)
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(/anthropic is failing: 4 attempts in a row failed, the last with HTTP 502/)
    ])
    // Four looks at the batch, nothing else: no direct call, no new batch.
    expect(t.fake.httpCalls - calls).toBe(4)
    expect(t.fake.batches).toHaveLength(1)
    t.fake.batchEndsAfterPolls = 0
    expect((await t.evalJson()).batches).toMatchObject({ collected: 8, pendingBatches: 0 })
  })

  it("a failing download of an ended batch's answers ends the run the same way; the answers are collected next run, none lost", async () => {
    const t = await setup()
    // The batch has ended by the next run's first look; its answers are what fails.
    expect((await t.evalJson()).batches.submitted).toBe(8)
    t.fake.faultWhen = (_method, url) => /\/results/.test(url)
    for (let i = 0; i < 4; i++) t.fake.faults.push(HTML_502)
    const result = await runCli(["eval"], t.env)
    expect(result.code).toBe(1)
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(/anthropic is failing: 4 attempts in a row failed, the last with HTTP 502/)
    ])
    expect(t.fake.faults).toHaveLength(0)
    expect((await t.evalJson()).batches).toMatchObject({ collected: 8, pendingBatches: 0 })
    const db = t.db()
    expect(stage1Rows(db).every((r) => r.n === 1)).toBe(true)
    expect(stage1Rows(db)).toHaveLength(8)
    db.close()
  })

  it("batches sent before AUTOTUNE_JUDGE_BATCH=off are still collected; nothing new is batched", async () => {
    const t = await setup()
    expect((await t.evalJson()).batches.submitted).toBe(8)
    const result = await runCli(["eval", "--json"], { ...t.env, AUTOTUNE_JUDGE_BATCH: "off" })
    const summary = jsonOut(result) as unknown as EvalJson
    expect(summary.batches).toEqual({
      mode: "off",
      submitted: 0,
      collected: 8,
      pendingBatches: 0,
      startedDirect: 0,
      startedDirectCostUsd: 0
    })
    expect(summary.behaviors["response-quality"]!.scored).toBe(8)
    // The submission is on record as a call that went through, not as a failure.
    const db = t.db()
    expect(db.prepare("SELECT calls, failed FROM llm_daily WHERE stage = 'judge:batch'").all()).toEqual([
      { calls: 1, failed: 0 }
    ])
    db.close()
  })
})

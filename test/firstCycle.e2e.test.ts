/**
 * A new install with a backlog (DotClaw keeps 14 days of traces) sees its first result in its first cycle:
 * with the defaults the trend sample goes to a Message Batch, whose answers come a cycle later; what the
 * optimizer still lacks is judged at once instead, and `once` says what that cost and when the rest arrives.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { daysAgo, traceObject } from "./helpers/traces.js"
import { BEHAVIORS } from "../src/Domain/Behavior.js"

const B = "response-quality"
const HOUR = 3_600_000

let fake: FakeProvider
beforeAll(async () => {
  // Turns the judge scores 0.4; candidates that say BETTER make replies it scores 0.9.
  fake = await startFakeProvider(
    improvableWorld([
      { instructions: "Lead with the answer, then one line of detail. BETTER." },
      { instructions: "Be thorough." }
    ])
  )
})
afterAll(async () => {
  await fake.close()
})

/** Three days of a personal agent's turns, 50 a day, in DotClaw's daily files. */
const threeDays = (home: string) => {
  const now = Date.now()
  for (let d = 2; d >= 0; d--) {
    let body = ""
    for (let i = 0; i < 50; i++) {
      const at = now - d * 24 * HOUR - (i + 1) * 15 * 60_000
      const t = traceObject(d * 100 + i, { text: `question ${d * 100 + i} SCORE=0.4`, packVersions: {} })
      body +=
        JSON.stringify({ ...t, trace_id: `trace-${d}-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) +
        "\n"
    }
    fs.appendFileSync(path.join(home, "traces", `trace-${daysAgo(d)}.jsonl`), body)
  }
}

interface OnceJson {
  readonly failed: ReadonlyArray<string>
  readonly stages: {
    readonly eval: {
      readonly summary: {
        readonly batches: {
          submitted: number
          startedDirect: number
          startedDirectCostUsd: number | null
          pendingBatches: number
        }
        readonly behaviors: Record<string, { scored: number }>
      }
    }
    readonly optimize: { readonly summary: { readonly behaviors: Record<string, { outcome: string; why?: string }> } }
    readonly deploy: { readonly summary: { readonly deployed: Record<string, { version: string }> } }
  }
}

describe("the first cycle of a new install (built CLI, defaults, trend sample in Message Batches)", () => {
  it("judges at once what the optimizer lacks, batches the rest, and ships a canary in one `once`", async () => {
    const home = tempHome()
    threeDays(home)
    const env = { AUTOTUNE_HOME: home, ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789", ANTHROPIC_BASE_URL: fake.url }
    const result = await runCli(["once", "--json"], env)
    expect(result.code, result.stderr).toBe(0)
    const run = jsonOut(result) as unknown as OnceJson
    expect(run.failed).toEqual([])
    const batches = run.stages.eval.summary.batches
    // The optimizer needs 35 scored turns at the defaults (20 held out, 10 to compare, 5 to learn from): 35 and
    // a tenth more for answers that could come back unscored, judged at once for each of the six behaviors;
    // the rest of the sample batched.
    expect(batches.startedDirect).toBe(39 * BEHAVIORS.length)
    expect(batches.startedDirectCostUsd).toBeGreaterThan(0)
    expect(batches.submitted).toBeGreaterThan(0)
    expect(batches.pendingBatches).toBe(1)
    for (const behavior of BEHAVIORS)
      expect(run.stages.optimize.summary.behaviors[behavior]!.outcome, behavior).toBe("selected")
    const canary = run.stages.deploy.summary.deployed[B]!.version
    const file = path.join(home, "prompts", `${B}.canary.json`)
    expect(JSON.parse(fs.readFileSync(file, "utf8")).version).toBe(canary)
    expect(dotclawAccepts(file)).toBe(true)
  })

  it("says in its text what starting cost and when the rest arrives", async () => {
    const home = tempHome()
    threeDays(home)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_BEHAVIORS: B
    }
    const text = await runCli(["once"], env)
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(
      /^started: 39 trend turn\(s\) judged at once, at full price \(\$\d+\.\d{4}\), so that the optimizer has the turns it needs this cycle$/m
    )
    expect(text.stdout).toMatch(
      /^batches: \d+ trend turn\(s\) sent at half price, 0 answer\(s\) collected, 1 batch\(es\) still out; their scores arrive with the first cycle after the batch ends .*autotune eval --wait-batches/m
    )
    // The cycle selected and deployed a pack itself: it tells no one to run `autotune deploy`.
    expect(text.stdout).toMatch(new RegExp(`^optimize ${B}: selected `, "m"))
    expect(text.stdout).toMatch(new RegExp(`^deploy ${B}: .* out as canary`, "m"))
    expect(text.stdout).not.toContain("autotune deploy")
  })

  it("a backlog too small to start the optimizer this cycle all goes to the batch, at half price", async () => {
    const home = tempHome()
    let body = ""
    for (let i = 0; i < 20; i++)
      body +=
        JSON.stringify({
          ...traceObject(i, { text: `q ${i} SCORE=0.4` }),
          trace_id: `trace-small-${i}`,
          timestamp: new Date(Date.now() - (i + 1) * 60_000).toISOString()
        }) + "\n"
    fs.writeFileSync(path.join(home, "traces", `trace-${daysAgo(0)}.jsonl`), body)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_BEHAVIORS: B
    }
    const run = jsonOut(await runCli(["once", "--json"], env)) as unknown as OnceJson
    expect(run.stages.eval.summary.batches).toMatchObject({ startedDirect: 0, submitted: 20 })
    expect(run.stages.optimize.summary.behaviors[B]!.outcome).toBe("skipped")
  })
})

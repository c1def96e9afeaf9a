import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

/** Turns of the last hours, each costing the agent `cost` (undefined: DotClaw wrote no cost). */
const writeTurns = (home: string, count: number, cost: number | undefined) => {
  const now = Date.now()
  let body = ""
  for (let i = 0; i < count; i++) {
    const at = now - (i + 1) * 60_000
    const { cost_total_usd: _, ...t } = traceObject(i, { text: `question ${i} SCORE=0.${(i % 8) + 1}` })
    body +=
      JSON.stringify({
        ...t,
        ...(cost === undefined ? {} : { cost_total_usd: cost }),
        trace_id: `trace-cost-${i}`,
        timestamp: new Date(at).toISOString(),
        created_at: at
      }) + "\n"
  }
  fs.writeFileSync(path.join(home, "traces", "trace-cost.jsonl"), body)
}

interface Cost {
  readonly days: number
  readonly autotuneUsd: number
  readonly agentUsd: number | null
  readonly share: number | null
  readonly why: string | null
}

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider()
})
afterAll(async () => {
  await fake.close()
})

describe("what autotune costs beside the agent (built CLI)", () => {
  const envOf = (home: string) => ({
    AUTOTUNE_HOME: home,
    ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_BEHAVIORS: "response-quality",
    AUTOTUNE_JUDGE_BATCH: "off"
  })

  it("status shows autotune's spend beside the agent's own over 24 h, 7 and 30 days, and the share", async () => {
    const home = tempHome()
    writeTurns(home, 12, 0.02)
    expect((await runCli(["ingest"], envOf(home))).code).toBe(0)
    expect((await runCli(["eval"], envOf(home))).code).toBe(0)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const spent = (db.prepare("SELECT SUM(cost_usd) AS usd FROM llm_calls").get() as { usd: number }).usd
    db.close()
    expect(spent).toBeGreaterThan(0)
    const status = jsonOut(await runCli(["status", "--json"], envOf(home))) as { cost: ReadonlyArray<Cost> }
    expect(status.cost.map((c) => c.days)).toEqual([1, 7, 30])
    for (const c of status.cost) expect(c.autotuneUsd).toBeCloseTo(spent, 12)
    for (const c of status.cost.filter((c) => c.days <= 7)) {
      expect(c.agentUsd).toBeCloseTo(12 * 0.02, 12)
      expect(c.share).toBeCloseTo(spent / (12 * 0.02), 12)
    }
    // The store keeps 14 days of turns (AUTOTUNE_RETENTION_DAYS): over 30 the agent's spend is not known.
    expect(status.cost.find((c) => c.days === 30)).toMatchObject({
      agentUsd: null,
      share: null,
      why: "the store keeps the agent's turns for 14 days (AUTOTUNE_RETENTION_DAYS)"
    })
    const text = (await runCli(["status"], envOf(home))).stdout
    expect(text).toMatch(/autotune beside the agent: \$[\d.]+ vs the agent's \$0\.24 over 7 days: [\d.]+%; \$/)
  })

  it("says there is no share, and why, when the agent's traces carry no cost", async () => {
    const home = tempHome()
    writeTurns(home, 5, undefined)
    expect((await runCli(["ingest"], envOf(home))).code).toBe(0)
    const status = jsonOut(await runCli(["status", "--json"], envOf(home))) as { cost: ReadonlyArray<Cost> }
    for (const c of status.cost) expect(c).toMatchObject({ agentUsd: null, share: null })
    expect((await runCli(["status"], envOf(home))).stdout).toContain(
      "over 7 days (no share: the agent's traces carry no cost (cost_total_usd)"
    )
  })
})

/**
 * Alignment through the built CLI against the fake provider on 127.0.0.1 (through the real SDK), in the world
 * of test/helpers/alignWorld.ts, under the operator's gate: `once` adopts an amended rubric that waits,
 * `status` says so, `rubric approve` makes it the judge's, and `optimize --dry-run` plans the next attempt.
 */
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { alignResponder, alignWorld, B, CRITERION } from "./helpers/alignWorld.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { type Cluster, startPostgres } from "./helpers/postgres.js"

let fake: FakeProvider
let cluster: Cluster
beforeAll(async () => {
  const respond = alignResponder({ judgeKnows: false, noticing: true })
  fake = await startFakeProvider((r) => respond(r.system, r.user, r.toolName))
  cluster = await startPostgres()
}, 120_000)
afterAll(async () => {
  await fake.close()
  cluster?.stop()
})

/** The world's DotClaw home, every turn judged at once, the fake provider. */
const envFor = (home: string) => ({
  AUTOTUNE_HOME: home,
  AUTOTUNE_TRACE_DIR: path.join(home, "traces"),
  AUTOTUNE_OUTPUT_DIR: path.join(home, "prompts"),
  AUTOTUNE_FEEDBACK_DB: path.join(home, "messages.db"),
  AUTOTUNE_BEHAVIORS: B,
  AUTOTUNE_JUDGE_BATCH: "off",
  AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
  AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
  AUTOTUNE_REPORT: "0",
  ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789",
  ANTHROPIC_BASE_URL: fake.url
})

describe("alignment (built CLI)", () => {
  it("once adopts a rubric that waits for approval; status, rubric approve and optimize --dry-run follow it", async () => {
    const w = alignWorld({ people: "criterion" })
    const env = {
      ...envFor(w.home),
      AUTOTUNE_DB_PATH: path.join(w.home, "autotune.db"),
      AUTOTUNE_DEPLOY_APPROVAL: "manual"
    }
    const before = await runCli(["optimize", "--dry-run"], env)
    expect(before.code).toBe(0)
    expect(before.stdout).toMatch(
      /align response-quality: would not try: 0 reacted turns on the alignment split; needs 30/
    )

    const once = await runCli(["once", "--json"], env, { timeoutMs: 120_000 })
    expect(once.code, once.stderr).toBe(0)
    const align = (
      jsonOut(once) as {
        stages: {
          align: {
            status: string
            summary: {
              behaviors: Record<
                string,
                {
                  status: string
                  adopted: string
                  pending: boolean
                  test: { current: number; candidate: number; lower: number }
                }
              >
            }
          }
        }
      }
    ).stages.align
    expect(align.status).toBe("ok")
    const o = align.summary.behaviors[B]!
    expect(o).toMatchObject({ status: "tried", pending: true })
    expect(o.test.lower).toBeGreaterThan(0)
    expect(o.test.candidate).toBeGreaterThanOrEqual(0.8)
    // The proposal went through the real SDK to the fake provider, its turns fenced as data.
    expect(fake.requests.some((r) => r.toolName === "propose_rubrics" && /<<<TURNS [a-z]{16}>>>/.test(r.user))).toBe(
      true
    )

    const status = await runCli(["status"], env)
    expect(status.stdout).toContain(`${o.adopted} waits for \`autotune rubric approve ${B}\``)
    const approve = await runCli(["rubric", "approve", B], env)
    expect(approve.code).toBe(0)
    expect(approve.stdout).toContain(`the judge uses ${o.adopted} from the next run`)
    const shown = jsonOut(await runCli(["rubric", "show", B, "--json"], env)) as {
      rubrics: Array<{ current: string; versions: Array<{ version: string; status: string; criteria: string }> }>
    }
    expect(shown.rubrics[0]!.current).toBe(o.adopted)
    expect(shown.rubrics[0]!.versions.find((v) => v.version === o.adopted)).toMatchObject({
      status: "active",
      criteria: expect.stringContaining(CRITERION)
    })
    const again = await runCli(["rubric", "approve", B], env)
    expect(again.code).toBe(2)
    expect(again.stderr.trim().split("\n")).toHaveLength(1)
    expect(again.stderr).toContain(`no rubric of ${B} waits for approval`)

    // The new rubric has not judged the turns yet: the next once does; the plan says there is nothing to try.
    const after = await runCli(["optimize", "--dry-run"], env)
    expect(after.stdout).toMatch(/align response-quality: would not try: /)
  }, 240_000)

  it("on a fleet's PostgreSQL store: the attempt, its record and the new rubric are the fleet's", async () => {
    const w = alignWorld({ people: "criterion", seed: 5 })
    const url = await cluster.database("align")
    const env = { ...envFor(w.home), AUTOTUNE_DATABASE_URL: url, AUTOTUNE_HOST_ID: "host-a" }
    const once = await runCli(["once", "--json"], env, { timeoutMs: 120_000 })
    expect(once.code, once.stderr).toBe(0)
    const o = (
      jsonOut(once) as {
        stages: { align: { summary: { behaviors: Record<string, { adopted: string | null; pending: boolean }> } } }
      }
    ).stages.align.summary.behaviors[B]!
    expect(o.adopted).not.toBeNull()
    expect(o.pending).toBe(false)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const attempts = (await client.query("SELECT outcome, tested, alpha, candidate_version FROM align_attempts")).rows
      expect(attempts).toEqual([
        { outcome: "adopted", tested: 1, alpha: expect.closeTo(0.0304, 4), candidate_version: o.adopted }
      ])
      const rubrics = (await client.query("SELECT version, status FROM rubrics")).rows
      expect(rubrics).toEqual([{ version: o.adopted, status: "active" }])
      // Who reacted is kept: alignment bounds each person's weight by it.
      const users = (await client.query("SELECT COUNT(DISTINCT user_id)::int AS n FROM feedback")).rows[0] as {
        n: number
      }
      expect(users.n).toBe(8)
    } finally {
      await client.end()
    }
    const shown = jsonOut(await runCli(["rubric", "show", B, "--json"], env)) as { rubrics: Array<{ current: string }> }
    expect(shown.rubrics[0]!.current).toBe(o.adopted)
  }, 240_000)
})

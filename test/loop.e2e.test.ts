import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { launchChromium, openReport } from "./helpers/browser.js"
import { shortVersion } from "../src/report/Format.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"

// The optimizer's world: candidates that say BETTER make replies the judge likes.
const world = improvableWorld([
  { instructions: "Lead with the answer. BETTER." },
  { instructions: "Be verbose and thorough." }
])

const writeTurns = (
  home: string,
  name: string,
  from: number,
  count: number,
  opts: { version?: string; score: number; error?: boolean; startMs: number }
) => {
  let body = ""
  for (let i = 0; i < count; i++) {
    const at = opts.startMs + i * 20_000
    const t = traceObject(from + i, {
      text: `turn ${from + i} SCORE=${opts.score}`,
      error: opts.error ?? false,
      packVersions: opts.version === undefined ? {} : { [B]: opts.version }
    })
    body +=
      JSON.stringify({ ...t, trace_id: `${name}-${from + i}`, timestamp: new Date(at).toISOString(), created_at: at }) +
      "\n"
  }
  fs.appendFileSync(path.join(home, "traces", `trace-${name}.jsonl`), body)
}

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider(world)
})
afterAll(async () => {
  await fake.close()
})

describe("the whole loop through the built CLI", () => {
  it("traces in -> canary out beside an active pack -> promoted on better traces -> an erroring canary rolled back -> an equal one keeps waiting", async () => {
    const home = tempHome()
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: B,
      AUTOTUNE_SAMPLE_SIZE: "10",
      AUTOTUNE_EVAL_MAX_TRACES: "1000",
      AUTOTUNE_JUDGE_UNSURE_HIGH: "0.5",
      AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
      AUTOTUNE_LLM_CONCURRENCY: "16"
    }
    writeTurns(home, "history", 0, 30, { score: 0.4, startMs: Date.now() - 3 * 3_600_000 })

    // 1. once: ingest, eval, optimize, deploy -> a canary with the baseline as active beside it.
    const first = await runCli(["once", "--json"], env)
    expect(first.code).toBe(0)
    const run1 = jsonOut(first) as {
      stages: {
        optimize: { summary: { behaviors: Record<string, { outcome: string }> } }
        deploy: { summary: { deployed: Record<string, { version: string; as: string }> } }
      }
    }
    expect(run1.stages.optimize.summary.behaviors[B]!.outcome).toBe("selected")
    const canaryVersion = run1.stages.deploy.summary.deployed[B]!.version
    const prompts = path.join(home, "prompts")
    expect(dotclawAccepts(path.join(prompts, `${B}.json`))).toBe(true)
    expect(dotclawAccepts(path.join(prompts, `${B}.canary.json`))).toBe(true)
    const activeVersion = JSON.parse(fs.readFileSync(path.join(prompts, `${B}.json`), "utf8")).version as string

    // 2. DotClaw serves both; the canary's turns score better -> promoted.
    const now = Date.now()
    writeTurns(home, "canary", 100, 40, { version: canaryVersion, score: 0.9, startMs: now + 1000 })
    writeTurns(home, "active", 200, 360, { version: activeVersion, score: 0.6, startMs: now + 500 })
    const second = jsonOut(await runCli(["once", "--json"], env)) as {
      stages: { deploy: { summary: { decisions: Record<string, { action: string }> } } }
    }
    expect(second.stages.deploy.summary.decisions[B]!.action).toBe("promoted")
    expect(JSON.parse(fs.readFileSync(path.join(prompts, `${B}.json`), "utf8")).version).toBe(canaryVersion)
    expect(fs.existsSync(path.join(prompts, `${B}.canary.json`))).toBe(false)

    // 3. A canary that errors -> rolled back by the health gate.
    const bad = {
      name: "hand",
      version: "hand-1",
      behavior: B,
      instructions: "Something risky.",
      metadata: { canaryPercent: 10 }
    }
    fs.writeFileSync(path.join(prompts, `${B}.canary.json`), JSON.stringify(bad))
    fs.utimesSync(path.join(prompts, `${B}.canary.json`), new Date(now), new Date(now))
    writeTurns(home, "bad", 1000, 30, { version: "hand-1", score: 0.9, error: true, startMs: now + 2000 })
    writeTurns(home, "active2", 2000, 270, { version: canaryVersion, score: 0.6, startMs: now + 1500 })
    const third = await runCli(["once", "--json"], env)
    expect(third.code).toBe(0)
    const run3 = jsonOut(third) as {
      stages: { deploy: { summary: { decisions: Record<string, { action: string; rule: string }> } } }
    }
    expect(run3.stages.deploy.summary.decisions[B]!.action).toBe("rolled_back")
    expect(run3.stages.deploy.summary.decisions[B]!.rule).toMatch(/^error/)
    expect(fs.existsSync(path.join(prompts, `${B}.canary.json`))).toBe(false)

    // 4. A canary no better than the active pack: still waiting after many looks.
    fs.writeFileSync(
      path.join(prompts, `${B}.canary.json`),
      JSON.stringify({ ...bad, version: "hand-2", instructions: "Same quality." })
    )
    fs.utimesSync(path.join(prompts, `${B}.canary.json`), new Date(now), new Date(now))
    writeTurns(home, "same", 3000, 40, { version: "hand-2", score: 0.6, startMs: now + 3000 })
    await runCli(["once"], env)
    for (let look = 0; look < 5; look++) {
      const looked = jsonOut(await runCli(["deploy", "--json"], env)) as {
        decisions: Record<string, { action: string }>
      }
      expect(looked.decisions[B]!.action).toBe("waiting")
    }

    const status = jsonOut(await runCli(["status", "--json"], env)) as {
      behaviors: Array<{
        behavior: string
        active: string
        canary: string
        samples: { canary: number }
        lastDecision: { action: string }
      }>
    }
    expect(status.behaviors[0]).toMatchObject({
      behavior: B,
      active: canaryVersion,
      canary: "hand-2",
      lastDecision: { action: "waiting" }
    })
    expect(status.behaviors[0]!.samples.canary).toBe(40)
    const packs = jsonOut(await runCli(["packs", B, "--json"], env)) as {
      history: Array<{ action: string; version: string; lineage: { ancestry?: Array<string>; round?: number } | null }>
    }
    expect(packs.history.map((h) => h.action)).toEqual(["rolled_back", "promoted", "canary", "baseline"])
    // The optimizer's pack carries its lineage, and `packs` shows it: the chain from the baseline, the round.
    const shipped = packs.history.find((h) => h.action === "canary")!
    expect(shipped.lineage).toMatchObject({ ancestry: ["built-in", expect.stringMatching(/^r1\.\d$/)], round: 1 })
    const packsText = (await runCli(["packs", B], env)).stdout
    expect(packsText).toContain("LINEAGE")
    expect(packsText).toMatch(new RegExp(`${shipped.version}.*built-in > r1\\.\\d, round 1`))
    const text = await runCli(["status"], env)
    expect(text.stdout).toContain("hand-2 (10%)")

    // Each score knows the pack version that served its turn: the report's trend per version reads it.
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const served = db
      .prepare(
        "SELECT pack_version AS version, COUNT(*) AS n FROM trace_scores WHERE turn_at IS NOT NULL GROUP BY 1 ORDER BY 1"
      )
      .all()
    db.close()
    // Every canary turn is judged (hand-2's 40); of the active turns, a sample (pairs and the trend).
    expect(served).toEqual(
      expect.arrayContaining([
        { version: "hand-2", n: 40 },
        { version: null, n: 30 }
      ])
    )
    const promotedRow = (served as Array<{ version: string | null; n: number }>).find(
      (r) => r.version === canaryVersion
    )!
    expect(promotedRow.n).toBeGreaterThan(40)
    expect(promotedRow.n).toBeLessThan(40 + 270)

    // 5. The report: `once` refreshed it; `report` writes it anywhere; a real browser draws every chart offline.
    expect(fs.statSync(path.join(home, "report.html")).mode & 0o777).toBe(0o600)
    const out = path.join(home, "out", "page.html")
    const written = jsonOut(await runCli(["report", "--json", "--out", out], env)) as {
      path: string
      bytes: number
      behaviors: Array<string>
    }
    expect(written).toMatchObject({ path: out, behaviors: [B] })
    expect(written.bytes).toBe(fs.statSync(out).size)
    const browser = await launchChromium()
    try {
      fs.mkdirSync("test/artifacts", { recursive: true })
      for (const view of [
        { width: 1366, dark: false, screenshot: "test/artifacts/report.png" },
        { width: 390, dark: true, screenshot: "test/artifacts/report-phone-dark.png" }
      ]) {
        const page = await openReport(browser, out, view)
        expect(page.consoleErrors).toEqual([])
        expect(page.external).toEqual([])
        expect(page.charts.map((c) => c.chart).sort()).toEqual(["canary", "judge", "optimizer", "scores", "spend"])
        for (const chart of page.charts) {
          expect(chart.svgs, chart.chart).toBeGreaterThan(0)
          expect(chart.marks, chart.chart).toBeGreaterThan(0)
        }
        // The key facts: versions (autotune's long ids as short labels), the live canary's state, the rollback
        // and promotion, the spend.
        for (const fact of [
          shortVersion(canaryVersion),
          "hand-2",
          "canary still running",
          "rolled_back",
          "promoted",
          "LLM spend:",
          "in the last 24 hours"
        ])
          expect(page.text).toContain(fact)
        // Glyphs a system may lack no font for are not used: reactions are words.
        expect(page.text).not.toMatch(/[\u{1F44D}\u{1F44E}]/u)
        // Every day axis ends with the day the page was generated.
        const generated = Date.parse(`${/Generated (\d{4}-\d\d-\d\d) /.exec(page.text)![1]}T00:00:00Z`)
        const dayAxes = page.charts.filter((c) => c.xDomain !== null)
        expect(dayAxes.map((c) => c.chart).sort()).toEqual(["judge", "scores", "spend"])
        for (const c of dayAxes) expect(Date.parse(c.xDomain!.split("/")[1]!), c.chart).toBe(generated + 86_400_000)
      }
      // The full id is in the page, in the title of its short label.
      expect(fs.readFileSync(out, "utf8")).toContain(`title="${canaryVersion}"`)
    } finally {
      await browser.close()
    }
  })
})

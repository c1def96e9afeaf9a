import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fileVersion, parseRubricFile } from "../src/judge/RubricBook.js"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, improvableWorld, markerScorer, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"
const MINE = "Is the reply short and does it answer with a concrete next step? Penalise replies with no next step."

describe("an operator's rubric file, checked", () => {
  it("a good file gives a version named for its text; each problem is one sentence naming the behavior", () => {
    const good = parseRubricFile(JSON.stringify({ [B]: { criteria: MINE } }))
    expect(good.problems).toEqual([])
    expect(good.rubrics[B]).toEqual({ title: "response quality", criteria: MINE })
    expect(fileVersion(B, MINE, "response quality")).toMatch(/^response-quality@file-[0-9a-f]{8}$/)
    expect(fileVersion(B, MINE, "response quality")).not.toBe(fileVersion(B, `${MINE} Be brief.`, "response quality"))
    expect(parseRubricFile("{nope").problems).toEqual([expect.stringMatching(/^not valid JSON/)])
    expect(parseRubricFile("[1]").problems).toEqual([expect.stringContaining("must be a JSON object")])
    const bad = parseRubricFile(
      JSON.stringify({
        tone: { criteria: MINE },
        "tool-calling": { criteria: "short", extra: 1 },
        "memory-recall": { criteria: "x".repeat(2500) },
        "memory-policy": { criteria: "Keep only durable facts; the admin password is Cobalt7716 so never store it." }
      })
    )
    expect(bad.problems).toEqual([
      expect.stringContaining('"tone" is not a behavior'),
      'tool-calling: unknown key "extra" (only "criteria" and "title")',
      `tool-calling: "criteria" must be the rubric's text (at least 20 characters)`,
      'memory-recall: "criteria" is 2500 characters; at most 2000',
      'memory-policy: "criteria" holds what looks like a secret or personal data; rubrics are sent to the judge'
    ])
    expect(bad.rubrics).toEqual({})
  })
})

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider(markerScorer)
})
afterAll(async () => {
  await fake.close()
})

describe("rubric versions as data, through the built CLI", () => {
  it("a file's rubric is what the judge reads, its scores stay apart from the built-in's, and rollback goes back without judging again", async () => {
    const home = tempHome()
    let body = ""
    const start = Date.now() - 3_600_000
    for (let i = 0; i < 12; i++) {
      const at = start + i * 60_000
      body +=
        JSON.stringify({
          ...traceObject(i, { text: `question ${i} SCORE=0.${(i % 9) + 1}` }),
          trace_id: `trace-rubric-${i}`,
          timestamp: new Date(at).toISOString(),
          created_at: at
        }) + "\n"
    }
    fs.writeFileSync(path.join(home, "traces", "trace-rubric.jsonl"), body)
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: B,
      AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
      AUTOTUNE_JUDGE_AUDIT_SHARE: "0"
    }
    const judged = () => fake.requests.filter((r) => r.toolName === "record_score")

    expect((await runCli(["ingest"], env)).code).toBe(0)
    expect((await runCli(["eval", "--json"], env)).code).toBe(0)
    const builtInCalls = judged().length
    expect(builtInCalls).toBeGreaterThanOrEqual(12)
    expect(judged().every((r) => !(r.system + r.user).includes(MINE))).toBe(true)

    // The operator's rubric: the same turns are judged again under it, and the judge reads its text.
    const file = path.join(home, "rubrics.json")
    fs.writeFileSync(file, JSON.stringify({ [B]: { criteria: MINE } }))
    const withFile = { ...env, AUTOTUNE_RUBRICS_PATH: file }
    const second = await runCli(["eval", "--json"], withFile)
    expect(second.code, second.stderr).toBe(0)
    const fileCalls = judged().slice(builtInCalls)
    expect(fileCalls.length).toBeGreaterThanOrEqual(12)
    expect(fileCalls.every((r) => (r.system + r.user).includes(MINE))).toBe(true)
    const version = fileVersion(B, MINE, "response quality")
    const db = () => new Database(path.join(home, "autotune.db"), { readonly: true })
    const byVersion = () => {
      const d = db()
      const rows = d.prepare("SELECT rubric_version AS v, COUNT(*) AS n FROM trace_scores GROUP BY 1 ORDER BY 1").all()
      d.close()
      return rows
    }
    expect(byVersion()).toEqual([
      { v: "response-quality@1", n: 12 },
      { v: version, n: 12 }
    ])
    const shown = jsonOut(await runCli(["rubric", "show", B, "--diff", "--json"], withFile)) as {
      rubrics: Array<{
        current: string
        versions: Array<{ version: string; status: string; source: string; diff?: unknown }>
      }>
    }
    expect(shown.rubrics[0]!.current).toBe(version)
    expect(shown.rubrics[0]!.versions.map((v) => [v.version, v.source, v.status])).toEqual([
      ["response-quality@1", "built-in", "retired"],
      [version, "file", "active"]
    ])
    expect(shown.rubrics[0]!.versions[1]!.diff).toBeDefined()

    // Rollback: the built-in rubric again; its scores are still there, so nothing is judged twice.
    const back = jsonOut(await runCli(["rubric", "rollback", B, "--json"], withFile))
    expect(back).toEqual({ behavior: B, from: version, to: "response-quality@1" })
    const before = judged().length
    expect((await runCli(["eval", "--json"], withFile)).code).toBe(0)
    expect(judged().length).toBe(before)
    const status = jsonOut(await runCli(["status", "--json"], withFile)) as { behaviors: Array<{ judged7d: number }> }
    expect(status.behaviors[0]!.judged7d).toBe(12)
    // Nothing earlier to go back to: one line, exit 2.
    const none = await runCli(["rubric", "rollback", B], withFile)
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("uses its built-in rubric")
  }, 120_000)

  it("a running canary is rescored on both arms under a new rubric: its samples are judged again, under the new version only", async () => {
    const canaryFake = await startFakeProvider(improvableWorld([{ instructions: "Lead with the answer. BETTER." }]))
    try {
      const home = tempHome()
      const write = (
        name: string,
        from: number,
        count: number,
        version: string | undefined,
        score: number,
        startMs: number
      ) => {
        let text = ""
        for (let i = 0; i < count; i++) {
          const at = startMs + i * 20_000
          const t = traceObject(from + i, {
            text: `turn ${from + i} SCORE=${score}`,
            packVersions: version === undefined ? {} : { [B]: version }
          })
          text +=
            JSON.stringify({
              ...t,
              trace_id: `trace-${name}-${from + i}`,
              timestamp: new Date(at).toISOString(),
              created_at: at
            }) + "\n"
        }
        fs.appendFileSync(path.join(home, "traces", `trace-${name}.jsonl`), text)
      }
      const env = {
        AUTOTUNE_HOME: home,
        ANTHROPIC_API_KEY: "k",
        ANTHROPIC_BASE_URL: canaryFake.url,
        AUTOTUNE_JUDGE_BATCH: "off",
        AUTOTUNE_BEHAVIORS: B,
        AUTOTUNE_SAMPLE_SIZE: "10",
        AUTOTUNE_EVAL_MAX_TRACES: "1000",
        AUTOTUNE_JUDGE_UNSURE_HIGH: "0.5",
        AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
        AUTOTUNE_CANARY_FRACTION: "0.1"
      }
      write("history", 0, 30, undefined, 0.4, Date.now() - 3 * 3_600_000)
      const first = jsonOut(await runCli(["once", "--json"], env)) as {
        stages: { deploy: { summary: { deployed: Record<string, { version: string }> } } }
      }
      const canary = first.stages.deploy.summary.deployed[B]!.version
      const active = (
        JSON.parse(fs.readFileSync(path.join(home, "prompts", `${B}.json`), "utf8")) as { version: string }
      ).version
      const now = Date.now()
      write("canary", 100, 10, canary, 0.9, now + 1000)
      write("active", 200, 90, active, 0.6, now + 500)
      expect((await runCli(["once"], env)).code).toBe(0)
      const samples = () =>
        runCli(["status", "--json"], withFile).then(
          (r) =>
            (jsonOut(r) as { behaviors: Array<{ canary: string; samples: { canary: number; active: number } }> })
              .behaviors[0]!
        )
      const file = path.join(home, "rubrics.json")
      const withFile = { ...env, AUTOTUNE_RUBRICS_PATH: file }
      const before = jsonOut(await runCli(["status", "--json"], env)) as {
        behaviors: Array<{ samples: { canary: number } }>
      }
      expect(before.behaviors[0]!.samples.canary).toBe(10)
      fs.writeFileSync(file, JSON.stringify({ [B]: { criteria: MINE } }))
      const after = await runCli(["once", "--json"], withFile)
      expect(after.code, after.stderr).toBe(0)
      // Still the same canary, its 10 turns judged again under the file's version; the evidence reads that version only.
      const now2 = await samples()
      expect(now2.canary).toBe(canary)
      expect(now2.samples.canary).toBe(10)
      const d = new Database(path.join(home, "autotune.db"), { readonly: true })
      const canaryScores = d
        .prepare(
          "SELECT rubric_version AS v, COUNT(*) AS n FROM trace_scores WHERE trace_id LIKE 'trace-canary-%' GROUP BY 1 ORDER BY 1"
        )
        .all()
      d.close()
      expect(canaryScores).toEqual([
        { v: "response-quality@1", n: 10 },
        { v: fileVersion(B, MINE, "response quality"), n: 10 }
      ])
    } finally {
      await canaryFake.close()
    }
  }, 180_000)

  it("a rubric file with problems: one line each, exit 2, nothing judged", async () => {
    const home = tempHome()
    const file = path.join(home, "rubrics.json")
    fs.writeFileSync(file, JSON.stringify({ tone: { criteria: MINE }, [B]: { criteria: "short" } }))
    const before = fake.requests.length
    const r = await runCli(["once"], {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_RUBRICS_PATH: file
    })
    expect(r.code).toBe(2)
    const lines = r.stderr
      .trim()
      .split("\n")
      .filter((l) => l.includes("rubrics.json"))
    // The log lines are JSON when stderr is not a terminal: one per problem.
    expect(lines.filter((l) => l.includes("tone") && l.includes("is not a behavior"))).toHaveLength(1)
    expect(lines.filter((l) => l.includes(`${B}:`) && l.includes("must be the rubric's text"))).toHaveLength(1)
    expect(r.stderr).toContain("autotune: error: invalid configuration: rubricsPath")
    expect(fake.requests.length).toBe(before)
  }, 60_000)
})

import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { jsonOut, runCli } from "./helpers/cli.js"
import { tempHome } from "./helpers/app.js"
import { traceLines, traceFileName } from "./helpers/traces.js"

describe("CLI (built)", () => {
  it("init --yes writes a 0600 config with the directories, and refuses to overwrite without --force", async () => {
    const home = tempHome()
    fs.rmSync(path.join(home, "traces"), { recursive: true })
    const env = { AUTOTUNE_HOME: home, ANTHROPIC_API_KEY: "sk-ant-api03-abcdefghijklmnopqrstuvwxyz" }
    const first = await runCli(["init", "--yes"], env)
    expect(first.code).toBe(0)
    const file = path.join(home, "autotune.json")
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    for (const dir of ["traces", "prompts", "reports"]) expect(fs.existsSync(path.join(home, dir))).toBe(true)
    const written = JSON.parse(fs.readFileSync(file, "utf8"))
    expect(written.deploy.canaryFraction).toBe(0.1)
    expect(first.stdout + first.stderr).not.toContain("abcdefghijklmnopqrstuvwxyz")
    const again = await runCli(["init", "--yes"], env)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("--force")
    const forced = await runCli(["init", "--yes", "--force", "--trace-dir", path.join(home, "t2")], env)
    expect(forced.code).toBe(0)
    expect(JSON.parse(fs.readFileSync(file, "utf8")).traceDir).toBe(path.join(home, "t2"))
  })

  it("init with no TTY and no --yes does not wait for input", async () => {
    const home = tempHome()
    const result = await runCli(["init"], { AUTOTUNE_HOME: home }, { timeoutMs: 20_000 })
    expect(result.code).toBe(0)
    expect(fs.existsSync(path.join(home, "autotune.json"))).toBe(true)
  })

  it("stops with exit code 2 and one line naming key and source on a bad value", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 3))
    const result = await runCli(["ingest"], { AUTOTUNE_HOME: home, AUTOTUNE_CANARY_FRACTION: "1.5" })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("AUTOTUNE_CANARY_FRACTION")
    expect(fs.existsSync(path.join(home, "autotune.db"))).toBe(false)
    const notJson = path.join(home, "bad.json")
    fs.writeFileSync(notJson, "{")
    const fileResult = await runCli(["ingest", "--config", notJson], { AUTOTUNE_HOME: home })
    expect(fileResult.code).toBe(2)
    expect(fileResult.stderr).toContain("not valid JSON")
  })

  it("ingest --json prints exactly one JSON object with the counts", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 5) + "garbage\n")
    const result = await runCli(["ingest", "--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    expect(jsonOut(result)).toMatchObject({ files: 1, lines: 6, ingested: 5, duplicates: 0, malformed: 1 })
  })

  it("config shows sources and masks secrets; --json too", async () => {
    const home = tempHome()
    const env = {
      AUTOTUNE_HOME: home,
      OPENROUTER_API_KEY: "sk-or-v1-supersecretvalue0123456789",
      AUTOTUNE_CANARY_MIN_SAMPLES: "40"
    }
    const text = await runCli(["config", "--trace-dir", "/x/traces"], env)
    expect(text.code).toBe(0)
    expect(text.stdout).not.toContain("supersecretvalue")
    expect(text.stdout).toMatch(/traceDir\s+\/x\/traces\s+flag/)
    const json = jsonOut(await runCli(["config", "--json"], env)) as {
      settings: Record<string, { value: unknown; source: string }>
    }
    expect(json.settings["canaryMinSamples"]).toMatchObject({ value: 40, source: "env" })
    expect(json.settings["canaryFraction"]).toMatchObject({ value: 0.1, source: "default" })
    expect(JSON.stringify(json)).not.toContain("supersecretvalue")
  })

  it("two ingests at the same time: no raw SQLITE_BUSY, nothing lost or doubled", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 20_000))
    const env = { AUTOTUNE_HOME: home }
    const [a, b] = await Promise.all([runCli(["ingest", "--json"], env), runCli(["ingest", "--json"], env)])
    for (const r of [a, b]) {
      expect(r.stderr).not.toMatch(/SQLITE_BUSY|database is locked/)
      expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" })
    }
    const x = jsonOut(a) as { ingested: number }
    const y = jsonOut(b) as { ingested: number }
    expect(x.ingested + y.ingested).toBe(20_000)
    const again = jsonOut(await runCli(["ingest", "--json"], env)) as { ingested: number; lines: number }
    expect(again).toMatchObject({ ingested: 0, lines: 0 })
    // The store both opened is in WAL mode with incremental auto-vacuum (set before its first page was written).
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    expect([db.pragma("journal_mode", { simple: true }), db.pragma("auto_vacuum", { simple: true })]).toEqual([
      "wal",
      2
    ])
    db.close()
  })

  it("optimize --dry-run prints the rounds, turns, bound of calls and cost, makes no call and needs no key", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 40))
    const env = { AUTOTUNE_HOME: home, AUTOTUNE_BEHAVIORS: "response-quality" }
    expect((await runCli(["ingest"], env)).code).toBe(0)
    const db = new Database(path.join(home, "autotune.db"))
    const insert = db.prepare(
      "INSERT INTO trace_scores (trace_id, behavior, rubric_version, score, stage1_score, reason, created_at) VALUES (?, 'response-quality', 'response-quality@1', 0.5, 0.5, 'ok', 0)"
    )
    for (const r of db.prepare("SELECT trace_id FROM traces").all() as Array<{ trace_id: string }>)
      insert.run(r.trace_id)
    db.close()
    const text = await runCli(["optimize", "--dry-run"], env)
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(
      "optimize response-quality: up to 4 round(s) of 6 candidates; 20 held-out turns, 10 validation turns, reflection draws on 10 others"
    )
    expect(text.stdout).toContain("at most 1200 calls (AUTOTUNE_OPTIMIZE_MAX_CALLS;")
    expect(text.stdout).toContain("dry run: no LLM call was made")
    const json = jsonOut(
      await runCli(["optimize", "--dry-run", "--json"], { ...env, AUTOTUNE_OPTIMIZE_ROUNDS: "2" })
    ) as {
      dryRun: boolean
      behaviors: Record<
        string,
        { rounds: number; upperBoundCalls: number; calls: Array<{ stage: string; calls: number }> }
      >
    }
    // 2 rounds: 30 + 2 x 286 + 400 = 1,002 logical calls at most, under the budget.
    expect(json.behaviors["response-quality"]).toMatchObject({ rounds: 2, upperBoundCalls: 1002 })
    expect(json.dryRun).toBe(true)
    const calls = new Database(path.join(home, "autotune.db"), { readonly: true })
    expect((calls.prepare("SELECT COUNT(*) AS n FROM llm_calls").get() as { n: number }).n).toBe(0)
    calls.close()
  })

  it("runs `once` when no command is given", async () => {
    const home = tempHome()
    const result = await runCli(["--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    expect(jsonOut(result)).toHaveProperty("stages.ingest.status", "ok")
  })
})

import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { jsonOut, runCli } from "./helpers/cli.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"

// Candidates given as objects and as bare strings: both are read.
const world = improvableWorld(["Lead with the answer. BETTER.", { instructions: "Be verbose." }])

// DotClaw's own schema (src/db.ts), written here independently of autotune's reader.
const FEEDBACK_SCHEMA = `CREATE TABLE user_feedback (
  id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, message_id TEXT, chat_jid TEXT,
  feedback_type TEXT NOT NULL, user_id TEXT, reason TEXT, created_at TEXT NOT NULL)`

/** A machine laid out like a current DotClaw install: ~/.dotclaw with runtime.json pointing elsewhere. */
const dotclawMachine = (runtime: unknown) => {
  const userHome = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-dotclaw-"))
  const dotclaw = path.join(userHome, ".dotclaw")
  const traces = path.join(userHome, "var", "dc-traces")
  const prompts = path.join(userHome, "var", "dc-prompts")
  for (const dir of [
    path.join(dotclaw, "config"),
    path.join(dotclaw, "data", "store"),
    path.join(dotclaw, "traces"),
    traces,
    prompts
  ])
    fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dotclaw, "config", "runtime.json"),
    typeof runtime === "string" ? runtime : JSON.stringify(runtime, null, 2)
  )
  const db = new Database(path.join(dotclaw, "data", "store", "messages.db"))
  db.pragma("journal_mode = WAL")
  db.exec(FEEDBACK_SCHEMA)
  db.close()
  return { userHome, dotclaw, traces, prompts, messagesDb: path.join(dotclaw, "data", "store", "messages.db") }
}

const writeTurns = (dir: string, from: number, count: number, score: number, startMs: number) => {
  let body = ""
  for (let i = 0; i < count; i++) {
    const at = startMs + i * 20_000
    const t = traceObject(from + i, { text: `turn ${from + i} SCORE=${score}`, packVersions: {} })
    body +=
      JSON.stringify({
        ...t,
        trace_id: `trace-${String(from + i).padStart(8, "0")}-4a1b-4c2d-8e3f-0123456789ab`,
        timestamp: new Date(at).toISOString(),
        created_at: at
      }) + "\n"
  }
  fs.appendFileSync(path.join(dir, `trace-${new Date(startMs).toISOString().slice(0, 10)}.jsonl`), body)
}

const traceId = (i: number) => `trace-${String(i).padStart(8, "0")}-4a1b-4c2d-8e3f-0123456789ab`

const react = (
  file: string,
  rows: ReadonlyArray<{ id: string; trace: string; type: "positive" | "negative"; at: string; reason?: string }>
) => {
  const db = new Database(file)
  const insert = db.prepare(
    "INSERT INTO user_feedback (id, trace_id, message_id, chat_jid, feedback_type, user_id, reason, created_at) VALUES (?, ?, 'm', 'tg:1', ?, 'u1', ?, ?)"
  )
  for (const r of rows) insert.run(r.id, r.trace, r.type, r.reason ?? null, r.at)
  db.close()
}

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider(world)
})
afterAll(async () => {
  await fake.close()
})

describe("a current DotClaw install, found with no AUTOTUNE_* paths", () => {
  it("ingests from runtime.json's trace dir, ships packs into its packs dir at canaryRate 0.2, imports every reaction once", async () => {
    const m = dotclawMachine({
      host: {
        trace: { dir: path.join("..", "var", "dc-traces"), retentionDays: 14 },
        promptPacksDir: path.join("..", "var", "dc-prompts")
      },
      agent: { promptPacks: { canaryRate: 0.2, maxChars: 4000 } }
    })
    const start = Date.now() - 3 * 3_600_000
    writeTurns(m.traces, 0, 30, 0.4, start)
    const now = new Date().toISOString()
    // Reactions for ten present turns, and one whose trace DotClaw has not written yet.
    react(m.messagesDb, [
      ...Array.from({ length: 10 }, (_, i) => ({
        id: `fb-${i}`,
        trace: traceId(i),
        type: (i < 5 ? "negative" : "positive") as "negative" | "positive",
        at: now,
        ...(i === 0 ? { reason: "wrong, my pin is 4242 and mail ana@example.com" } : {})
      })),
      { id: "fb-early", trace: traceId(500), type: "positive", at: now }
    ])
    const env = {
      HOME: m.userHome,
      ANTHROPIC_API_KEY: "sk-ant-test-0123456789",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: B,
      AUTOTUNE_SAMPLE_SIZE: "10",
      AUTOTUNE_JUDGE_AUDIT_SHARE: "0"
    }

    const config = jsonOut(await runCli(["config", "--json"], env)) as {
      dotclawHome: string
      settings: Record<string, { value: unknown; source: string; from: string }>
    }
    expect(config.dotclawHome).toBe(m.dotclaw)
    expect(config.settings["traceDir"]).toMatchObject({ value: m.traces, source: "dotclaw" })
    expect(config.settings["traceDir"]!.from).toContain("runtime.json: host.trace.dir")
    expect(config.settings["outputDir"]).toMatchObject({ value: m.prompts, source: "dotclaw" })
    expect(config.settings["canaryFraction"]).toMatchObject({ value: 0.2, source: "dotclaw" })
    expect(config.settings["packMaxChars"]).toMatchObject({ value: 4000, source: "dotclaw" })
    expect(config.settings["behaviorConfigPath"]).toMatchObject({
      value: path.join(m.dotclaw, "config", "behavior.json"),
      source: "dotclaw"
    })
    expect(config.settings["behaviorReportDir"]).toMatchObject({
      value: path.join(m.dotclaw, "data"),
      source: "dotclaw"
    })
    expect(config.settings["dbPath"]!.value).toBe(path.join(m.dotclaw, "autotune.db"))
    // An environment variable still wins over DotClaw's file.
    const overridden = jsonOut(
      await runCli(["config", "--json"], { ...env, AUTOTUNE_CANARY_FRACTION: "0.3" })
    ) as typeof config
    expect(overridden.settings["canaryFraction"]).toMatchObject({ value: 0.3, source: "env" })

    const first = await runCli(["once", "--json"], env)
    expect(first.code).toBe(0)
    const run = jsonOut(first) as {
      stages: {
        ingest: {
          summary: { ingested: number; feedback: { imported: number; waitingForTrace: number; source: string } }
        }
        deploy: { summary: { deployed: Record<string, { as: string }> } }
      }
    }
    expect(run.stages.ingest.summary.ingested).toBe(30)
    expect(run.stages.ingest.summary.feedback).toMatchObject({ imported: 11, waitingForTrace: 1, source: m.messagesDb })
    expect(run.stages.deploy.summary.deployed[B]!.as).toBe("canary")
    const canaryFile = path.join(m.prompts, `${B}.canary.json`)
    expect(dotclawAccepts(canaryFile)).toBe(true)
    expect(dotclawAccepts(path.join(m.prompts, `${B}.json`))).toBe(true)
    expect(JSON.parse(fs.readFileSync(canaryFile, "utf8")).metadata.canaryPercent).toBe(20)

    // The next run imports nothing again; the early reaction still waits for its trace.
    const second = jsonOut(await runCli(["ingest", "--json"], env)) as {
      feedback: { imported: number; waitingForTrace: number }
    }
    expect(second.feedback).toMatchObject({ imported: 0, waitingForTrace: 1 })
    writeTurns(m.traces, 500, 1, 0.9, Date.now() - 60_000)
    const third = jsonOut(await runCli(["ingest", "--json"], env)) as {
      feedback: { imported: number; waitingForTrace: number }
    }
    expect(third.feedback).toMatchObject({ imported: 0, waitingForTrace: 0 })

    const store = new Database(path.join(m.dotclaw, "autotune.db"), { readonly: true })
    const stored = store
      .prepare("SELECT COUNT(*) AS n, SUM(feedback_type = 'negative') AS neg FROM feedback")
      .get() as { n: number; neg: number }
    const reason = (store.prepare("SELECT reason FROM feedback WHERE id = 'fb-0'").get() as { reason: string }).reason
    store.close()
    expect(stored).toEqual({ n: 11, neg: 5 })
    // Free text from DotClaw is redacted before it is stored, like trace text.
    expect(reason).not.toContain("ana@example.com")

    // The judge scored the 👍 turns (SCORE=0.4 all) the same as the 👎 ones: AUC 0.5, n = 10.
    const status = jsonOut(await runCli(["status", "--json"], env)) as {
      behaviors: Array<{ behavior: string; humanAgreement: { n: number; auc: number; disagrees: boolean } }>
      reactions: { total: number; negative: number }
    }
    expect(status.behaviors[0]!.humanAgreement).toMatchObject({ n: 10, auc: 0.5, disagrees: false })
    expect(status.reactions).toEqual({ total: 11, negative: 5 })
  })

  it("a reader never holds up DotClaw's writer: a write transaction held during the import delays neither side", async () => {
    const m = dotclawMachine({})
    writeTurns(path.join(m.dotclaw, "traces"), 0, 5, 0.5, Date.now() - 3_600_000)
    react(
      m.messagesDb,
      Array.from({ length: 50 }, (_, i) => ({
        id: `fb-${i}`,
        trace: traceId(i % 5),
        type: "negative" as const,
        at: new Date(Date.now() - i * 1000).toISOString()
      }))
    )
    // DotClaw's host: opens the database, holds a write transaction for 5 s, then commits one more reaction.
    const writer = spawn(
      process.execPath,
      [
        "-e",
        `
      const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve("better-sqlite3"))})
      const db = new Database(${JSON.stringify(m.messagesDb)}); db.pragma("busy_timeout = 5000")
      const t0 = Date.now(); db.exec("BEGIN IMMEDIATE")
      db.prepare("INSERT INTO user_feedback (id, trace_id, feedback_type, created_at) VALUES ('fb-live', 'x', 'positive', ?)").run(new Date().toISOString())
      process.stdout.write("locked\\n")
      setTimeout(() => { db.exec("COMMIT"); process.stdout.write("committed " + (Date.now() - t0) + "\\n"); db.close() }, 5000)
    `
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    const exited = new Promise((resolve) => writer.on("exit", resolve))
    let out = ""
    writer.stdout.on("data", (d: Buffer) => (out += d.toString()))
    await new Promise<void>((resolve) => writer.stdout.once("data", () => resolve()))
    const started = Date.now()
    const result = await runCli(["ingest", "--json"], { HOME: m.userHome })
    const importMs = Date.now() - started
    await exited
    expect(result.code).toBe(0)
    // The import read every committed reaction while the writer's transaction was still open: it did not
    // wait for it (WAL readers never do; had it waited for the commit it would have seen 51 rows).
    expect((jsonOut(result) as { feedback: { imported: number } }).feedback.imported).toBe(50)
    expect(importMs).toBeLessThan(15_000)
    // The writer committed on its own schedule (5 s plus scheduling), not after waiting for us.
    const committedAfter = Number(/committed (\d+)/.exec(out)?.[1])
    expect(committedAfter).toBeGreaterThanOrEqual(5000)
    expect(committedAfter).toBeLessThan(6000)
    // The next run picks up the reaction committed meanwhile.
    const next = jsonOut(await runCli(["ingest", "--json"], { HOME: m.userHome })) as { feedback: { imported: number } }
    expect(next.feedback.imported).toBe(1)
  })

  it("a runtime.json that does not parse is named in a warning and ignored; DotClaw's default paths are used", async () => {
    const m = dotclawMachine("{ not json")
    writeTurns(path.join(m.dotclaw, "traces"), 0, 3, 0.5, Date.now() - 3_600_000)
    const result = await runCli(["ingest", "--json"], { HOME: m.userHome })
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`${path.join(m.dotclaw, "config", "runtime.json")} does not parse`)
    expect((jsonOut(result) as { ingested: number }).ingested).toBe(3)
  })

  it("both layouts: one line says which was picked and why; an existing 1.1 store stays where it is", async () => {
    const m = dotclawMachine({})
    const legacy = path.join(m.userHome, ".config", "dotclaw")
    fs.mkdirSync(legacy, { recursive: true })
    fs.writeFileSync(path.join(legacy, "autotune.json"), JSON.stringify({ behaviors: [B] }))
    const result = await runCli(["config", "--json"], { HOME: m.userHome })
    expect(result.code).toBe(0)
    const notes = result.stderr.split("\n").filter((l) => l.includes("current layout") && l.includes("1.1 layout"))
    expect(notes).toHaveLength(1)
    expect(notes[0]).toContain(`autotune's own config and store stay in ${legacy}`)
    const config = jsonOut(result) as { configPath: string; settings: Record<string, { value: unknown }> }
    expect(config.configPath).toBe(path.join(legacy, "autotune.json"))
    expect(config.settings["traceDir"]!.value).toBe(path.join(m.dotclaw, "traces"))
    expect(config.settings["dbPath"]!.value).toBe(path.join(legacy, "autotune.db"))
  })

  it("the 1.1 layout alone keeps working as before", async () => {
    const userHome = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-legacy-"))
    const legacy = path.join(userHome, ".config", "dotclaw")
    fs.mkdirSync(path.join(legacy, "traces"), { recursive: true })
    const config = jsonOut(await runCli(["config", "--json"], { HOME: userHome })) as {
      dotclawHome: string | null
      settings: Record<string, { value: unknown; source: string }>
    }
    expect(config.dotclawHome).toBeNull()
    expect(config.settings["traceDir"]).toMatchObject({ value: path.join(legacy, "traces"), source: "default" })
  })

  it("init detects DotClaw, offers its paths, and does not pin them in the file", async () => {
    const m = dotclawMachine({ agent: { promptPacks: { canaryRate: 0.25 } } })
    const result = await runCli(["init", "--yes", "--json"], { HOME: m.userHome })
    expect(result.code).toBe(0)
    expect(jsonOut(result)).toMatchObject({ dotclawHome: m.dotclaw, created: true })
    const written = JSON.parse(fs.readFileSync(path.join(m.dotclaw, "autotune.json"), "utf8")) as {
      traceDir?: string
      deploy?: { canaryFraction?: number; outputDir?: string }
    }
    expect(written.traceDir).toBeUndefined()
    expect(written.deploy?.canaryFraction).toBeUndefined()
    expect(written.deploy?.outputDir).toBeUndefined()
    expect(fs.statSync(path.join(m.dotclaw, "autotune.json")).mode & 0o777).toBe(0o600)
  })
})

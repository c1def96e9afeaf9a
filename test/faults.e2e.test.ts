import Database from "better-sqlite3"
import { Cause, Effect, Exit, Logger } from "effect"
import { FileError, isBehaviorFault, isolated, LlmStopped, StoreError } from "../src/Domain/Errors.js"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { humanLogger } from "../src/cli/Output.js"
import { tempHome } from "./helpers/app.js"
import { jsonOut, killStrays, runCli } from "./helpers/cli.js"
import { traceFileName, traceLines } from "./helpers/traces.js"

afterEach(killStrays)

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

describe("values from files and the store are shown, not obeyed (built CLI)", () => {
  it("status and config escape a hand-placed pack's version and a path with control characters", async () => {
    const home = tempHome()
    fs.mkdirSync(path.join(home, "prompts"))
    const forged = "v1\nresponse-quality  FORGED  -  -\u001b[2J\u202e"
    fs.writeFileSync(path.join(home, "prompts", "tool-calling.json"), JSON.stringify({ name: "x", version: forged, behavior: "tool-calling", instructions: "Mine." }))
    const env = { AUTOTUNE_HOME: home, AUTOTUNE_REPORT_PATH: path.join(home, "rep\u001b[31mort.html") }
    const status = await runCli(["status"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).not.toMatch(RAW_CONTROL)
    expect(status.stdout).not.toContain("\u202e")
    expect(status.stdout.split("\n").filter((l) => l.startsWith("response-quality  FORGED"))).toEqual([])
    expect(status.stdout).toContain("v1\\nresponse-quality  FORGED  -  -\\x1b[2J\\u202e")
    const config = await runCli(["config"], env)
    expect(config.code).toBe(0)
    expect(config.stdout).not.toMatch(RAW_CONTROL)
    expect(config.stdout).toContain("rep\\x1b[31mort.html")
  })

  it("a log line on a terminal shows the control characters of what it names", async () => {
    const written: Array<string> = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stderr.write
    try {
      await Effect.runPromise(Effect.logWarning("canary v1\nautotune: forged line\u001b[2J").pipe(Effect.annotateLogs({ version: "a\rb" }), Effect.provide(Logger.replace(Logger.defaultLogger, humanLogger))))
    } finally {
      process.stderr.write = write
    }
    expect(written).toEqual(["autotune: warn: canary v1\\nautotune: forged line\\x1b[2J version=a\\rb\n"])
  })

  it("a symlinked trace file is skipped with one warning line naming it", async () => {
    const home = tempHome()
    const elsewhere = path.join(tempHome(), "outside.jsonl")
    fs.writeFileSync(elsewhere, traceLines(0, 3))
    fs.symlinkSync(elsewhere, path.join(home, "traces", traceFileName()))
    const result = await runCli(["ingest", "--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    const warnings = result.stderr.split("\n").filter((l) => l.includes("symbolic link"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(traceFileName())
    expect(JSON.parse(result.stdout)).toMatchObject({ ingested: 0 })
  })
})

describe("each behavior's stage runs in its own failure domain (built CLI)", () => {
  /** A store with two selections waiting (tool-calling, memory-recall) and a canary out for response-quality. */
  const setUp = async () => {
    const home = tempHome()
    const env = { AUTOTUNE_HOME: home, AUTOTUNE_BEHAVIORS: "tool-calling,memory-recall,response-quality" }
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 5))
    expect((await runCli(["ingest"], env)).code).toBe(0)
    const db = new Database(path.join(home, "autotune.db"))
    const insert = db.prepare("INSERT INTO packs (version, behavior, body_json, lineage_json, status, created_at) VALUES (?, ?, ?, '{}', 'selected', ?)")
    for (const [version, behavior] of [["sel-tool", "tool-calling"], ["sel-memory", "memory-recall"]]) {
      insert.run(version, behavior, JSON.stringify({ instructions: `Better ${behavior} instructions.`, lineage: {}, baselineInstructions: "Base." }), Date.now())
    }
    db.close()
    fs.mkdirSync(path.join(home, "prompts"), { recursive: true })
    for (const [file, version] of [["response-quality.json", "rq-active"], ["response-quality.canary.json", "rq-canary"]]) {
      fs.writeFileSync(path.join(home, "prompts", file), JSON.stringify({ name: "rq", version, behavior: "response-quality", instructions: "Mine." }))
    }
    // tool-calling's active pack cannot be written: a directory stands in its place.
    fs.mkdirSync(path.join(home, "prompts", "tool-calling.json"))
    return { home, env }
  }

  it("deploy: one behavior's unwritable pack fails it alone; the others deploy and get their decisions; exit 1", async () => {
    const { home, env } = await setUp()
    const result = await runCli(["deploy", "--json"], env)
    expect(result.code).toBe(1)
    const out = jsonOut(result) as { deployed: Record<string, { version?: string; as?: string }>; decisions: Record<string, { action: string }>; faults: Record<string, string> }
    expect(Object.keys(out.faults)).toEqual(["tool-calling"])
    expect(out.faults["tool-calling"]).toContain("tool-calling.json")
    expect(out.deployed["memory-recall"]).toMatchObject({ version: "sel-memory", as: "canary" })
    expect(out.decisions["response-quality"]!.action).toBe("waiting")
    expect(fs.existsSync(path.join(home, "prompts", "memory-recall.canary.json"))).toBe(true)
    // One error line, naming the behavior and the cause.
    const errors = result.stderr.split("\n").filter((l) => /error/i.test(l))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/deploy: tool-calling: cannot write .*tool-calling\.json/)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const decided = db.prepare("SELECT behavior FROM canary_decisions ORDER BY behavior").all()
    db.close()
    // The canary that just went out and the one already out were both looked at.
    expect(decided).toEqual([{ behavior: "memory-recall" }, { behavior: "response-quality" }])
  })

  it("once: the cycle reports the behavior in --json, /metrics' totals and the report, and exits 1", async () => {
    const { home, env } = await setUp()
    const result = await runCli(["once", "--json"], env)
    expect(result.code).toBe(1)
    const out = jsonOut(result) as { failed: Array<string>; errors: Array<string>; behaviorFaults: Array<{ stage: string; behavior: string }>; stages: { deploy: { status: string } } }
    expect(out.stages.deploy.status).toBe("ok")
    expect(out.failed).toEqual(["deploy:tool-calling"])
    expect(out.behaviorFaults).toMatchObject([{ stage: "deploy", behavior: "tool-calling" }])
    expect(fs.existsSync(path.join(home, "prompts", "memory-recall.canary.json"))).toBe(true)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const totals = db.prepare("SELECT name, labels, value FROM metric_totals WHERE name = 'autotune_behavior_faults_total'").all()
    db.close()
    expect(totals).toEqual([{ name: "autotune_behavior_faults_total", labels: JSON.stringify({ behavior: "tool-calling", stage: "deploy" }), value: 1 }])
    const html = fs.readFileSync(path.join(home, "report.html"), "utf8")
    expect(html).toContain("The last cycle failed for this behavior: deploy: cannot write")
  })
})

describe("isolated (Domain/Errors.ts): what is one behavior's and what is everyone's", () => {
  it("a behavior's own fault and a defect come back as its fault; a shared fault and interruption go on", async () => {
    const own = await Effect.runPromise(isolated(Effect.fail(new FileError({ path: "/p/x.json", operation: "write", detail: "permission denied" }))))
    expect(own).toEqual({ fault: "cannot write /p/x.json: permission denied" })
    const bug = await Effect.runPromise(isolated(Effect.die(new Error("boom"))))
    expect(isBehaviorFault(bug)).toBe(true)
    for (const shared of [new StoreError({ operation: "write", detail: "the disk is full" }), new LlmStopped({ kind: "config", detail: "key rejected" })]) {
      const exit = await Effect.runPromiseExit(isolated(Effect.fail(shared)))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)._tag === "Some").toBe(true)
    }
    const interrupted = await Effect.runPromiseExit(isolated(Effect.interrupt))
    expect(Exit.isInterrupted(interrupted)).toBe(true)
    expect(await Effect.runPromise(isolated(Effect.succeed(3)))).toBe(3)
  })
})

import Database from "better-sqlite3"
import { Cause, Effect, Exit, Logger } from "effect"
import { FileError, isBehaviorFault, isolated, LlmStopped, StoreError } from "../src/Domain/Errors.js"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { humanLogger } from "../src/cli/Output.js"
import { tempHome } from "./helpers/app.js"
import { clockEnv, jsonOut, killStrays, runCli, tracked } from "./helpers/cli.js"
import { startFakeProvider } from "./helpers/fakeProvider.js"
import { freePort } from "./helpers/postgres.js"
import { traceFileName, traceLines } from "./helpers/traces.js"

afterEach(killStrays)

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

describe("values from files and the store are shown, not obeyed (built CLI)", () => {
  it("status and config escape a hand-placed pack's version and a path with control characters", async () => {
    const home = tempHome()
    fs.mkdirSync(path.join(home, "prompts"))
    const forged = "v1\nresponse-quality  FORGED  -  -\u001b[2J\u202e"
    fs.writeFileSync(
      path.join(home, "prompts", "tool-calling.json"),
      JSON.stringify({ name: "x", version: forged, behavior: "tool-calling", instructions: "Mine." })
    )
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
      await Effect.runPromise(
        Effect.logWarning("canary v1\nautotune: forged line\u001b[2J").pipe(
          Effect.annotateLogs({ version: "a\rb" }),
          Effect.provide(Logger.replace(Logger.defaultLogger, humanLogger))
        )
      )
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
    const insert = db.prepare(
      "INSERT INTO packs (version, behavior, body_json, lineage_json, status, created_at) VALUES (?, ?, ?, '{}', 'selected', ?)"
    )
    for (const [version, behavior] of [
      ["sel-tool", "tool-calling"],
      ["sel-memory", "memory-recall"]
    ]) {
      insert.run(
        version,
        behavior,
        JSON.stringify({
          instructions: `Better ${behavior} instructions.`,
          lineage: {},
          baselineInstructions: "Base."
        }),
        Date.now()
      )
    }
    db.close()
    fs.mkdirSync(path.join(home, "prompts"), { recursive: true })
    for (const [file, version] of [
      ["response-quality.json", "rq-active"],
      ["response-quality.canary.json", "rq-canary"]
    ] as const) {
      fs.writeFileSync(
        path.join(home, "prompts", file),
        JSON.stringify({ name: "rq", version, behavior: "response-quality", instructions: "Mine." })
      )
    }
    // tool-calling's active pack cannot be written: a directory stands in its place.
    fs.mkdirSync(path.join(home, "prompts", "tool-calling.json"))
    return { home, env }
  }

  it("deploy: one behavior's unwritable pack fails it alone; the others deploy and get their decisions; exit 1", async () => {
    const { home, env } = await setUp()
    const result = await runCli(["deploy", "--json"], env)
    expect(result.code).toBe(1)
    const out = jsonOut(result) as {
      deployed: Record<string, { version?: string; as?: string }>
      decisions: Record<string, { action: string }>
      faults: Record<string, string>
    }
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
    const out = jsonOut(result) as {
      failed: Array<string>
      errors: Array<string>
      behaviorFaults: Array<{ stage: string; behavior: string }>
      stages: { deploy: { status: string } }
    }
    expect(out.stages.deploy.status).toBe("ok")
    expect(out.failed).toEqual(["deploy:tool-calling"])
    expect(out.behaviorFaults).toMatchObject([{ stage: "deploy", behavior: "tool-calling" }])
    expect(fs.existsSync(path.join(home, "prompts", "memory-recall.canary.json"))).toBe(true)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const totals = db
      .prepare("SELECT name, labels, value FROM metric_totals WHERE name = 'autotune_behavior_faults_total'")
      .all()
    db.close()
    expect(totals).toEqual([
      {
        name: "autotune_behavior_faults_total",
        labels: JSON.stringify({ behavior: "tool-calling", stage: "deploy" }),
        value: 1
      }
    ])
    const html = fs.readFileSync(path.join(home, "report.html"), "utf8")
    expect(html).toContain("The last cycle failed for this behavior: deploy: cannot write")
  })
})

describe("isolated (Domain/Errors.ts): what is one behavior's and what is everyone's", () => {
  it("a behavior's own fault and a defect come back as its fault; a shared fault and interruption go on", async () => {
    const own = await Effect.runPromise(
      isolated(Effect.fail(new FileError({ path: "/p/x.json", operation: "write", detail: "permission denied" })))
    )
    expect(own).toEqual({ fault: "cannot write /p/x.json: permission denied" })
    const bug = await Effect.runPromise(isolated(Effect.die(new Error("boom"))))
    expect(isBehaviorFault(bug)).toBe(true)
    for (const shared of [
      new StoreError({ operation: "write", detail: "the disk is full" }),
      new LlmStopped({ kind: "config", detail: "key rejected" })
    ]) {
      const exit = await Effect.runPromiseExit(isolated(Effect.fail(shared)))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)._tag === "Some").toBe(true)
    }
    const interrupted = await Effect.runPromiseExit(isolated(Effect.interrupt))
    expect(Exit.isInterrupted(interrupted)).toBe(true)
    expect(await Effect.runPromise(isolated(Effect.succeed(3)))).toBe(3)
  })
})

describe("a store that vanished or was replaced is noticed (built CLI)", () => {
  const recordOf = (home: string) =>
    JSON.parse(fs.readFileSync(path.join(home, "store-identity.json"), "utf8")) as {
      location: string
      storeId: string
      spend: Array<{ at: number; usd: number }>
    }
  const removeStore = (db: string) => {
    for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true })
  }
  const setUp = async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 5))
    const env = { AUTOTUNE_HOME: home }
    const first = await runCli(["once", "--json"], env)
    expect(first.code).toBe(0)
    return { home, env, db: path.join(home, "autotune.db") }
  }

  it("remembers the store's id outside it, 0600", async () => {
    const { home, db } = await setUp()
    const record = recordOf(home)
    expect(record.location).toBe(db)
    expect(record.storeId).toMatch(/^[0-9a-f-]{36}$/)
    expect(fs.statSync(path.join(home, "store-identity.json")).mode & 0o777).toBe(0o600)
    const stored = new Database(db, { readonly: true })
    expect(stored.prepare("SELECT value FROM store_meta WHERE key = 'store_id'").get()).toEqual({
      value: record.storeId
    })
    stored.close()
  })

  it("a removed store: once and status fail with one line naming it, nothing is made or ingested; accept-store starts afresh", async () => {
    const { home, env, db } = await setUp()
    const was = recordOf(home).storeId
    removeStore(db)
    for (const args of [["once"], ["status"], ["ingest"]]) {
      const result = await runCli(args, env)
      expect(result.code, args.join(" ")).toBe(1)
      const errors = result.stderr.split("\n").filter((l) => /error/i.test(l))
      expect(errors, args.join(" ")).toHaveLength(1)
      expect(errors[0]).toContain(db)
      expect(errors[0]).toContain(`the store is gone (it was store ${was})`)
      expect(errors[0]).toContain("autotune accept-store")
      expect(fs.existsSync(db), args.join(" ")).toBe(false)
    }
    const json = await runCli(["once", "--json"], env)
    expect(json.code).toBe(1)
    expect((jsonOut(json)["error"] as { tag: string }).tag).toBe("StoreError")

    const accepted = await runCli(["accept-store", "--json"], env)
    expect(accepted.code).toBe(0)
    const out = jsonOut(accepted) as { store: string; storeId: string; previous: { storeId: string } }
    expect(out.previous.storeId).toBe(was)
    expect(out.storeId).not.toBe(was)
    expect(recordOf(home).storeId).toBe(out.storeId)
    const again = await runCli(["once", "--json"], env)
    expect(again.code).toBe(0)
    expect(
      (jsonOut(again) as { stages: { ingest: { summary: { ingested: number } } } }).stages.ingest.summary.ingested
    ).toBe(5)
  })

  it("another store in its place fails; the same store restored from a copy is taken back with one line", async () => {
    const { home, env, db } = await setUp()
    const backup = path.join(tempHome(), "backup.db")
    fs.copyFileSync(db, backup)
    // Another installation's store, moved into this one's place. The original is moved aside, not deleted, so that
    // no file made here can be given its inode number again (that number is in the record).
    const other = await setUp()
    fs.renameSync(db, `${db}.aside`)
    removeStore(db)
    fs.copyFileSync(other.db, db)
    const swapped = await runCli(["once"], env)
    expect(swapped.code).toBe(1)
    expect(swapped.stderr).toContain(
      `another store is in its place (store ${recordOf(other.home).storeId}, was ${recordOf(home).storeId})`
    )
    // An empty file in its place is no store of ours either, and stays as it is.
    removeStore(db)
    fs.writeFileSync(db, "")
    const empty = await runCli(["once"], env)
    expect(empty.code).toBe(1)
    expect(empty.stderr).toContain("another store is in its place (store without an id")
    expect(fs.statSync(db).size).toBe(0)
    // The store back, as a copy: a new inode, the same id.
    removeStore(db)
    fs.copyFileSync(backup, db)
    const back = await runCli(["once", "--json"], env)
    expect(back.code).toBe(0)
    expect(back.stderr).toContain(
      `the store at ${db} is a copy of store ${recordOf(home).storeId} (a restore): carrying on with it`
    )
    expect(
      (jsonOut(back) as { stages: { ingest: { summary: { ingested: number } } } }).stages.ingest.summary.ingested
    ).toBe(0)
  })

  it("a configuration that names another store is a change, said in one line", async () => {
    const { home, env, db } = await setUp()
    const elsewhere = path.join(home, "elsewhere.db")
    const moved = await runCli(["once"], { ...env, AUTOTUNE_DB_PATH: elsewhere })
    expect(moved.code).toBe(0)
    expect(moved.stderr.split("\n").filter((l) => l.includes("names another store"))).toHaveLength(1)
    expect(moved.stderr).toContain(`now ${elsewhere}`)
    expect(moved.stderr).toContain(`was ${db}`)
    expect(recordOf(home).location).toBe(elsewhere)
  })

  it("the daemon: a store removed under it fails the next cycles with /healthz 503, re-ingests nothing, until accept-store", async () => {
    const { home, db } = await setUp()
    const port = await freePort()
    const child = tracked(
      spawn(process.execPath, ["dist/bin.js", "daemon"], {
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: home,
          ...clockEnv(),
          AUTOTUNE_HOME: home,
          AUTOTUNE_INTERVAL_MINUTES: "0.02",
          AUTOTUNE_METRICS_PORT: String(port)
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
    )
    let log = ""
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()))
    const health = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`)
        return { status: res.status, body: (await res.json()) as { reason?: string } }
      } catch {
        return undefined
      }
    }
    const until = async <T>(what: string, probe: () => Promise<T | undefined>) => {
      const deadline = Date.now() + 60_000
      for (;;) {
        const value = await probe()
        if (value !== undefined) return value
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${log}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    try {
      await until("a good cycle", async () => ((await health())?.status === 200 ? true : undefined))
      removeStore(db)
      const failing = await until("/healthz 503", async () => {
        const h = await health()
        return h?.status === 503 ? h.body : undefined
      })
      expect(failing.reason).toContain("the store is gone")
      await new Promise((r) => setTimeout(r, 2500))
      expect(fs.existsSync(db)).toBe(false)
      expect((await health())?.status).toBe(503)
      expect((await runCli(["accept-store"], { AUTOTUNE_HOME: home })).code).toBe(0)
      await until("/healthz 200 again", async () => ((await health())?.status === 200 ? true : undefined))
    } finally {
      child.kill("SIGTERM")
      await new Promise((r) => child.once("exit", r))
    }
  }, 120_000)

  it("the day's spend survives a fresh store: accept-store keeps the last 24 hours' spend against the budget", async () => {
    const { home, env, db } = await setUp()
    // What a command spends is remembered in the home as well as in the store.
    const spender = await startFakeProvider()
    try {
      const spent = await runCli(["eval", "--json"], {
        ...env,
        ANTHROPIC_API_KEY: "k",
        ANTHROPIC_BASE_URL: spender.url,
        AUTOTUNE_JUDGE_BATCH: "off"
      })
      expect(spent.code).toBe(0)
      expect(spender.httpCalls).toBeGreaterThan(0)
    } finally {
      await spender.close()
    }
    const stored = new Database(db, { readonly: true })
    const inStore = (stored.prepare("SELECT SUM(cost_usd) AS usd FROM llm_calls").get() as { usd: number }).usd
    stored.close()
    expect(inStore).toBeGreaterThan(0)
    expect(recordOf(home).spend.reduce((n, s) => n + s.usd, 0)).toBeCloseTo(inStore, 9)
    removeStore(db)
    expect((await runCli(["accept-store"], env)).code).toBe(0)
    // The home's record says $5 went out an hour ago: the new, empty store must not make that $0.
    const record = recordOf(home)
    fs.writeFileSync(
      path.join(home, "store-identity.json"),
      JSON.stringify({ ...record, spend: [{ at: Date.now() - 3_600_000, usd: 5 }] })
    )
    const fake = await startFakeProvider()
    try {
      const result = await runCli(["once", "--json"], {
        ...env,
        ANTHROPIC_API_KEY: "k",
        ANTHROPIC_BASE_URL: fake.url,
        AUTOTUNE_DAILY_BUDGET_USD: "5"
      })
      expect(fake.httpCalls).toBe(0)
      expect((jsonOut(result) as { budget: { spentLast24hUsd: number; exhausted: boolean } }).budget).toMatchObject({
        spentLast24hUsd: 5,
        exhausted: true
      })
    } finally {
      await fake.close()
    }
  })
})

import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv, jsonOut, killStrays, runCli, tracked } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { freePort } from "./helpers/postgres.js"
import { traceLines, traceFileName } from "./helpers/traces.js"
import { bootId, startTime } from "../src/store/RunLock.js"

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider()
})
afterEach(killStrays)
afterAll(async () => {
  await fake.close()
})

const listFiles = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String) : []

describe("once, daemon and the library", () => {
  it("two `once` at the same time: no database error, no double work", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 20))
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: "response-quality"
    }
    fake.latencyMs = 30
    const [a, b] = await Promise.all([runCli(["once", "--json"], env), runCli(["once", "--json"], env)])
    fake.latencyMs = 0
    for (const r of [a, b]) {
      expect(r.code).toBe(0)
      expect(r.stderr).not.toMatch(/SQLITE|database error/i)
    }
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const judged = db
      .prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT trace_id) AS traces, SUM(stage = 1) AS first FROM judge_scores")
      .get() as { n: number; traces: number; first: number }
    const calls = db.prepare("SELECT COUNT(*) AS n FROM llm_calls").get() as { n: number }
    db.close()
    // Every trace judged exactly once at stage 1, whoever ran first, and one call per stored verdict (the
    // audit's stage-2 draw hashes the trace id, which carries the run's date: its count is not fixed).
    expect(judged).toMatchObject({ traces: 20, first: 20 })
    expect(calls.n).toBe(judged.n)
    const outs = [jsonOut(a), jsonOut(b)] as Array<{ skipped?: string; stages?: unknown }>
    const skipped = outs.filter((o) => o.skipped !== undefined)
    if (skipped.length > 0) expect(skipped[0]!.skipped).toContain("in progress")
    expect(fs.existsSync(path.join(home, "autotune.lock"))).toBe(false)
    const runsDb = new Database(path.join(home, "autotune.db"), { readonly: true })
    const runs = runsDb.prepare("SELECT command, status FROM runs").all()
    runsDb.close()
    expect(runs).toContainEqual({ command: "once", status: "ok" })
  })

  it("the run lock admits one process at a time when several reach it in the same instant", async () => {
    const home = tempHome()
    const lock = path.join(home, "contended.lock")
    const log = path.join(home, "holders.log")
    // Each process tries the lock at the same moments as the others, round after round, and logs while it holds it.
    const script = `
      import { Effect } from "effect"
      import * as fs from "node:fs"
      import { withRunLock } from "${path.resolve("dist/store/RunLock.js")}"
      const [lock, log, start] = process.argv.slice(1)
      for (let round = 0; round < 12; round++) {
        const at = Number(start) + round * 400
        while (Date.now() < at) await new Promise((r) => setTimeout(r, 1))
        await Effect.runPromise(withRunLock(lock, Effect.promise(async () => {
          fs.appendFileSync(log, "in " + process.pid + "\\n")
          await new Promise((r) => setTimeout(r, 3))
          fs.appendFileSync(log, "out " + process.pid + "\\n")
        }), "60 seconds"))
      }`
    const start = Date.now() + 1500
    const children = Array.from(
      { length: 6 },
      () =>
        new Promise<number | null>((resolve) =>
          spawn(process.execPath, ["--input-type=module", "-e", script, lock, log, String(start)], {
            stdio: "inherit"
          }).on("exit", resolve)
        )
    )
    expect(await Promise.all(children)).toEqual([0, 0, 0, 0, 0, 0])
    const events = fs.readFileSync(log, "utf8").trim().split("\n")
    expect(events).toHaveLength(6 * 12 * 2)
    // Strictly in, out, in, out ..., each out by the process that came in.
    const overlaps = events.filter((e, i) =>
      i % 2 === 0 ? !e.startsWith("in ") : e !== `out ${events[i - 1]!.slice(3)}`
    )
    expect(overlaps).toEqual([])
  }, 60_000)

  it("takes over a lock left by a killed process", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "autotune.lock"), "999999")
    const result = await runCli(["once", "--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    expect(jsonOut(result)).toHaveProperty("stages")
  })

  it("a lock naming a live process that is not its holder (a reused pid, an earlier boot) is taken over, with one line", async () => {
    // An unrelated live process: what a SIGKILLed run's pid names after a reboot or once pids wrap.
    const other = tracked(spawn("sleep", ["60"], { stdio: "ignore" }))
    try {
      const start = startTime(other.pid!)!
      const boot = bootId()!
      for (const text of [
        `${other.pid}`,
        `${other.pid} 1 ${boot}`,
        `${other.pid} ${start} 00000000-0000-0000-0000-000000000000`
      ]) {
        const home = tempHome()
        fs.writeFileSync(path.join(home, "autotune.lock"), text)
        const result = await runCli(["once", "--json"], { AUTOTUNE_HOME: home })
        expect(result.code, text).toBe(0)
        expect(jsonOut(result), text).toHaveProperty("stages")
        expect(result.stderr).toContain(
          `took over ${path.join(home, "autotune.lock")}: its holder (${text}) is no longer running`
        )
        expect(fs.existsSync(path.join(home, "autotune.lock"))).toBe(false)
      }
    } finally {
      other.kill("SIGKILL")
    }
  })

  it("a lock its live holder wrote: once exits 0 and says who holds it", async () => {
    const home = tempHome()
    // This test's own process stands for a running autotune: the same pid, start time and boot.
    fs.writeFileSync(path.join(home, "autotune.lock"), `${process.pid} ${startTime(process.pid)} ${bootId()}`)
    const result = await runCli(["once", "--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    expect(String(jsonOut(result)["skipped"])).toContain(`another autotune run (pid ${process.pid}) is in progress`)
    expect(fs.readFileSync(path.join(home, "autotune.lock"), "utf8")).toContain(String(process.pid))
  })

  it("the daemon stops cleanly on SIGTERM in the middle of a cycle: exit 0, no partial files, lock released", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 30))
    fake.latencyMs = 2000
    fake.requests.length = 0
    const child = tracked(
      spawn(process.execPath, ["dist/bin.js", "daemon"], {
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: home,
          ...clockEnv(),
          AUTOTUNE_HOME: home,
          ANTHROPIC_API_KEY: "k",
          ANTHROPIC_BASE_URL: fake.url,
          AUTOTUNE_JUDGE_BATCH: "off",
          AUTOTUNE_BEHAVIORS: "response-quality"
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
    )
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    // Wait until judge calls are in flight: the middle of a cycle.
    const deadline = Date.now() + 20_000
    while (fake.requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(fake.requests.length).toBeGreaterThan(0)
    const sent = Date.now()
    child.kill("SIGTERM")
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
    fake.latencyMs = 0
    expect(code).toBe(0)
    expect(Date.now() - sent).toBeLessThan(5000)
    expect(listFiles(home).filter((f) => f.endsWith(".tmp"))).toEqual([])
    expect(fs.existsSync(path.join(home, "autotune.lock"))).toBe(false)
    // journald gets one JSON object per line.
    const lines = stderr
      .trim()
      .split("\n")
      .filter((l) => l !== "")
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
    expect(lines.map((l) => JSON.parse(l).msg)).toContain("daemon stopped")
  })

  it("runOnce is importable by package name from another folder and runs a cycle", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 3))
    const app = consumer(
      `import { runOnce, loadConfig } from "@dotsetlabs/autotune"\nconst r = await runOnce()\nprocess.stdout.write(JSON.stringify({ ingested: r.stages.ingest.summary.ingested, home: loadConfig().config.home }))\n`
    )
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["run.js"], {
        cwd: app,
        env: { PATH: process.env["PATH"] ?? "", HOME: home, ...clockEnv(), AUTOTUNE_HOME: home },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
      child.on("exit", (code) => resolve({ code, stdout, stderr }))
    })
    expect(out.stderr).not.toMatch(/Error/)
    expect(out.code).toBe(0)
    expect(JSON.parse(out.stdout)).toEqual({ ingested: 3, home })
    expect(fs.existsSync(path.resolve("dist/index.d.ts"))).toBe(true)
  })

  it("runDaemon, like `autotune daemon`, serves /metrics and /livez on AUTOTUNE_METRICS_PORT and stops on its signal", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 3))
    const app = consumer(
      `import { runDaemon } from "@dotsetlabs/autotune"\nconst stop = new AbortController()\nprocess.on("SIGTERM", () => stop.abort())\n` +
        `await runDaemon(undefined, { signal: stop.signal })\nprocess.stdout.write("stopped")\n`
    )
    const port = await freePort()
    const child = tracked(
      spawn(process.execPath, ["run.js"], {
        cwd: app,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: home,
          ...clockEnv(),
          AUTOTUNE_HOME: home,
          AUTOTUNE_METRICS_PORT: String(port),
          AUTOTUNE_INTERVAL_MINUTES: "60"
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
    )
    let stdout = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    // The first cycle ingests the three turns; the scrape after it counts them.
    let metrics = ""
    const deadline = Date.now() + 30_000
    while (!/^autotune_traces_ingested_total(?:\{[^}]*\})? 3$/m.test(metrics) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
      metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => ""
      )
    }
    expect(metrics).toMatch(/^autotune_traces_ingested_total(?:\{[^}]*\})? 3$/m)
    const version = (JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string }).version
    expect(metrics).toContain(`autotune_build_info{version="${version}"} 1`)
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200)
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
    expect(stdout).toBe("stopped")
  })
})

/** A folder with its own package.json that imports autotune by package name, with `script` as its run.js. */
const consumer = (script: string) => {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-consumer-"))
  fs.mkdirSync(path.join(app, "node_modules", "@dotsetlabs"), { recursive: true })
  fs.symlinkSync(path.resolve("."), path.join(app, "node_modules", "@dotsetlabs", "autotune"), "dir")
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ type: "module" }))
  fs.writeFileSync(path.join(app, "run.js"), script)
  return app
}

import Database from "better-sqlite3"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv, jsonOut, runCli } from "./helpers/cli.js"
import { type Fault, type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceLines, traceFileName, TEST_DAY } from "./helpers/traces.js"
import { describeStoreCause } from "../src/store/Db.js"

let fake: FakeProvider | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

const always = (fault: Fault, n = 2000) => Array.from({ length: n }, () => fault)

/** A home with 100 answered traces, ingested, and the env for the fake provider. */
const setUp = async (faults: ReadonlyArray<Fault>, extra: Record<string, string> = {}) => {
  fake = await startFakeProvider()
  fake.faults.push(...faults)
  const home = tempHome()
  fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 100))
  const env = {
    AUTOTUNE_HOME: home,
    ANTHROPIC_API_KEY: "sk-ant-wrong-key-0123456789",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS: "5",
    AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS: "20",
    ...extra
  }
  expect((await runCli(["ingest"], env)).code).toBe(0)
  return { home, env }
}

const scoredRows = (home: string) => {
  const db = new Database(path.join(home, "autotune.db"), { readonly: true })
  const n = (db.prepare("SELECT COUNT(*) AS n FROM judge_scores").get() as { n: number }).n
  db.close()
  return n
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => /error/i.test(l))

describe("failures the user must fix stop the run at once (built CLI, loopback provider)", () => {
  it("a wrong key (401): one request, one line naming ANTHROPIC_API_KEY, exit non-zero, nothing scored", async () => {
    const { home, env } = await setUp(
      always({
        status: 401,
        body: JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } })
      })
    )
    const result = await runCli(["once"], env)
    expect(result.code).not.toBe(0)
    expect(fake!.httpCalls).toBeLessThanOrEqual(2)
    expect(errorLines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toMatch(
      /eval: anthropic rejected the API key \(HTTP 401, .*authentication_error.*\); check ANTHROPIC_API_KEY/
    )
    // The summary on stdout says that optimize did not run, and why.
    expect(result.stdout).toMatch(/optimize: not run: anthropic rejected the API key/)
    expect(scoredRows(home)).toBe(0)

    const evalRun = await runCli(["eval", "--json"], env)
    expect(evalRun.code).toBe(2)
    const error = jsonOut(evalRun)["error"] as { tag: string; kind: string; message: string }
    expect(error).toMatchObject({ tag: "LlmStopped", kind: "config" })
    expect(error.message).toContain("ANTHROPIC_API_KEY")
  })

  it("an unknown model (404): one line naming the model variable", async () => {
    const { env } = await setUp(
      always({
        status: 404,
        body: JSON.stringify({ type: "error", error: { type: "not_found_error", message: "model: claude-haiku-9" } })
      }),
      {
        AUTOTUNE_JUDGE_STAGE1_MODEL: "anthropic/claude-haiku-9"
      }
    )
    const result = await runCli(["eval"], env)
    expect(result.code).toBe(2)
    expect(fake!.httpCalls).toBeLessThanOrEqual(2)
    expect(errorLines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toMatch(
      /does not know the model "anthropic\/claude-haiku-9" .*check AUTOTUNE_JUDGE_STAGE1_MODEL/
    )
  })

  it("a provider answering 502 with an HTML page: the circuit breaker stops the run after a few requests", async () => {
    // Direct calls (the trend sample's batch submission is one request with its own retries: batch.e2e).
    const { home, env } = await setUp(
      always({
        status: 502,
        body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers: { "content-type": "text/html" }
      }),
      { AUTOTUNE_JUDGE_BATCH: "off" }
    )
    const started = Date.now()
    const result = await runCli(["once", "--json"], env)
    expect(result.code).toBe(1)
    // Default threshold 8: the first call's 4 attempts and 4 more; not 100 traces x 4 attempts.
    expect(fake!.requests.length).toBe(8)
    expect(Date.now() - started).toBeLessThan(20_000)
    const run = jsonOut(result) as {
      failed: Array<string>
      errors: Array<string>
      stages: { optimize: { status: string } }
    }
    expect(run.failed).toEqual(["eval"])
    expect(run.errors[0]).toMatch(
      /anthropic is failing: 8 attempts in a row failed, the last with HTTP 502: .*502 Bad Gateway/
    )
    expect(run.stages.optimize.status).toBe("skipped")
    expect(scoredRows(home)).toBe(0)
    expect(errorLines(result.stderr)).toHaveLength(1)
  })

  it("the daemon logs a wrong key once per cycle and keeps running", async () => {
    const { env } = await setUp(always({ status: 401 }), { AUTOTUNE_INTERVAL_MINUTES: "0.005" })
    const child = spawn(process.execPath, [path.resolve("dist/bin.js"), "daemon"], {
      env: { PATH: process.env["PATH"] ?? "", HOME: env.AUTOTUNE_HOME, ...clockEnv(), ...env }
    })
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    // Until two cycles have finished (a loaded CI machine may take far longer than the interval), at most 45 s.
    const finished = () => stderr.split("\n").filter((l) => l.includes('"cycle finished"')).length
    for (let waited = 0; finished() < 2 && waited < 45_000; waited += 100)
      await new Promise((resolve) => setTimeout(resolve, 100))
    child.kill("SIGTERM")
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    expect(code).toBe(0)
    const cycles = stderr.split("\n").filter((l) => l.includes('"cycle finished"')).length
    const errors = stderr.split("\n").filter((l) => l.includes('"level":"error"'))
    expect(cycles).toBeGreaterThanOrEqual(2)
    // SIGTERM may cut a cycle after its request and before its log lines: that cycle counts at most once more.
    expect(errors.length).toBeGreaterThanOrEqual(cycles)
    expect(errors.length).toBeLessThanOrEqual(cycles + 1)
    expect(errors.every((l) => l.includes("check ANTHROPIC_API_KEY"))).toBe(true)
    // One request per cycle: each cycle tries the key again, so a fixed key is picked up.
    expect(fake!.httpCalls).toBeGreaterThanOrEqual(cycles)
    expect(fake!.httpCalls).toBeLessThanOrEqual(cycles + 1)
  })
})

describe("trace validation", () => {
  it("counts malformed lines by reason: a timestamp of 12, an object as input_text", async () => {
    const home = tempHome()
    const good = traceLines(0, 2)
    const lines = [
      JSON.stringify({ trace_id: "trace-a", timestamp: 12, input_text: "hi", output_text: "yo" }),
      JSON.stringify({
        trace_id: "trace-b",
        timestamp: `${TEST_DAY}T10:00:00Z`,
        input_text: { text: "hi" },
        output_text: "yo"
      }),
      "{not json"
    ]
    fs.writeFileSync(path.join(home, "traces", traceFileName()), good + lines.join("\n") + "\n")
    const result = await runCli(["ingest", "--json"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(0)
    const summary = jsonOut(result) as { ingested: number; malformed: number; malformedReasons: Record<string, number> }
    expect(summary).toMatchObject({ ingested: 2, malformed: 3 })
    expect(summary.malformedReasons).toEqual({ "bad timestamp": 1, "text field not text": 1, "invalid JSON": 1 })
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const reasons = (
      db.prepare("SELECT reason FROM malformed_lines ORDER BY line_no").all() as Array<{ reason: string }>
    ).map((r) => r.reason)
    db.close()
    expect(reasons[0]).toContain("timestamp 12 is not a plausible epoch time")
    expect(reasons[1]).toContain("input_text is an object, not text")
  })
})

describe("CLI conventions", () => {
  it("--help in a pipe has no ANSI codes; numeric flags are typed", async () => {
    const result = await runCli(["--help"], {})
    expect(result.code).toBe(0)
    expect(result.stdout).not.toMatch(/\x1b\[/)
    expect(result.stdout).toMatch(/--concurrency N\s+LLM calls in flight/)
    expect(result.stdout).toMatch(/--max-cost-usd N\s/)
  })

  it("a numeric flag out of range is refused like the environment variable", async () => {
    const home = tempHome()
    const result = await runCli(["ingest", "--concurrency", "0"], { AUTOTUNE_HOME: home })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/llmConcurrency \(from flag --concurrency\): must be a whole number >= 1/)
    const text = await runCli(["ingest", "--concurrency", "many"], { AUTOTUNE_HOME: home })
    expect(text.code).toBe(2)
  })
})

/** A 3 MB tmpfs, when this process may mount one (root on Linux); undefined otherwise. */
const smallDisk = (): string | undefined => {
  if (os.platform() !== "linux" || process.getuid?.() !== 0) return undefined
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-full-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", dir], { stdio: "ignore" })
    return dir
  } catch {
    return undefined
  }
}

describe("a full disk", () => {
  const disk = smallDisk()
  it.runIf(disk !== undefined)(
    "ingest says which path is full and that nothing was lost; --json carries the error; a re-run completes",
    async () => {
      try {
        const home = tempHome()
        fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 6000))
        const env = { AUTOTUNE_HOME: home, AUTOTUNE_DB_PATH: path.join(disk!, "autotune.db") }
        const result = await runCli(["ingest", "--json"], env)
        expect(result.code).toBe(1)
        expect(result.stderr.trim().split("\n")).toHaveLength(1)
        expect(result.stderr).toMatch(
          new RegExp(
            `\\(${disk}/autotune.db\\): the disk is full; \\d+ new trace\\(s\\) were saved before it; .*nothing was lost`
          )
        )
        const error = jsonOut(result)["error"] as { tag: string; path: string }
        expect(error).toMatchObject({ tag: "StoreError", path: path.join(disk!, "autotune.db") })

        // Room again: the store moves to a bigger disk (the same file), and the re-run completes without doubles.
        const bigger = path.join(home, "moved.db")
        for (const suffix of ["", "-wal", "-shm"])
          if (fs.existsSync(path.join(disk!, `autotune.db${suffix}`)))
            fs.copyFileSync(path.join(disk!, `autotune.db${suffix}`), `${bigger}${suffix}`)
        const rerun = jsonOut(await runCli(["ingest", "--json"], { ...env, AUTOTUNE_DB_PATH: bigger })) as {
          ingested: number
          duplicates: number
        }
        const db = new Database(bigger, { readonly: true })
        const stored = (db.prepare("SELECT COUNT(*) AS n FROM traces").get() as { n: number }).n
        db.close()
        expect(stored).toBe(6000)
        expect(rerun.duplicates).toBe(0)
      } finally {
        execFileSync("umount", [disk!])
      }
    }
  )
})

describe("store errors in words", () => {
  it.each([
    ["SQLITE_FULL", "the disk is full"],
    ["ENOSPC", "the disk is full"],
    ["SQLITE_READONLY", "cannot be written (read-only"],
    ["EROFS", "cannot be written (read-only"],
    ["SQLITE_CORRUPT", "is damaged"],
    ["SQLITE_NOTADB", "is damaged"],
    ["SQLITE_CANTOPEN", "cannot open the database file"],
    ["EACCES", "permission denied"],
    ["SQLITE_IOERR_WRITE", "disk I/O error"]
  ])("%s", (code, words) => {
    expect(describeStoreCause(Object.assign(new Error("low-level text"), { code }))).toContain(words)
  })
})

import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, killStrays, runCli, startCli, stopWithin } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceFileName, traceLines } from "./helpers/traces.js"
import { bootId, startTime } from "../src/store/RunLock.js"
import { toConfigFile } from "../src/config/Config.js"
import { type AppConfig, SETTINGS } from "../src/config/Table.js"

afterEach(killStrays)

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("autotune: error:"))

describe("what the operator types is what autotune does (built CLI)", () => {
  it("global options work before the command as after it", async () => {
    const home = tempHome()
    const env = { AUTOTUNE_HOME: home }
    // --json before the command: one JSON object, as after it.
    for (const args of [
      ["--json", "status"],
      ["status", "--json"]
    ]) {
      const r = await runCli(args, env)
      expect(r.code, args.join(" ")).toBe(0)
      expect(jsonOut(r)).toHaveProperty("behaviors")
    }
    // A setting's flag before the command is applied, and checked.
    const before = await runCli(["--daily-budget-usd", "1", "config", "--json"], env)
    expect(
      (jsonOut(before)["settings"] as Record<string, { value: unknown; source: string }>)["dailyBudgetUsd"]
    ).toMatchObject({ value: 1, source: "flag" })
    const refused = await runCli(["--daily-budget-usd", "-5", "once"], env)
    expect(refused.code).toBe(2)
    expect(errorLines(refused.stderr)[0]).toContain("--daily-budget-usd")
    // --config before the command is read: a bad file there stops the command.
    fs.writeFileSync(path.join(home, "bad.json"), "{ nope")
    const bad = await runCli(["--config", path.join(home, "bad.json"), "status"], env)
    expect(bad.code).toBe(2)
  })

  it("every usage error is one line naming what is wrong, with a did-you-mean, {error} under --json, exit 2", async () => {
    const env = { AUTOTUNE_HOME: tempHome() }
    const cases: ReadonlyArray<[ReadonlyArray<string>, RegExp]> = [
      [["stauts"], /unknown command "stauts" \(did you mean status\?\)/],
      [["status", "--jsno"], /unknown option --jsno for autotune status \(did you mean --json\?\)/],
      [["--jsno", "status"], /unknown option --jsno for autotune \(did you mean --json\?\)/],
      [["once", "--concurrency", "abc"], /--concurrency: "abc" is not a whole number/],
      [["rollback", "../../x"], /unknown behavior "..\/..\/x" for autotune rollback/],
      [
        ["rollback", "tool-caling"],
        /unknown behavior "tool-caling" for autotune rollback \(did you mean tool-calling\?\)/
      ],
      [["rubric", "shw"], /unknown command "rubric shw" \(did you mean show\?\)/],
      [["packs", "--diff"], /--diff needs a value/],
      [["approve"], /autotune approve needs a behavior/],
      [["report", "--out", "/tmp"], /--out \/tmp: is a directory; give the file's path/],
      [["label", "--import", "/nonexistent-grades.jsonl"], /--import \/nonexistent-grades.jsonl: does not exist/],
      // Without a terminal, label says how to grade elsewhere: a usage matter, not "invalid configuration".
      [["label"], /^autotune: error: autotune label grades turns in a terminal; to grade elsewhere/]
    ]
    for (const [args, line] of cases) {
      const r = await runCli([...args, "--json"], env)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1)
      expect(errorLines(r.stderr)[0], args.join(" ")).toMatch(line)
      expect(jsonOut(r)["error"], args.join(" ")).toMatchObject({ tag: "UsageError" })
    }
  })

  it("help fits a screen per command, describes every option, and lists the global flags once", async () => {
    const root = await runCli(["--help"], {})
    expect(root.code).toBe(0)
    expect(root.stdout.split("\n").length).toBeLessThanOrEqual(60)
    expect(root.stdout).not.toContain("A user-defined piece of text")
    for (const flag of ["--config PATH", "--json", "--daily-budget-usd N", "--db-path PATH"])
      expect(root.stdout).toContain(flag)
    for (const command of ["status", "rollback", "report", "label", "rubric"]) {
      const help = await runCli([command, "--help"], {})
      expect(help.code, command).toBe(0)
      expect(help.stdout.split("\n").length, command).toBeLessThanOrEqual(25)
      expect(help.stdout, command).not.toContain("--daily-budget-usd")
      expect(help.stdout, command).not.toContain("A user-defined piece of text")
    }
    expect((await runCli(["report", "--help"], {})).stdout).toMatch(/--days N\s+Days the page covers/)
  })

  it("the config file is checked like the environment: unknown keys, JSON errors by line and column, missing or odd files", async () => {
    const home = tempHome()
    const env = { AUTOTUNE_HOME: home }
    const config = (name: string, text: string) => {
      fs.writeFileSync(path.join(home, name), text)
      return path.join(home, name)
    }
    const typo = await runCli(
      ["status", "--config", config("typo.json", JSON.stringify({ deploy: { canaryFracton: 0.2 } }))],
      env
    )
    expect(typo.code).toBe(2)
    expect(errorLines(typo.stderr)[0]).toContain("deploy.canaryFracton")
    expect(errorLines(typo.stderr)[0]).toContain("did you mean deploy.canaryFraction?")
    const broken = await runCli(
      ["status", "--config", config("broken.json", '{\n  "intervalMinutes": 5,\n  "retentionDays": }\n')],
      env
    )
    expect(broken.code).toBe(2)
    expect(errorLines(broken.stderr)[0]).toContain("not valid JSON at line 3, column 20")
    const missing = await runCli(["status", "--config", path.join(home, "missing.json")], env)
    expect(missing.code).toBe(2)
    expect(errorLines(missing.stderr)[0]).toMatch(/missing\.json\): does not exist/)
    expect(fs.existsSync(path.join(home, "autotune.db"))).toBe(false)
    fs.mkdirSync(path.join(home, "dir.json"))
    expect((await runCli(["status", "--config", path.join(home, "dir.json")], env)).code).toBe(2)
    // A FIFO as the config file: refused at once (reading it would block for good).
    execFileSync("mkfifo", [path.join(home, "fifo.json")])
    const started = Date.now()
    const fifo = await runCli(["status", "--config", path.join(home, "fifo.json")], env, { timeoutMs: 10_000 })
    expect(fifo.code).toBe(2)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(errorLines(fifo.stderr)[0]).toContain("not a regular file")
    // A file holding every key (what `init` wrote before: 1.1's nested keys, 2.0's every setting) is accepted.
    const defaults = jsonOut(await runCli(["config", "--json"], env)) as {
      settings: Record<string, { value: unknown }>
    }
    // (Secrets are shown masked: an empty one stands in.)
    const everything = toConfigFile(
      Object.fromEntries(
        Object.entries(defaults.settings).map(([k, v]) => [
          k,
          SETTINGS[k as keyof AppConfig].secret === true ? "" : v.value
        ])
      ) as unknown as AppConfig
    )
    const full = await runCli(["config", "--config", config("full.json", JSON.stringify(everything))], env)
    expect(full.code, full.stderr).toBe(0)
  })

  it("init writes only what the person chose: --yes a short file, nothing from the environment, and the next command", async () => {
    const home = tempHome()
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:9",
      AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "1",
      AUTOTUNE_DAILY_BUDGET_USD: "1"
    }
    const r = await runCli(["init", "--yes"], env)
    expect(r.code).toBe(0)
    const written = JSON.parse(fs.readFileSync(path.join(home, "autotune.json"), "utf8")) as Record<string, unknown>
    expect(written).toEqual({
      behaviors: expect.any(Array),
      deploy: { canaryFraction: 0.1, canarySteps: [0.1, 0.5] },
      llm: { dailyBudgetUsd: 5 }
    })
    expect(JSON.stringify(written)).not.toContain("abcdefghijklmnopqrstuvwxyz")
    expect(r.stdout.trim().split("\n").at(-1)).toMatch(/^next: `autotune once`/)
    const config = jsonOut(await runCli(["config", "--json"], env)) as { settings: Record<string, { source: string }> }
    for (const key of ["anthropicApiKey", "anthropicBaseUrl", "judgeBatchPollSeconds", "dailyBudgetUsd"])
      expect(config.settings[key]?.source, key).toBe("env")
    // A flag typed for init is what the person chose: written.
    const typed = await runCli(["init", "--yes", "--force", "--db-path", path.join(home, "store.db")], env)
    expect(typed.code).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(home, "autotune.json"), "utf8")).dbPath).toBe(
      path.join(home, "store.db")
    )
  })

  it("a run before DotClaw is installed decides nothing: the next run after it uses DotClaw's home, says so once, and leaves its mode", async () => {
    const userHome = tempHome("autotune-user-")
    const first = await runCli(["once"], { HOME: userHome })
    expect(first.code).toBe(0)
    expect(fs.existsSync(path.join(userHome, ".config", "dotclaw", "autotune.db"))).toBe(true)
    // DotClaw is installed: its home, created by DotClaw, readable by its container's user.
    const dotclaw = path.join(userHome, ".dotclaw")
    fs.mkdirSync(path.join(dotclaw, "traces"), { recursive: true, mode: 0o755 })
    fs.chmodSync(dotclaw, 0o755)
    fs.writeFileSync(path.join(dotclaw, "traces", traceFileName()), traceLines(0, 4))
    const after = await runCli(["once", "--json"], { HOME: userHome })
    expect(after.code).toBe(0)
    expect(
      (jsonOut(after) as { stages: { ingest: { summary: { ingested: number } } } }).stages.ingest.summary.ingested
    ).toBe(4)
    expect(fs.existsSync(path.join(dotclaw, "autotune.db"))).toBe(true)
    expect(after.stderr.split("\n").filter((l) => l.includes("holds no traces"))).toHaveLength(1)
    expect(fs.statSync(dotclaw).mode & 0o777).toBe(0o755)
  })

  it("the daemon checks its whole configuration before its first cycle: a bad value exits 2 with the documented line", async () => {
    const home = tempHome()
    const r = await runCli(["daemon"], { AUTOTUNE_HOME: home, AUTOTUNE_INTERVAL_MINUTES: "abc" }, { timeoutMs: 20_000 })
    expect(r.code).toBe(2)
    expect(errorLines(r.stderr)).toEqual([
      'autotune: error: invalid configuration: intervalMinutes (from env AUTOTUNE_INTERVAL_MINUTES): expected a number, got "abc"'
    ])
    expect(fs.existsSync(path.join(home, "autotune.db"))).toBe(false)
  })
})

describe("nothing waits past SIGTERM: each command ends within 5 s (built CLI)", () => {
  let fake: FakeProvider | undefined
  afterEach(async () => {
    await fake?.close()
    fake = undefined
  })

  it("a FIFO among the trace files is skipped with a warning, and ingest ends", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 3))
    execFileSync("mkfifo", [path.join(home, "traces", "trace-fifo.jsonl")])
    const r = await runCli(["ingest", "--json"], { AUTOTUNE_HOME: home }, { timeoutMs: 10_000 })
    expect(r.code).toBe(0)
    expect(jsonOut(r)).toMatchObject({ ingested: 3 })
    expect(r.stderr).toContain("trace-fifo.jsonl: a FIFO, socket or directory")
  })

  it("a provider that stalls mid-answer", async () => {
    fake = await startFakeProvider()
    fake.faults.push(...Array.from({ length: 50 }, () => ({ stallMidAnswer: true as const })))
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 10))
    const run = startCli(["once"], {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off"
    })
    for (const until = Date.now() + 20_000; fake.requests.length === 0 && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 50))
    expect(fake.requests.length).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 500))
    const stopped = await stopWithin(run)
    expect(stopped.ms).toBeLessThan(5_000)
    expect(fs.existsSync(path.join(home, "autotune.lock"))).toBe(false)
  })

  it("the run-lock wait", async () => {
    const home = tempHome()
    // A live holder: this test's own process, as a running autotune would write it.
    fs.writeFileSync(path.join(home, "autotune.lock"), `${process.pid} ${startTime(process.pid)} ${bootId()}`)
    const run = startCli(["once"], { AUTOTUNE_HOME: home })
    await new Promise((r) => setTimeout(r, 1_500))
    expect(run.child.exitCode).toBeNull()
    const stopped = await stopWithin(run)
    expect(stopped.ms).toBeLessThan(5_000)
  })
})

import { Effect, Logger } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { humanLogger } from "../src/cli/Output.js"
import { tempHome } from "./helpers/app.js"
import { killStrays, runCli } from "./helpers/cli.js"
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

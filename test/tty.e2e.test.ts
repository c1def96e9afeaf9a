import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv } from "./helpers/cli.js"
import { traceLines, traceFileName } from "./helpers/traces.js"

const BIN = path.resolve("dist/bin.js")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("on a terminal", () => {
  // `script` gives the command a pseudo-terminal, as an ssh session would.
  it("ingest shows a progress bar and a summary", () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 60_000))
    const out = execFileSync("script", ["-qec", `${process.execPath} ${BIN} ingest`, "/dev/null"], {
      env: { PATH: process.env["PATH"] ?? "", HOME: home, ...clockEnv(), AUTOTUNE_HOME: home, TERM: "xterm" },
      encoding: "utf8"
    })
    expect(out).toMatch(/ingest \[#*\.*\] +\d+%/)
    expect(out).toContain("60000 new trace(s)")
  })

  it("--help is coloured on a terminal, and plain with NO_COLOR set", () => {
    const help = (extra: Record<string, string>) =>
      execFileSync("script", ["-qec", `${process.execPath} ${BIN} --help`, "/dev/null"], {
        env: { PATH: process.env["PATH"] ?? "", HOME: tempHome(), TERM: "xterm", ...extra },
        encoding: "utf8"
      })
    expect(help({})).toMatch(/\x1b\[/)
    const plain = help({ NO_COLOR: "1" })
    expect(plain).toContain("USAGE")
    expect(plain).not.toMatch(/\x1b\[/)
  })

  it("the init wizard asks, hides the key, and writes a 0600 file", async () => {
    const home = tempHome()
    const session = `autotune-wizard-${process.pid}`
    execFileSync("tmux", [
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "160",
      "-y",
      "40",
      `AUTOTUNE_HOME=${home} ${process.execPath} ${BIN} init; sleep 20`
    ])
    const keys = (...k: Array<string>) => execFileSync("tmux", ["send-keys", "-t", session, ...k])
    const screen = () => execFileSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" })
    try {
      const waitFor = async (text: string) => {
        for (let i = 0; i < 100 && !screen().includes(text); i++) await sleep(100)
        expect(screen()).toContain(text)
      }
      await waitFor("Trace directory")
      for (const prompt of ["Prompt pack directory", "Database path", "LLM provider", "Anthropic API key"]) {
        keys("Enter")
        await waitFor(prompt)
      }
      keys("sk-ant-api03-wizardsecret0123456789")
      keys("Enter")
      await waitFor("OpenRouter API key")
      for (const prompt of ["Behaviors", "Canary share", "Tune behavior.json", "Redact"]) {
        keys("Enter")
        await waitFor(prompt)
      }
      keys("Enter")
      await waitFor("mode 0600")
      expect(screen()).not.toContain("wizardsecret")
      const file = path.join(home, "autotune.json")
      expect(fs.statSync(file).mode & 0o777).toBe(0o600)
      expect(JSON.parse(fs.readFileSync(file, "utf8")).anthropic.apiKey).toBe("sk-ant-api03-wizardsecret0123456789")
    } finally {
      spawnSync("tmux", ["kill-session", "-t", session])
    }
  })
})

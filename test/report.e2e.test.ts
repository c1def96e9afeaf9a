import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { launchChromium, openReport } from "./helpers/browser.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { traceLines, traceFileName } from "./helpers/traces.js"

describe("autotune report through the built CLI", () => {
  it("on a store with no data yet: a page that says so, drawn without an error, at the default path", async () => {
    const home = tempHome()
    const env = { AUTOTUNE_HOME: home }
    const result = await runCli(["report", "--json"], env)
    expect(result.code).toBe(0)
    const written = jsonOut(result) as { path: string; bytes: number; behaviors: Array<string> }
    expect(written.path).toBe(path.join(home, "report.html"))
    expect(written.behaviors).toHaveLength(6)
    expect(fs.statSync(written.path).mode & 0o777).toBe(0o600)
    const text = await runCli(["report", "--days", "7"], env)
    expect(text.stdout).toMatch(/^report: .*report\.html \(\d+ KB, 6 behaviors, last 7 days\)\n$/)
    const browser = await launchChromium()
    try {
      const page = await openReport(browser, written.path, { width: 1366 })
      expect(page.consoleErrors).toEqual([])
      expect(page.external).toEqual([])
      expect(page.charts).toEqual([])
      expect(page.text).toContain("No data yet")
      expect(page.text).toContain("no canary decision yet")
    } finally {
      await browser.close()
    }
  })

  it("refuses a window of days it cannot show, in one line, exit 2", async () => {
    const result = await runCli(["report", "--days", "0"], { AUTOTUNE_HOME: tempHome() })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("--days")
  })

  it("once writes no page with AUTOTUNE_REPORT=0, and writes one to AUTOTUNE_REPORT_PATH otherwise", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, 5))
    const off = await runCli(["once", "--json"], { AUTOTUNE_HOME: home, AUTOTUNE_REPORT: "0" })
    expect((jsonOut(off) as { stages: { report: { status: string; why: string } } }).stages.report).toEqual({
      status: "skipped",
      why: "AUTOTUNE_REPORT=0"
    })
    expect(fs.existsSync(path.join(home, "report.html"))).toBe(false)
    const target = path.join(home, "www", "autotune.html")
    const on = await runCli(["once"], { AUTOTUNE_HOME: home, AUTOTUNE_REPORT_PATH: target })
    expect(on.code).toBe(0)
    expect(on.stdout).toContain(`report: ${target}`)
    expect(fs.readFileSync(target, "utf8")).toContain("<h2>At a glance</h2>")
  })
})

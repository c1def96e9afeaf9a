import Database from "better-sqlite3"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { labelAgreement, levelOf, spearman, weightedKappa } from "../src/judge/Agreement.js"
import { parseImportLine } from "../src/judge/Labels.js"
import { tempHome } from "./helpers/app.js"
import { launchChromium, openReport } from "./helpers/browser.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, markerScorer, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"
const BIN = path.resolve("dist/bin.js")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("agreement with a person's grades, pure", () => {
  it("Spearman and weighted kappa: 1 when they agree, negative when reversed, intervals that contain the value", () => {
    expect(spearman([0.1, 0.3, 0.5, 0.7, 0.9], [1, 2, 3, 4, 5])).toBeCloseTo(1, 10)
    expect(spearman([0.1, 0.3, 0.5, 0.7, 0.9], [5, 4, 3, 2, 1])).toBeCloseTo(-1, 10)
    expect(spearman([0.5, 0.5, 0.5], [1, 2, 3])).toBeNull()
    expect(weightedKappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])).toBeCloseTo(1, 10)
    expect(weightedKappa([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])!).toBeLessThan(0)
    expect([0, 0.19, 0.2, 0.5, 0.79, 0.8, 1].map(levelOf)).toEqual([1, 1, 2, 3, 4, 5, 5])
    const pairs = Array.from({ length: 40 }, (_, i) => ({
      score: (i % 5) / 5 + 0.1,
      grade: (i % 5) + 1 - (i % 7 === 0 ? 1 : 0) || 1
    }))
    const a = labelAgreement(pairs)
    expect(a.n).toBe(40)
    expect(a.spearman!).toBeGreaterThan(0.8)
    expect(a.spearmanLow!).toBeLessThan(a.spearman!)
    expect(a.spearmanHigh!).toBeGreaterThan(a.spearman!)
    expect(a.kappaLow!).toBeLessThanOrEqual(a.kappa!)
    expect(a.kappaHigh!).toBeGreaterThanOrEqual(a.kappa!)
    // Unrelated grades: the interval straddles 0.
    const noise = labelAgreement(
      Array.from({ length: 60 }, (_, i) => ({ score: ((i * 37) % 100) / 100, grade: ((i * 13) % 5) + 1 }))
    )
    expect(noise.spearmanLow!).toBeLessThan(0)
    expect(noise.spearmanHigh!).toBeGreaterThan(0)
    expect(labelAgreement([])).toMatchObject({ n: 0, spearman: null, kappa: null })
  })

  it("an import line is a grade, ungraded, or one sentence saying what is wrong", () => {
    expect(parseImportLine(`{"trace_id":"t1","behavior":"${B}","grade":4}`)).toMatchObject({
      _tag: "Right",
      right: { traceId: "t1", behavior: B, grade: 4 }
    })
    expect(parseImportLine(`{"trace_id":"t1","behavior":"${B}","grade":null}`)).toMatchObject({
      _tag: "Right",
      right: "ungraded"
    })
    expect(parseImportLine("{oops")).toMatchObject({ _tag: "Left", left: "not a JSON object" })
    expect(parseImportLine(`{"trace_id":"t1","behavior":"${B}","grade":7}`)).toMatchObject({
      _tag: "Left",
      left: "grade must be a whole number from 1 to 5 (or null), got 7"
    })
    expect(parseImportLine(`{"trace_id":"t1","behavior":"tone","grade":3}`)).toMatchObject({
      _tag: "Left",
      left: expect.stringContaining('got "tone"')
    })
    expect(parseImportLine(`{"behavior":"${B}","grade":3}`)).toMatchObject({
      _tag: "Left",
      left: "trace_id is missing"
    })
  })
})

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider(markerScorer)
})
afterAll(async () => {
  await fake.close()
})

/** A home with 30 judged turns whose judge scores are 0.1, 0.3, 0.5, 0.7, 0.9 in turn. */
const judgedHome = async () => {
  const home = tempHome()
  let body = ""
  const start = Date.now() - 3_600_000
  for (let i = 0; i < 30; i++) {
    const at = start + i * 60_000
    const t = traceObject(i, { text: `question ${i} SCORE=${((i % 5) * 2 + 1) / 10}` })
    body +=
      JSON.stringify({ ...t, trace_id: `trace-label-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) +
      "\n"
  }
  fs.writeFileSync(path.join(home, "traces", "trace-label.jsonl"), body)
  const env = {
    AUTOTUNE_HOME: home,
    ANTHROPIC_API_KEY: "k",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_JUDGE_BATCH: "off",
    AUTOTUNE_BEHAVIORS: B,
    AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
    AUTOTUNE_JUDGE_AUDIT_SHARE: "0"
  }
  const once = await runCli(["once", "--json"], env)
  expect(once.code, once.stderr).toBe(0)
  return { home, env }
}

describe("autotune label", () => {
  it("--export writes the judged turns (0600, grade null); --import stores the grades and refuses bad lines one line each; status and eval show the agreement", async () => {
    const { home, env } = await judgedHome()
    const file = path.join(home, "turns.jsonl")
    const exported = jsonOut(await runCli(["label", "--export", file, "--json"], env)) as {
      turns: number
      graded: number
    }
    expect(exported).toMatchObject({ turns: 30, graded: 0 })
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    const lines = fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { trace_id: string; grade: number | null; judge_score: number; message: string })
    expect(lines.every((l) => l.grade === null && typeof l.message === "string")).toBe(true)
    // A person grades 20 of them as the judge would, leaves 10 ungraded, and some lines go wrong.
    const graded = lines.map((l, i) => (i < 20 ? { ...l, grade: levelOf(l.judge_score) } : l))
    const bad = [
      "{not json",
      JSON.stringify({ trace_id: "trace-label-1", behavior: B, grade: 9 }),
      JSON.stringify({ trace_id: "trace-nowhere", behavior: B, grade: 3 })
    ]
    fs.writeFileSync(file, [...graded.map((l) => JSON.stringify(l)), ...bad].join("\n") + "\n")
    const imported = await runCli(["label", "--import", file, "--json"], env)
    expect(imported.code).toBe(1)
    expect(jsonOut(imported)).toMatchObject({
      imported: 20,
      ungraded: 10,
      refused: [
        expect.stringContaining("line 31: not a JSON object"),
        expect.stringContaining("line 32: grade must be"),
        expect.stringContaining("line 33: no turn trace-nowhere")
      ]
    })
    const refusedLines = imported.stderr.split("\n").filter((l) => l.includes("refused") || /line 3[123]/.test(l))
    expect(refusedLines.filter((l) => /line 3[123]:/.test(l))).toHaveLength(3)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    expect((db.prepare("SELECT COUNT(*) AS n FROM labels").get() as { n: number }).n).toBe(20)
    expect(
      (db.prepare("SELECT COUNT(*) AS n FROM labels WHERE trace_id = 'trace-nowhere'").get() as { n: number }).n
    ).toBe(0)
    db.close()
    const status = jsonOut(await runCli(["status", "--json"], env)) as {
      behaviors: Array<{ labelAgreement: { n: number; spearman: number; kappa: number } }>
    }
    expect(status.behaviors[0]!.labelAgreement).toMatchObject({ n: 20 })
    expect(status.behaviors[0]!.labelAgreement.spearman).toBeCloseTo(1, 6)
    expect(status.behaviors[0]!.labelAgreement.kappa).toBeCloseTo(1, 6)
    expect((await runCli(["status"], env)).stdout).toContain("GRADES RHO/KAPPA")
    // The report draws the calibration: per judge-score band, the mean grade (here the band itself).
    const out = path.join(home, "report.html")
    expect((await runCli(["report", "--out", out], env)).code).toBe(0)
    const browser = await launchChromium()
    try {
      const page = await openReport(browser, out, { width: 1200 })
      expect(page.consoleErrors).toEqual([])
      const calibration = page.charts.find((c) => c.chart === "calibration")
      expect(calibration?.marks).toBeGreaterThan(0)
      expect(page.text).toContain("mean grade")
      expect(page.text).toMatch(/Agreement with your grades: Spearman 1\.00 .* over 20 graded turns/)
    } finally {
      await browser.close()
    }
    // Export again: the graded ones come back with their grades.
    expect(jsonOut(await runCli(["label", "--export", file, "--json"], env))).toMatchObject({ turns: 30, graded: 20 })
  }, 120_000)

  it("without a terminal: one line saying how to grade elsewhere, exit 2", async () => {
    const { env } = await judgedHome()
    const r = await runCli(["label"], env)
    expect(r.code).toBe(2)
    const errors = r.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("autotune: error"))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain("autotune label --export turns.jsonl")
  }, 60_000)

  it("in a terminal: one key a grade, u undoes, s skips, q quits; grades are kept as they are given", async () => {
    const { home, env } = await judgedHome()
    const session = `autotune-label-${process.pid}`
    const vars = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")
    execFileSync("tmux", [
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "160",
      "-y",
      "50",
      `${vars} ${process.execPath} ${BIN} label ${B}; sleep 20`
    ])
    const keys = (...k: Array<string>) => execFileSync("tmux", ["send-keys", "-t", session, ...k])
    const screen = () => execFileSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" })
    const waitFor = async (text: string) => {
      for (let i = 0; i < 150 && !screen().includes(text); i++) await sleep(100)
      expect(screen()).toContain(text)
    }
    const grades = () => {
      const db = new Database(path.join(home, "autotune.db"), { readonly: true })
      const rows = db.prepare("SELECT trace_id AS id, grade FROM labels ORDER BY labeled_at").all() as Array<{
        id: string
        grade: number
      }>
      db.close()
      return rows
    }
    try {
      await waitFor("0 graded, 30 to go")
      expect(screen()).toContain("── reply ──")
      expect(screen()).toContain("judge: ")
      keys("4")
      await waitFor("1 graded, 29 to go")
      expect(grades()).toHaveLength(1)
      keys("u")
      await waitFor("0 graded, 30 to go")
      expect(grades()).toHaveLength(0)
      keys("2")
      await waitFor("1 graded, 29 to go")
      keys("s")
      await waitFor("1 graded, 28 to go")
      keys("5")
      await waitFor("2 graded, 27 to go")
      keys("q")
      await waitFor("stored 2 grade(s)")
      expect(grades().map((g) => g.grade)).toEqual([2, 5])
    } finally {
      spawnSync("tmux", ["kill-session", "-t", session])
    }
  }, 120_000)
})

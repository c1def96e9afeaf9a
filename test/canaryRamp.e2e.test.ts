import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Plan, rng, simulate } from "../src/canary/Simulate.js"
import { SETTINGS } from "../src/config/Table.js"
import { tempHome } from "./helpers/app.js"
import { clockAt, jsonOut, runCli } from "./helpers/cli.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"
const DAY = 86_400_000
const PER_DAY = 48
const world = improvableWorld([
  { instructions: "Lead with the answer. BETTER." },
  { instructions: "Be verbose and thorough." }
])

let fake: FakeProvider
beforeAll(async () => {
  fake = await startFakeProvider(world)
})
afterAll(async () => {
  await fake.close()
})

const envOf = (home: string) => ({
  AUTOTUNE_HOME: home,
  ANTHROPIC_API_KEY: "k",
  ANTHROPIC_BASE_URL: fake.url,
  AUTOTUNE_JUDGE_BATCH: "off",
  AUTOTUNE_BEHAVIORS: B,
  AUTOTUNE_SAMPLE_SIZE: "10",
  AUTOTUNE_EVAL_MAX_TRACES: "1000",
  AUTOTUNE_JUDGE_UNSURE_HIGH: "0.5",
  AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
  AUTOTUNE_LLM_CONCURRENCY: "16",
  AUTOTUNE_REPORT: "0"
})

/**
 * DotClaw's pack loader (docs/dotclaw-formats.md §2), written apart from autotune: with both files present the
 * canary serves `metadata.canaryPercent` of requests at random, else the active pack; the served version goes
 * into the trace.
 */
const dotclawServes = (prompts: string, r: () => number): string => {
  const read = (f: string) =>
    fs.existsSync(f)
      ? (JSON.parse(fs.readFileSync(f, "utf8")) as { version: string; metadata?: { canaryPercent?: number } })
      : undefined
  const active = read(path.join(prompts, `${B}.json`))
  const canary = read(path.join(prompts, `${B}.canary.json`))
  if (canary !== undefined && active === undefined) return canary.version
  if (canary !== undefined && r() * 100 < (canary.metadata?.canaryPercent ?? 10)) return canary.version
  return active!.version
}

/** One simulated day of DotClaw traffic: turns spread over the day, each served by the loader as it stands. */
const serveDay = (
  home: string,
  day: number,
  start: number,
  r: () => number,
  score: (canary: boolean) => { score: number; error?: boolean }
) => {
  const prompts = path.join(home, "prompts")
  const canaryVersion = fs.existsSync(path.join(prompts, `${B}.canary.json`))
    ? (JSON.parse(fs.readFileSync(path.join(prompts, `${B}.canary.json`), "utf8")) as { version: string }).version
    : undefined
  let body = ""
  let canaryTurns = 0
  for (let i = 0; i < PER_DAY; i++) {
    const at = start + (day - 1) * DAY + Math.floor(((i + 0.5) * DAY) / PER_DAY)
    const version = dotclawServes(prompts, r)
    const isCanary = version === canaryVersion
    if (isCanary) canaryTurns++
    const s = score(isCanary)
    const t = traceObject(day * 1000 + i, {
      text: `day ${day} turn ${i} SCORE=${s.score}`,
      error: s.error ?? false,
      packVersions: { [B]: version }
    })
    body +=
      JSON.stringify({ ...t, trace_id: `d${day}-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) + "\n"
  }
  fs.appendFileSync(path.join(home, "traces", `trace-day${day}.jsonl`), body)
  return canaryTurns
}

type Once = {
  stages: {
    deploy: {
      summary: {
        deployed: Record<string, { version: string }>
        decisions: Record<string, { action: string; percent?: number; step?: { kind: string; reason: string } }>
      }
    }
  }
}

/** The first cycle at the test's day 0: a canary at 10% beside the baseline. */
const shipCanary = async (home: string, start: number) => {
  let body = ""
  for (let i = 0; i < 30; i++) {
    const t = traceObject(i, { text: `history ${i} SCORE=0.4` })
    const at = start - 3 * 3_600_000 + i * 20_000
    body += JSON.stringify({ ...t, trace_id: `h-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) + "\n"
  }
  fs.writeFileSync(path.join(home, "traces", "trace-history.jsonl"), body)
  const first = await runCli(["once", "--json"], { ...envOf(home), ...clockAt(start) })
  expect(first.code).toBe(0)
  const canary = JSON.parse(fs.readFileSync(path.join(home, "prompts", `${B}.canary.json`), "utf8")) as {
    version: string
    metadata: { canaryPercent: number }
  }
  expect(canary.metadata.canaryPercent).toBe(10)
  return canary.version
}

const percentOnDisk = (home: string) =>
  (
    JSON.parse(fs.readFileSync(path.join(home, "prompts", `${B}.canary.json`), "utf8")) as {
      metadata: { canaryPercent: number }
    }
  ).metadata.canaryPercent

describe("a canary's share steps up as it earns it, through the built CLI over simulated days", () => {
  it("starts at 10%, steps to 50% once the gates pass (DotClaw serves the new share), and is promoted when the Monte Carlo expects it", async () => {
    const home = tempHome()
    const start = Date.now()
    const version = await shipCanary(home, start)
    const r = rng(7)
    const good = (canary: boolean) => ({ score: canary ? 0.9 : 0.6 })
    const log: Array<{ day: number; percent: number; canaryTurns: number; action: string }> = []
    let promotedOn: number | undefined
    for (let day = 1; day <= 14 && promotedOn === undefined; day++) {
      const percent = percentOnDisk(home)
      const canaryTurns = serveDay(home, day, start, r, good)
      const run = await runCli(["once", "--json"], { ...envOf(home), ...clockAt(start + day * DAY) })
      expect(run.code, run.stderr).toBe(0)
      const decision = (jsonOut(run) as Once).stages.deploy.summary.decisions[B]!
      log.push({ day, percent, canaryTurns, action: decision.action })
      if (decision.step?.kind === "up") {
        expect(decision.step.reason).toContain("stepped up from 10% to 50%")
        expect(run.stderr).toContain(`canary ${version} stepped up from 10% to 50%`)
        expect(percentOnDisk(home)).toBe(50)
        expect(dotclawAccepts(path.join(home, "prompts", `${B}.canary.json`))).toBe(true)
        const status = jsonOut(
          await runCli(["status", "--json"], { ...envOf(home), ...clockAt(start + day * DAY + 60_000) })
        ) as {
          behaviors: Array<{
            shares: Array<{ percent: number; reason: string }>
            expected: { turnsPerDay: number; text: string }
            samples: { canary: number; active: number }
            mean: { canary: number | null; active: number | null }
            pairs: number
          }>
        }
        expect(status.behaviors[0]!.shares.map((s) => s.percent)).toEqual([10, 50])
        // status shows the figures the decision used: the same turns, the same rule.
        const db = new Database(path.join(home, "autotune.db"), { readonly: true })
        const stored = JSON.parse(
          (
            db
              .prepare("SELECT figures_json AS f FROM canary_decisions WHERE behavior = ? ORDER BY id DESC LIMIT 1")
              .get(B) as { f: string }
          ).f
        ) as { nCanary: number; nActive: number; meanCanary: number; meanActive: number; pairs: number }
        db.close()
        expect(status.behaviors[0]!).toMatchObject({
          samples: { canary: stored.nCanary, active: stored.nActive },
          mean: { canary: stored.meanCanary, active: stored.meanActive },
          pairs: stored.pairs
        })
        expect(stored.pairs).toBeGreaterThan(0)
        expect(status.behaviors[0]!.expected.turnsPerDay).toBeGreaterThan(30)
        expect(status.behaviors[0]!.expected.text).toMatch(/^at \d+ turns a day, a \+0\.10 canary /)
      }
      if (decision.action === "promoted") promotedOn = day
    }
    const stepped = log.findIndex((l) => l.percent === 50)
    expect(stepped, JSON.stringify(log)).toBeGreaterThan(0)
    // The days served at 50%: DotClaw's loader read the new share, about half the turns went to the canary.
    const at50 = log.filter((l) => l.percent === 50)
    expect(at50.reduce((n, l) => n + l.canaryTurns, 0) / (at50.length * PER_DAY)).toBeGreaterThan(0.3)
    expect(
      log.filter((l) => l.percent === 10).reduce((n, l) => n + l.canaryTurns, 0) / (stepped * PER_DAY)
    ).toBeLessThan(0.3)
    expect(promotedOn, JSON.stringify(log)).toBeDefined()
    expect(JSON.parse(fs.readFileSync(path.join(home, "prompts", `${B}.json`), "utf8")).version).toBe(version)
    // The Monte Carlo of the same world (48 turns a day, scores 0.9 against 0.6, a look a day): the CLI decides
    // within the days most simulated lives take.
    const plan: Plan = {
      thresholds: {
        minImprovement: 0.02,
        minSamples: 20,
        maxSamples: 1000,
        maxAgeMs: 14 * DAY,
        healthWindowMs: DAY,
        maxErrorRate: 0.12,
        maxToolFailureRate: 0.25,
        maxErrorRateDelta: 0.05,
        maxToolFailureRateDelta: 0.12,
        maxNegativeRateDelta: 0.1
      },
      start: 0.1,
      steps: [0.1, 0.5],
      stepMinTurns: SETTINGS.canaryStepMinTurns.default("") as number,
      pairs: 6,
      lookHours: 24
    }
    const days = Array.from({ length: 200 }, (_, i) =>
      simulate(
        { turnsPerDay: PER_DAY, turn: (_r, c) => ({ score: c ? 0.9 : 0.6, error: false, toolFailure: null }) },
        plan,
        11 + i
      )
    )
      .filter((l) => l.action === "promote")
      .map((l) => Math.round(l.days))
      .sort((a, b) => a - b)
    expect(days.length).toBeGreaterThan(190)
    expect(promotedOn!).toBeGreaterThanOrEqual(days[Math.floor(days.length * 0.02)]!)
    expect(promotedOn!).toBeLessThanOrEqual(days[Math.floor(days.length * 0.98)]!)
  }, 240_000)

  it("steps down or rolls back when the canary turns bad at 50%, and a kill -9 during a share change never leaves a broken or lone pack", async () => {
    const home = tempHome()
    const start = Date.now()
    await shipCanary(home, start)
    const r = rng(11)
    const prompts = path.join(home, "prompts")
    let day = 0
    // Good days until it steps up.
    while (percentOnDisk(home) === 10 && day < 6) {
      day++
      serveDay(home, day, start, r, (c) => ({ score: c ? 0.9 : 0.6 }))
      const run = await runCli(["once", "--json"], { ...envOf(home), ...clockAt(start + day * DAY) })
      expect(run.code, run.stderr).toBe(0)
    }
    expect(percentOnDisk(home)).toBe(50)

    // Killed between the store and the file: the store says 50%, the file still 10% (and a temporary file left).
    const canaryFile = path.join(prompts, `${B}.canary.json`)
    const pack = JSON.parse(fs.readFileSync(canaryFile, "utf8")) as { metadata: Record<string, unknown> }
    fs.writeFileSync(
      canaryFile,
      JSON.stringify({ ...pack, metadata: { ...pack.metadata, canaryPercent: 10 } }, null, 2)
    )
    fs.writeFileSync(path.join(prompts, `.${B}.canary.json.999.abcd.tmp`), "{ half")
    const repaired = await runCli(["deploy", "--json"], { ...envOf(home), ...clockAt(start + day * DAY + 60_000) })
    expect(repaired.code, repaired.stderr).toBe(0)
    expect(percentOnDisk(home)).toBe(50)

    // Then the canary's turns start failing; a cycle is killed at a random moment while it may be changing the share.
    day++
    serveDay(home, day, start, r, (c) => ({ score: c ? 0.9 : 0.6, error: c }))
    const kr = rng(5)
    for (let attempt = 0; attempt < 6; attempt++) {
      const child = spawn(process.execPath, [path.resolve("dist/bin.js"), "deploy", "--json"], {
        env: { PATH: process.env["PATH"] ?? "", HOME: home, ...envOf(home), ...clockAt(start + day * DAY) },
        stdio: "ignore"
      })
      const exited = new Promise((resolve) => child.once("exit", resolve))
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.floor(kr() * 900)))
      child.kill("SIGKILL")
      await exited
      // DotClaw never sees a broken canary, nor a canary without the active pack beside it.
      expect(dotclawAccepts(path.join(prompts, `${B}.json`))).toBe(true)
      if (fs.existsSync(canaryFile)) expect(dotclawAccepts(canaryFile)).toBe(true)
    }
    let outcome: { action: string; step?: { kind: string } } | undefined
    for (
      let extra = 0;
      extra < 3 && (outcome === undefined || (outcome.action === "waiting" && outcome.step?.kind !== "down"));
      extra++
    ) {
      if (extra > 0) {
        day++
        serveDay(home, day, start, r, (c) => ({ score: c ? 0.9 : 0.6, error: c }))
      }
      const run = await runCli(["once", "--json"], { ...envOf(home), ...clockAt(start + day * DAY + 120_000) })
      expect(run.code, run.stderr).toBe(0)
      outcome = (jsonOut(run) as Once).stages.deploy.summary.decisions[B]!
    }
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const actions = db.prepare("SELECT action, detail_json AS d FROM deployments ORDER BY id").all() as Array<{
      action: string
      d: string
    }>
    db.close()
    const down = actions.find((a) => a.action === "canary_step" && (JSON.parse(a.d) as { to: number }).to === 10)
    const rolledBack = actions.some((a) => a.action === "rolled_back")
    expect(down !== undefined || rolledBack, JSON.stringify(actions.map((a) => a.action))).toBe(true)
    if (rolledBack) expect(fs.existsSync(canaryFile)).toBe(false)
    else expect(percentOnDisk(home)).toBe(10)
    expect(dotclawAccepts(path.join(prompts, `${B}.json`))).toBe(true)
  }, 240_000)
})

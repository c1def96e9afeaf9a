import Database from "better-sqlite3"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { CanaryMonitor } from "../src/canary/Canary.js"
import type { ConfigKey } from "../src/config/Table.js"
import { Deployer } from "../src/canary/Deployer.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import { fullLayer, tempHome } from "./helpers/app.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { traceLine } from "./helpers/traces.js"

const B = "response-quality" as const

const world = (overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const home = tempHome()
  const layer = fullLayer(home, undefined, { behaviors: [B], ...overrides })
  const run = <A, E>(effect: Effect.Effect<A, E, Deployer | CanaryMonitor | TraceSource>) =>
    Effect.runPromise(effect.pipe(Effect.provide(layer)))
  const prompts = path.join(home, "prompts")
  return { home, run, prompts, active: path.join(prompts, `${B}.json`), canary: path.join(prompts, `${B}.canary.json`) }
}
const read = (file: string) => JSON.parse(fs.readFileSync(file, "utf8"))

/** Turns served by `version`, `perHour` an hour for `hours` hours up to now, each with a stored judge score. */
const served = async (
  w: ReturnType<typeof world>,
  version: string,
  hours: number,
  perHour: number,
  score: (i: number) => number,
  opts: { error?: (i: number) => boolean; start?: number } = {}
) => {
  const start = opts.start ?? Date.now() - hours * 3_600_000
  let body = ""
  const ids: Array<[string, number]> = []
  for (let i = 0; i < hours * perHour; i++) {
    const at = start + (i * 3_600_000) / perHour + 1000
    const line = JSON.parse(traceLine(i, { packVersions: { [B]: version }, error: opts.error?.(i) ?? false }))
    line.trace_id = `${version}-${i}`
    line.timestamp = new Date(at).toISOString()
    line.created_at = at
    body += JSON.stringify(line) + "\n"
    ids.push([line.trace_id, score(i)])
  }
  fs.appendFileSync(path.join(w.home, "traces", `trace-${version}.jsonl`), body)
  await w.run(Effect.flatMap(TraceSource, (s) => s.ingest()))
  const db = new Database(path.join(w.home, "autotune.db"))
  const insert = db.prepare(
    "INSERT OR REPLACE INTO trace_scores (trace_id, behavior, rubric_version, score, stage1_score, stage2_score, reason, created_at) VALUES (?, ?, 'response-quality@1', ?, ?, NULL, 'test', ?)"
  )
  for (const [id, s] of ids) insert.run(id, B, s, s, Date.now())
  db.close()
}

/** The canary went out at `start` (the traces are placed in the past). */
const backdate = (w: ReturnType<typeof world>, start: number) => {
  const db = new Database(path.join(w.home, "autotune.db"))
  db.prepare("UPDATE deployments SET created_at = ? WHERE action = 'canary'").run(start)
  db.close()
}

const wobble = (i: number, base: number) => base + ((i * 7919) % 11) / 50 - 0.1

describe("Deployer", () => {
  it("writes the baseline as active first, then the canary with canaryPercent, both accepted by DotClaw's rules", async () => {
    const w = world()
    const result = await w.run(
      Effect.flatMap(Deployer, (d) =>
        d.deploy(
          B,
          { instructions: "Be brief and correct.", lineage: { run: "t" } },
          { instructions: "Baseline text." }
        )
      )
    )
    expect(result.as).toBe("canary")
    expect(dotclawAccepts(w.active)).toBe(true)
    expect(dotclawAccepts(w.canary)).toBe(true)
    expect(read(w.active).instructions).toBe("Baseline text.")
    expect(read(w.canary)).toMatchObject({
      behavior: B,
      version: result.version,
      instructions: "Be brief and correct.",
      demos: [],
      metadata: { canaryPercent: 10 }
    })
    expect(read(w.canary).version > read(w.active).version).toBe(true)
    // A second deployment while the canary is out is refused.
    const again = await w.run(
      Effect.flip(
        Effect.flatMap(Deployer, (d) => d.deploy(B, { instructions: "Other.", lineage: {} }, { instructions: "x" }))
      )
    )
    expect(again._tag).toBe("DeployRejected")
  })

  it("deploys straight as active when AUTOTUNE_CANARY_FRACTION is 1", async () => {
    const w = world({ canaryFraction: 1 })
    const result = await w.run(
      Effect.flatMap(Deployer, (d) => d.deploy(B, { instructions: "New.", lineage: {} }, { instructions: "Old." }))
    )
    expect(result.as).toBe("active")
    expect(read(w.active).instructions).toBe("New.")
    expect(fs.existsSync(w.canary)).toBe(false)
  })

  it("rollback removes the canary; rollback --to restores an earlier version", async () => {
    const w = world()
    const first = await w.run(
      Effect.flatMap(Deployer, (d) => d.deploy(B, { instructions: "One.", lineage: {} }, { instructions: "Zero." }))
    )
    const baseline = read(w.active).version as string
    await w.run(Effect.flatMap(Deployer, (d) => d.promote(B, { test: true })))
    expect(read(w.active).version).toBe(first.version)
    await w.run(
      Effect.flatMap(Deployer, (d) => d.deploy(B, { instructions: "Two.", lineage: {} }, { instructions: "One." }))
    )
    await w.run(Effect.flatMap(Deployer, (d) => d.rollback(B)))
    expect(fs.existsSync(w.canary)).toBe(false)
    await w.run(Effect.flatMap(Deployer, (d) => d.rollback(B, baseline)))
    expect(read(w.active)).toMatchObject({ version: baseline, instructions: "Zero." })
    expect(dotclawAccepts(w.active)).toBe(true)
    const history = await w.run(Effect.flatMap(Deployer, (d) => d.history(B)))
    expect(history.map((h) => h.action)).toEqual([
      "restored",
      "rolled_back",
      "canary",
      "promoted",
      "canary",
      "baseline"
    ])
  })

  it("never leaves a half-written pack, even when the writer is killed mid-write", async () => {
    const w = world()
    fs.mkdirSync(w.prompts, { recursive: true })
    const script = `
      import { Effect } from "effect"
      import { writeFileAtomic } from "${path.resolve("dist/store/Files.js")}"
      const body = (i) => JSON.stringify({ name: "p", version: "v" + i, behavior: "${B}", instructions: "x".repeat(200000 + i), demos: [] })
      for (let i = 0; ; i++) Effect.runSync(writeFileAtomic(${JSON.stringify(w.active)}, body(i), { file: 0o644, dir: 0o755 }))
    `
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: "ignore",
      cwd: process.cwd()
    })
    let reads = 0
    // The writer's first file, however long node takes to start on a busy machine; then 1.5 s of reads while it writes.
    for (const started = Date.now(); !fs.existsSync(w.active) && Date.now() - started < 30_000;)
      await new Promise((r) => setTimeout(r, 10))
    const deadline = Date.now() + 1500
    while (Date.now() < deadline) {
      if (fs.existsSync(w.active)) {
        expect(dotclawAccepts(w.active)).toBe(true)
        reads++
      }
      await new Promise((r) => setTimeout(r, 2))
    }
    child.kill("SIGKILL")
    await new Promise((r) => child.once("exit", r))
    expect(reads).toBeGreaterThan(20)
    expect(dotclawAccepts(w.active)).toBe(true)
  })
})

describe("CanaryMonitor", () => {
  const deployCanary = (w: ReturnType<typeof world>) =>
    w.run(
      Effect.flatMap(Deployer, (d) =>
        d.deploy(B, { instructions: "Canary.", lineage: {} }, { instructions: "Active." })
      )
    )

  /** A canary out for 12 hours, scoring 0.85 against the active pack's 0.6, every turn judged. */
  const betterCanary = async (over: Parameters<typeof world>[0] = {}) => {
    const w = world(over)
    const { version } = await deployCanary(w)
    const start = Date.now() - 12 * 3_600_000
    await served(w, read(w.active).version as string, 12, 90, (i) => wobble(i, 0.6), { start })
    await served(w, version, 12, 10, (i) => wobble(i, 0.85), { start })
    backdate(w, start)
    return { w, version }
  }

  it("promotes a better canary: it becomes the active pack, atomically, and the canary file goes", async () => {
    const { w, version } = await betterCanary()
    const outcome = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    expect(outcome.action).toBe("promoted")
    expect(read(w.active).version).toBe(version)
    expect(read(w.active).metadata.canaryPercent).toBeUndefined()
    expect(fs.existsSync(w.canary)).toBe(false)
    expect(dotclawAccepts(w.active)).toBe(true)
    const db = new Database(path.join(w.home, "autotune.db"), { readonly: true })
    const row = db.prepare("SELECT action, figures_json FROM canary_decisions").get() as {
      action: string
      figures_json: string
    }
    db.close()
    expect(row.action).toBe("promoted")
    expect(JSON.parse(row.figures_json)).toMatchObject({ rule: "score", nCanary: 120 })
  })

  it("bets only up to the first canary turn the judge has not scored yet; one it could not score is skipped", async () => {
    // Every active turn judged (no pair sample): which active turns the judge samples is drawn from the trace ids,
    // which carry the pack's version (a time and a random suffix), so with a sample the last canary turns may still
    // wait for partners, and the count of pairs would change from run to run.
    const { w, version } = await betterCanary({ judgeCanaryPairs: 0 })
    const db = new Database(path.join(w.home, "autotune.db"))
    db.prepare("DELETE FROM trace_scores WHERE trace_id = ?").run(`${version}-5`)
    db.close()
    const waiting = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    // The 5 pairs before it: not enough to promote yet, and nothing after it counts until it is judged.
    expect(waiting.figures).toMatchObject({ pairs: 5, nCanary: 119 })
    expect(waiting.action).toBe("waiting")
    // The judge gave up on it (unscored, never a score): it is missing for good and the rest count.
    const db2 = new Database(path.join(w.home, "autotune.db"))
    db2
      .prepare(
        "INSERT INTO judge_scores (trace_id, behavior, rubric_version, stage, model, status, score, reason, created_at) VALUES (?, ?, 'response-quality@1', 1, 'm', 'unscored', NULL, 'unreadable', ?)"
      )
      .run(`${version}-5`, B, Date.now())
    db2.close()
    const decided = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    expect(decided.action).toBe("promoted")
    expect(decided.figures?.pairs).toBe(119)
  })

  it("rolls back a worse canary and one that errors; keeps the active pack", async () => {
    for (const scenario of ["worse", "errors"] as const) {
      const w = world()
      const { version } = await deployCanary(w)
      const active = read(w.active).version as string
      const start = Date.now() - 12 * 3_600_000
      await served(w, active, 12, 90, (i) => wobble(i, 0.75), { start })
      await served(w, version, 12, 10, (i) => wobble(i, scenario === "worse" ? 0.5 : 0.75), {
        start,
        error: scenario === "errors" ? (i) => i % 3 === 0 : () => false
      })
      backdate(w, start)
      const outcome = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
      expect(outcome.action).toBe("rolled_back")
      if (scenario === "errors") expect(outcome.rule).toMatch(/^error/)
      expect(fs.existsSync(w.canary)).toBe(false)
      expect(read(w.active).version).toBe(active)
    }
  })

  it("waits on a canary no better than the active pack, and judges a canary placed by hand", async () => {
    const w = world()
    fs.mkdirSync(w.prompts, { recursive: true })
    fs.writeFileSync(
      w.active,
      JSON.stringify({ name: "mine", version: "1795467310669", behavior: B, instructions: "Mine." })
    )
    fs.writeFileSync(
      w.canary,
      JSON.stringify({
        name: "mine",
        version: "1795467310670",
        behavior: B,
        instructions: "Mine, better?",
        metadata: { canaryPercent: 10 }
      })
    )
    const start = Date.now() - 12 * 3_600_000
    fs.utimesSync(w.canary, new Date(start), new Date(start))
    await served(w, "1795467310669", 12, 90, (i) => wobble(i, 0.7), { start })
    await served(w, "1795467310670", 12, 10, (i) => wobble(i + 5, 0.7), { start })
    const outcome = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    expect(outcome).toMatchObject({ action: "waiting", canaryVersion: "1795467310670", activeVersion: "1795467310669" })
    expect(outcome.figures?.nCanary).toBe(120)
    expect(fs.existsSync(w.canary)).toBe(true)
  })

  it("expires an old canary without evidence as inconclusive (not a rollback)", async () => {
    const w = world({ canaryMaxDays: 0.25 })
    const { version } = await deployCanary(w)
    const active = read(w.active).version as string
    const start = Date.now() - 12 * 3_600_000
    await served(w, active, 12, 90, (i) => wobble(i, 0.7), { start })
    await served(w, version, 12, 10, (i) => wobble(i + 5, 0.7), { start })
    backdate(w, start)
    const outcome = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    expect(outcome.action).toBe("expired")
    expect(read(w.active).version).toBe(active)
    const history = await w.run(Effect.flatMap(Deployer, (d) => d.history(B)))
    expect(history[0]!.action).toBe("expired")
  })

  it("says so and leaves alone a canary file DotClaw would ignore", async () => {
    const w = world()
    fs.mkdirSync(w.prompts, { recursive: true })
    fs.writeFileSync(w.canary, JSON.stringify({ name: "x", version: "1", behavior: "tool-calling", instructions: "y" }))
    const outcome = await w.run(Effect.flatMap(CanaryMonitor, (m) => m.check(B)))
    expect(outcome.action).toBe("none")
    expect(outcome.reason).toContain("invalid")
  })
})

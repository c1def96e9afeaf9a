import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import type { ConfigKey } from "../src/config/Table.js"
import { Deployer } from "../src/canary/Deployer.js"
import { prune, pruneCutoff } from "../src/pipeline/Retention.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import { fullLayer, Settings, tempHome } from "./helpers/app.js"
import { traceLine } from "./helpers/traces.js"

const B = "response-quality" as const
const DAY = 86_400_000

const world = (overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const home = tempHome()
  const layer = fullLayer(home, undefined, { behaviors: [B], ...overrides })
  const run = <A, E>(
    effect: Effect.Effect<A, E, Deployer | TraceSource | Settings | import("@effect/sql").SqlClient.SqlClient>
  ) => Effect.runPromise(effect.pipe(Effect.provide(layer)))
  const dbPath = path.join(home, "autotune.db")
  return { home, run, dbPath }
}

/** `n` turns served by `version`, `daysAgo` days ago, each with a judge score and a reaction. */
const turns = async (w: ReturnType<typeof world>, version: string, daysAgo: number, n: number) => {
  const at = Date.now() - daysAgo * DAY
  let body = ""
  for (let i = 0; i < n; i++) {
    const line = JSON.parse(traceLine(i, { packVersions: { [B]: version } }))
    line.trace_id = `${version}-${daysAgo}-${i}`
    line.timestamp = new Date(at + i * 1000).toISOString()
    line.created_at = at + i * 1000
    body += JSON.stringify(line) + "\n"
  }
  fs.appendFileSync(path.join(w.home, "traces", `trace-${version}-${daysAgo}.jsonl`), body)
  await w.run(Effect.flatMap(TraceSource, (s) => s.ingest()))
  const db = new Database(w.dbPath)
  const score = db.prepare(
    "INSERT INTO trace_scores (trace_id, behavior, rubric_version, score, reason, created_at) VALUES (?, ?, 'response-quality@1', 0.7, 'ok', ?)"
  )
  const react = db.prepare(
    "INSERT INTO feedback (id, trace_id, feedback_type, created_at, created_ms, imported_at) VALUES (?, ?, 'positive', ?, ?, ?)"
  )
  for (let i = 0; i < n; i++) {
    const id = `${version}-${daysAgo}-${i}`
    score.run(id, B, at)
    react.run(`fb-${id}`, id, new Date(at + i * 1000).toISOString(), at + i * 1000, Date.now())
  }
  db.close()
}

const count = (dbPath: string, sql: string) => {
  const db = new Database(dbPath, { readonly: true })
  const n = (db.prepare(sql).get() as { n: number }).n
  db.close()
  return n
}

describe("pruneCutoff", () => {
  it("is retention days back, held back to six hours before the oldest live canary", () => {
    const now = 100 * DAY
    expect(pruneCutoff(now, 30, [])).toEqual({ cutoff: 70 * DAY, heldBy: null })
    expect(pruneCutoff(now, 30, [{ label: "a", startedAt: 80 * DAY }])).toEqual({ cutoff: 70 * DAY, heldBy: null })
    expect(
      pruneCutoff(now, 30, [
        { label: "a", startedAt: 60 * DAY },
        { label: "b", startedAt: 65 * DAY }
      ])
    ).toEqual({ cutoff: 60 * DAY - 6 * 3_600_000, heldBy: "a" })
  })
})

describe("retention", () => {
  it("prunes old traces with their scores, packs and reactions, keeps a live canary's turns and all history, and gives the pages back", async () => {
    const w = world({ retentionDays: 30 })
    await turns(w, "rq-1", 40, 300)
    await turns(w, "rq-1", 33, 50)
    await turns(w, "rq-canary", 33, 50)
    await turns(w, "rq-1", 2, 50)
    await w.run(
      Effect.flatMap(Deployer, (d) =>
        d.deploy(B, { instructions: "Canary.", lineage: {} }, { instructions: "Active." }, "rq-canary")
      )
    )
    const db = new Database(w.dbPath)
    db.prepare("UPDATE deployments SET created_at = ? WHERE action = 'canary'").run(Date.now() - 34 * DAY)
    const history = (db.prepare("SELECT COUNT(*) AS n FROM deployments").get() as { n: number }).n
    db.close()
    const sizeBefore = count(
      w.dbPath,
      "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
    )

    const summary = await w.run(prune())
    expect(summary).toMatchObject({ retentionDays: 30, traces: 300, heldBy: `${B} canary rq-canary` })
    // Each pruned trace: one judge score and one reaction and one pack row.
    expect(summary.derivedRows).toBe(900)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM traces")).toBe(150)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM trace_packs")).toBe(150)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM trace_scores")).toBe(150)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM feedback")).toBe(150)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM deployments")).toBe(history)
    expect(count(w.dbPath, "SELECT auto_vacuum AS n FROM pragma_auto_vacuum()")).toBe(2)
    expect(count(w.dbPath, "SELECT freelist_count AS n FROM pragma_freelist_count()")).toBe(0)
    expect(summary.bytesFreed).toBeGreaterThan(0)
    expect(count(w.dbPath, "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()")).toBe(
      sizeBefore - summary.bytesFreed
    )

    // Once the canary is gone, its old turns go too.
    await w.run(Effect.flatMap(Deployer, (d) => d.rollback(B)))
    expect((await w.run(prune())).traces).toBe(100)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM traces")).toBe(50)
  })

  it("keeps the newest reaction, so the import resumes where it was", async () => {
    const w = world({ retentionDays: 1 })
    await turns(w, "rq-1", 5, 3)
    await w.run(prune())
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM traces")).toBe(0)
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM feedback")).toBe(1)
  })

  it("converts a store made without incremental auto-vacuum once, then prunes with it", async () => {
    const w = world({ retentionDays: 30 })
    await turns(w, "rq-1", 40, 400)
    await turns(w, "rq-1", 2, 10)
    const db = new Database(w.dbPath)
    db.pragma("auto_vacuum = NONE")
    db.exec("VACUUM")
    db.close()
    expect(count(w.dbPath, "SELECT auto_vacuum AS n FROM pragma_auto_vacuum()")).toBe(0)
    const summary = await w.run(prune())
    expect(summary.traces).toBe(400)
    expect(summary.bytesFreed).toBeGreaterThan(0)
    expect(count(w.dbPath, "SELECT auto_vacuum AS n FROM pragma_auto_vacuum()")).toBe(2)
  })

  it("with AUTOTUNE_RETENTION_DAYS=0 keeps everything", async () => {
    const w = world({ retentionDays: 0 })
    await turns(w, "rq-1", 400, 5)
    expect(await w.run(prune())).toMatchObject({ traces: 0, cutoff: null })
    expect(count(w.dbPath, "SELECT COUNT(*) AS n FROM traces")).toBe(5)
  })
})

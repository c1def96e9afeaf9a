import * as NodeContext from "@effect/platform-node/NodeContext"
import { SqlClient } from "@effect/sql"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { makeDbLayer } from "../src/store/Db.js"
import { LEGACY_SQLITE_MIGRATIONS } from "./fixtures/legacyMigrations.js"
import { tempHome } from "./helpers/app.js"

const at = Date.UTC(2026, 10, 20, 10)

/** A store as autotune left it before migration 0008, with a few rows of each kind the migration reads. */
const oldStore = async (file: string) => {
  const before = Object.fromEntries(Object.entries(LEGACY_SQLITE_MIGRATIONS).filter(([name]) => name < "0008"))
  await Effect.runPromise(
    Effect.scoped(
      Layer.build(
        Layer.effectDiscard(SqliteMigrator.run({ loader: SqliteMigrator.fromRecord(before) })).pipe(
          Layer.provide(SqliteClient.layer({ filename: file })),
          Layer.provide(NodeContext.layer)
        )
      )
    ).pipe(Effect.asVoid)
  )
  const db = new Database(file)
  const trace = db.prepare(
    "INSERT INTO traces (trace_id, ts, created_at, input_text, message_text, is_error, file, byte_offset, line_no, ingested_at) VALUES (?, '', ?, 'hi', 'hi', 0, 'f', 0, 0, 0)"
  )
  const pack = db.prepare("INSERT INTO trace_packs (behavior, version, created_at, trace_id) VALUES (?, ?, ?, ?)")
  const score = db.prepare(
    "INSERT INTO trace_scores (trace_id, behavior, rubric_version, score, stage1_score, stage2_score, reason, created_at) VALUES (?, ?, 'r@1', ?, ?, ?, 'ok', ?)"
  )
  const verdict = db.prepare(
    "INSERT INTO judge_scores (trace_id, behavior, rubric_version, stage, model, status, score, reason, created_at) VALUES (?, ?, 'r@1', ?, 'm', ?, ?, 'ok', ?)"
  )
  const call = db.prepare(
    "INSERT INTO llm_calls (run_id, stage, provider, model, tokens_in, tokens_out, cost_usd, cost_known, parsed, latency_ms, outcome, created_at) VALUES ('r', ?, 'p', ?, 10, 2, ?, ?, ?, 1, ?, ?)"
  )
  trace.run("trace-a", at)
  trace.run("trace-b", at + 1000)
  pack.run("response-quality", "rq-7", at, "trace-a")
  pack.run("*", "all-2", at + 1000, "trace-b")
  score.run("trace-a", "response-quality", 0.5, 0.5, null, at + 3_600_000)
  score.run("trace-b", "response-quality", 0.75, 1, 0.75, at + 3_600_000)
  verdict.run("trace-a", "response-quality", 1, "scored", 0.5, at + 3_600_000)
  verdict.run("trace-b", "response-quality", 1, "unscored", null, at + 3_600_000)
  call.run("judge:response-quality:1", "haiku", 0.25, 1, 1, "ok", at)
  call.run("judge:response-quality:1", "haiku", 0.5, 1, 0, "ok", at + 1)
  call.run("judge:response-quality:2", "sonnet", 0, 0, null, "error", at + 2)
  db.close()
}

const migrate = (file: string) =>
  Effect.runPromise(
    Effect.scoped(
      Layer.build(makeDbLayer(file)).pipe(
        Effect.flatMap((ctx) => Effect.provide(SqlClient.SqlClient, ctx)),
        Effect.asVoid
      )
    )
  )

describe("the report's rollups (migration 0008)", () => {
  it("backfills each score's turn time and serving pack, and the daily spend and verdict sums, from what is stored", async () => {
    const file = path.join(tempHome(), "autotune.db")
    await oldStore(file)
    await migrate(file)
    const db = new Database(file, { readonly: true })
    expect(db.prepare("SELECT trace_id, turn_at, pack_version FROM trace_scores ORDER BY trace_id").all()).toEqual([
      { trace_id: "trace-a", turn_at: at, pack_version: "rq-7" },
      { trace_id: "trace-b", turn_at: at + 1000, pack_version: "all-2" }
    ])
    expect(db.prepare("SELECT * FROM llm_daily ORDER BY stage").all()).toEqual([
      {
        day: "2026-11-20",
        stage: "judge:response-quality:1",
        model: "haiku",
        calls: 2,
        failed: 0,
        tokens_in: 20,
        tokens_out: 4,
        cost_usd: 0.75,
        unknown_cost: 0,
        structured: 2,
        unparsed: 1,
        egress_redactions: 0
      },
      {
        day: "2026-11-20",
        stage: "judge:response-quality:2",
        model: "sonnet",
        calls: 1,
        failed: 1,
        tokens_in: 10,
        tokens_out: 2,
        cost_usd: 0,
        unknown_cost: 1,
        structured: 0,
        unparsed: 0,
        egress_redactions: 0
      }
    ])
    expect(db.prepare("SELECT * FROM judge_daily").all()).toEqual([
      { day: "2026-11-20", behavior: "response-quality", stage: 1, scored: 1, unscored: 1 }
    ])
    expect(db.prepare("SELECT version, n, sum, sum_sq, both, gap_sum FROM score_daily ORDER BY version").all()).toEqual(
      [
        { version: "all-2", n: 1, sum: 0.75, sum_sq: 0.5625, both: 1, gap_sum: 0.25 },
        { version: "rq-7", n: 1, sum: 0.5, sum_sq: 0.25, both: 0, gap_sum: 0 }
      ]
    )
    db.close()
  })

  it("keeps the daily score sums equal to trace_scores through inserts, replacements, updates and deletes", async () => {
    const file = path.join(tempHome(), "autotune.db")
    await migrate(file)
    const db = new Database(file)
    const put = db.prepare(
      "INSERT OR REPLACE INTO trace_scores (trace_id, behavior, rubric_version, score, stage1_score, stage2_score, reason, created_at, turn_at, pack_version) VALUES (?, 'b', 'r@1', ?, ?, ?, '', 0, ?, ?)"
    )
    for (let i = 0; i < 300; i++)
      put.run(
        `trace-${i}`,
        (i % 5) / 4,
        (i % 5) / 4,
        i % 2 === 0 ? ((i + 1) % 5) / 4 : null,
        at + (i % 9) * 86_400_000,
        i % 3 === 0 ? null : `v${i % 4}`
      )
    // Re-judged: the same key again, another score and version; then retention and an update.
    for (let i = 0; i < 300; i += 7) put.run(`trace-${i}`, 1, 1, null, at + (i % 9) * 86_400_000, "v9")
    db.prepare("DELETE FROM trace_scores WHERE turn_at < ?").run(at + 2 * 86_400_000)
    db.prepare("UPDATE trace_scores SET score = 0.5, stage2_score = 0 WHERE trace_id LIKE 'trace-1%'").run()
    db.prepare("UPDATE trace_scores SET reason = 'cleaned'").run()
    const fromRows = db
      .prepare(
        `SELECT date(turn_at / 1000, 'unixepoch') AS day, COALESCE(pack_version, '') AS version, COUNT(*) AS n, ROUND(SUM(score), 9) AS sum,
      ROUND(SUM(score * score), 9) AS sq, COUNT(stage2_score) AS both, ROUND(COALESCE(SUM(ABS(stage1_score - stage2_score)), 0), 9) AS gap FROM trace_scores GROUP BY 1, 2 ORDER BY 1, 2`
      )
      .all()
    const rolled = db
      .prepare(
        "SELECT day, version, n, ROUND(sum, 9) AS sum, ROUND(sum_sq, 9) AS sq, both, ROUND(gap_sum, 9) AS gap FROM score_daily WHERE n > 0 ORDER BY 1, 2"
      )
      .all()
    expect(fromRows.length).toBeGreaterThan(20)
    expect(rolled).toEqual(fromRows)
    db.close()
  })

  it("keeps the daily sums equal to the rows as new calls and verdicts arrive", async () => {
    const file = path.join(tempHome(), "autotune.db")
    await migrate(file)
    const db = new Database(file)
    const call = db.prepare(
      "INSERT INTO llm_calls (run_id, stage, provider, model, tokens_in, tokens_out, cost_usd, cost_known, parsed, latency_ms, outcome, created_at) VALUES ('r', ?, 'p', 'm', ?, 1, ?, 1, ?, 1, 'ok', ?)"
    )
    for (let i = 0; i < 200; i++)
      call.run(i % 3 === 0 ? "optimize:b:rerank" : "judge:b:1", i, i / 1000, i % 4 === 0 ? 0 : 1, at + i * 3_600_000)
    const verdict = db.prepare(
      "INSERT INTO judge_scores (trace_id, behavior, rubric_version, stage, model, status, score, reason, created_at) VALUES (?, 'b', 'r@1', 1, 'm', ?, NULL, '', ?)"
    )
    for (let i = 0; i < 50; i++) verdict.run(`trace-${i}`, i % 5 === 0 ? "unscored" : "scored", at + i * 7_200_000)
    const fromRows = db
      .prepare(
        "SELECT date(created_at / 1000, 'unixepoch') AS day, stage, COUNT(*) AS calls, SUM(tokens_in) AS tokens, ROUND(SUM(cost_usd), 9) AS cost, SUM(parsed = 0) AS unparsed FROM llm_calls GROUP BY 1, 2 ORDER BY 1, 2"
      )
      .all()
    const rolled = db
      .prepare(
        "SELECT day, stage, calls, tokens_in AS tokens, ROUND(cost_usd, 9) AS cost, unparsed FROM llm_daily ORDER BY 1, 2"
      )
      .all()
    expect(rolled).toEqual(fromRows)
    expect(db.prepare("SELECT SUM(scored) AS scored, SUM(unscored) AS unscored FROM judge_daily").get()).toEqual({
      scored: 40,
      unscored: 10
    })
    db.close()
  })
})

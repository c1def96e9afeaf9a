/**
 * The judge scores a sample of turns (judge/Sampling.ts): each turn's fixed draw, kept beside its time in
 * the index that already ordered traces by time, so the daily sample is read from the index alone.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { sampleDraw } from "../../Domain/Trace.js"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.gen(function* () {
    yield* sql`ALTER TABLE traces ADD COLUMN sample_draw REAL NOT NULL DEFAULT 0`
    let after = 0
    for (;;) {
      const rows = yield* sql<{
        id: number
        traceId: string
      }>`SELECT rowid AS id, trace_id AS "traceId" FROM traces WHERE rowid > ${after} ORDER BY rowid LIMIT 5000`
      if (rows.length === 0) break
      for (const r of rows) yield* sql`UPDATE traces SET sample_draw = ${sampleDraw(r.traceId)} WHERE rowid = ${r.id}`
      after = rows[rows.length - 1]!.id
    }
    yield* sql`DROP INDEX traces_created_at`
    yield* sql`CREATE INDEX traces_created_draw ON traces (created_at, sample_draw)`
  })
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

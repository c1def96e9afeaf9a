/**
 * optimize_runs
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      // One row per optimization attempt, so a baseline that just failed to improve is not retried every hour.
      sql`CREATE TABLE optimize_runs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      behavior TEXT NOT NULL,
      baseline_version TEXT NOT NULL,
      outcome TEXT NOT NULL,
      detail_json TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX optimize_runs_behavior ON optimize_runs (behavior, baseline_version, created_at)`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

/**
 * Users' reactions from DotClaw's user_feedback, keyed by DotClaw's id; joined to traces by trace_id.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`CREATE TABLE feedback (
      id TEXT PRIMARY KEY,
      trace_id TEXT NOT NULL,
      feedback_type TEXT NOT NULL,
      reason TEXT,
      created_at TEXT NOT NULL,
      created_ms INTEGER NOT NULL,
      imported_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX feedback_trace ON feedback (trace_id, created_ms)`,
      sql`CREATE INDEX feedback_created ON feedback (created_at)`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

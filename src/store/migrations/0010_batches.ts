/**
 * Requests sent through a provider's batch interface: answered within a day at half price. A pending
 * batch's most it can cost is held against the daily budget until its answers are collected; the judge
 * keeps which turns each request stands for, so they are neither judged twice nor lost.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`CREATE TABLE llm_batches (
      batch_id TEXT PRIMARY KEY,
      provider TEXT NOT NULL,
      stage TEXT NOT NULL,
      requests INTEGER NOT NULL,
      estimated_usd REAL NOT NULL,
      submitted_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      status TEXT NOT NULL,
      collected_at INTEGER,
      succeeded INTEGER,
      errored INTEGER,
      expired INTEGER
    )`,
      sql`CREATE INDEX llm_batches_status ON llm_batches (status)`,
      sql`CREATE TABLE judge_batch_items (
      batch_id TEXT NOT NULL,
      custom_id TEXT NOT NULL,
      trace_id TEXT NOT NULL,
      behavior TEXT NOT NULL,
      rubric_version TEXT NOT NULL,
      model TEXT NOT NULL,
      need TEXT NOT NULL,
      is_canary INTEGER NOT NULL,
      pack_version TEXT,
      PRIMARY KEY (batch_id, custom_id, behavior)
    )`,
      sql`CREATE INDEX judge_batch_items_trace ON judge_batch_items (trace_id, behavior)`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

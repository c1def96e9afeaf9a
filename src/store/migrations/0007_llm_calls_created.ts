/**
 * llm_calls is history and is never pruned: the daily budget and status read it by time.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`CREATE INDEX llm_calls_created ON llm_calls (created_at)`
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

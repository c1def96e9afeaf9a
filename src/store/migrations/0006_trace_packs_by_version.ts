/**
 * trace_packs keyed the way it is read and written: by (behavior, version, created_at). DotClaw's trace ids
 * are random uuids; a key led by them put every insert on a different page of two B-trees (measured: 200,000
 * traces with two packs each, 27.6 s against 13.0 s keyed this way). Lookups by trace carry created_at too.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`CREATE TABLE trace_packs_v2 (
      behavior TEXT NOT NULL,
      version TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      trace_id TEXT NOT NULL,
      PRIMARY KEY (behavior, version, created_at, trace_id)
    ) WITHOUT ROWID`,
      sql`INSERT OR IGNORE INTO trace_packs_v2 (behavior, version, created_at, trace_id) SELECT behavior, version, created_at, trace_id FROM trace_packs`,
      sql`DROP TABLE trace_packs`,
      sql`ALTER TABLE trace_packs_v2 RENAME TO trace_packs`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

/**
 * File positions per host (AUTOTUNE_HOST_ID), as a store shared by several hosts keeps them; the positions
 * saved so far are this machine's, under its default host id.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { defaultHostId } from "../../config/Table.js"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`CREATE TABLE ingest_positions_v2 (
      host_id TEXT NOT NULL, file TEXT NOT NULL, file_id TEXT NOT NULL, byte_offset INTEGER NOT NULL, line_no INTEGER NOT NULL,
      head_hash TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (host_id, file)
    )`,
      sql`INSERT INTO ingest_positions_v2 SELECT ${defaultHostId()}, file, file_id, byte_offset, line_no, head_hash, updated_at FROM ingest_positions`,
      sql`DROP TABLE ingest_positions`,
      sql`ALTER TABLE ingest_positions_v2 RENAME TO ingest_positions`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

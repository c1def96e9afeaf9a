/**
 * Which rule set redacted each stored row of free text (0 = stored unredacted, 1 = autotune 2.0's first
 * set), so `redact --rescan` finds what an older set left; what the egress guard replaced per call; and
 * one small key/value table for store-wide facts such as the rule set the whole store was last cleaned with.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`ALTER TABLE traces ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE malformed_lines ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE judge_scores ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE trace_scores ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE feedback ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE optimize_runs ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE llm_calls ADD COLUMN egress_redactions INTEGER NOT NULL DEFAULT 0`,
      sql`CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

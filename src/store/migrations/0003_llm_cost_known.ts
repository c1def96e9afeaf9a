/**
 * A call to a model without a known price has an unknown cost: never counted as $0 in a total.
 * `parsed`: for a call that asked for a structured answer, whether the answer could be used (NULL otherwise).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`ALTER TABLE llm_calls ADD COLUMN cost_known INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE llm_calls ADD COLUMN parsed INTEGER`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

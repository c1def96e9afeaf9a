/**
 * One schema change, in both dialects. A store's schema is the numbered list in `index.ts` applied in order;
 * each change names its SQLite and its PostgreSQL form side by side, so a change is written once, in one place,
 * and a reader sees at a glance where the two differ.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect } from "effect"

export type MigrationEffect = Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>

export interface Migration {
  readonly sqlite: MigrationEffect
  readonly pg: MigrationEffect
}

/**
 * The form of a change that a dialect does not need (PostgreSQL's first migration already holds the shape
 * SQLite reached in eleven; fleet hosts exist only where several hosts share a store). A store recorded past
 * such a change counts it as applied.
 */
export const NONE: MigrationEffect = Effect.void

/** Statements that read the same in both dialects, run in order. */
export const statements = (...texts: ReadonlyArray<string>): MigrationEffect =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(texts, (text) => sql.unsafe(text), { discard: true }))

/** A change both dialects make with the same statements. */
export const same = (...texts: ReadonlyArray<string>): Migration => {
  const effect = statements(...texts)
  return { sqlite: effect, pg: effect }
}

/**
 * The few statements SQLite and PostgreSQL spell differently, written once here so the services stay
 * dialect-free. SQLite keeps its own forms where its triggers depend on them (INSERT OR REPLACE fires the
 * replace trigger that keeps score_daily right).
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"

type Row = Record<string, unknown>
type Rows = Row | ReadonlyArray<Row>

export const isPostgres = (sql: SqlClient.SqlClient): boolean => sql.onDialectOrElse({ pg: () => true, orElse: () => false })

/** Inserts rows, skipping those whose key is already stored. */
export const insertIgnore = (sql: SqlClient.SqlClient, table: string, rows: Rows, returning?: string) => {
  const back = returning === undefined ? sql.literal("") : sql.literal(`RETURNING ${returning}`)
  return isPostgres(sql)
    ? sql`INSERT INTO ${sql(table)} ${sql.insert(rows as ReadonlyArray<Row>)} ON CONFLICT DO NOTHING ${back}`
    : sql`INSERT OR IGNORE INTO ${sql(table)} ${sql.insert(rows as ReadonlyArray<Row>)} ${back}`
}

/** Inserts rows, replacing the stored row with the same key. */
export const upsert = (sql: SqlClient.SqlClient, table: string, rows: Rows, key: ReadonlyArray<string>) => {
  if (!isPostgres(sql)) return sql`INSERT OR REPLACE INTO ${sql(table)} ${sql.insert(rows as ReadonlyArray<Row>)}`
  const first = Array.isArray(rows) ? (rows as ReadonlyArray<Row>)[0]! : (rows as Row)
  const set = Object.keys(first).filter((c) => !key.includes(c)).map((c) => `${c} = EXCLUDED.${c}`).join(", ")
  return sql`INSERT INTO ${sql(table)} ${sql.insert(rows as ReadonlyArray<Row>)} ON CONFLICT (${sql.literal(key.join(", "))}) DO UPDATE SET ${sql.literal(set)}`
}

/** The store's size on disk: SQLite's pages, or the PostgreSQL database's size. */
export const storeBytes = (sql: SqlClient.SqlClient) =>
  (isPostgres(sql)
    ? sql<{ n: number }>`SELECT pg_database_size(current_database()) AS n`
    : sql<{ n: number }>`SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()`
  ).pipe(Effect.map((r) => Number(r[0]?.n ?? 0)))

/** The length of a JSON array stored as text. */
export const jsonArrayLength = (sql: SqlClient.SqlClient, column: string) =>
  sql.literal(isPostgres(sql) ? `json_array_length(${column}::json)` : `json_array_length(${column})`)

/** A top-level field of a JSON object stored as text, as text. */
export const jsonField = (sql: SqlClient.SqlClient, column: string, field: string) =>
  sql.literal(isPostgres(sql) ? `(${column}::json ->> '${field}')` : `json_extract(${column}, '$.${field}')`)

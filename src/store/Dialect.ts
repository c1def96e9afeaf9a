/**
 * The few statements SQLite and PostgreSQL spell differently, written once here so the services stay
 * dialect-free. SQLite keeps its own forms where its triggers depend on them (INSERT OR REPLACE fires the
 * replace trigger that keeps score_daily right).
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"

type Row = Record<string, unknown>
type Rows = Row | ReadonlyArray<Row>

export const isPostgres = (sql: SqlClient.SqlClient): boolean =>
  sql.onDialectOrElse({ pg: () => true, orElse: () => false })

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
  const set = Object.keys(first)
    .filter((c) => !key.includes(c))
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(", ")
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

/**
 * SQLite's CROSS JOIN keeps the written join order (its planner otherwise may start from the larger table);
 * PostgreSQL plans joins itself and has no ON for a CROSS JOIN.
 */
export const orderedJoin = (sql: SqlClient.SqlClient) => sql.literal(isPostgres(sql) ? "JOIN" : "CROSS JOIN")

/**
 * Walking a table in storage order, in batches: SQLite's rowid, PostgreSQL's ctid (a row updated while
 * walking moves to a later ctid; the caller's filter must keep it from being read twice).
 */
export const storageOrder = (sql: SqlClient.SqlClient) =>
  isPostgres(sql)
    ? { column: sql.literal("ctid"), start: "(0,0)" as unknown, at: (v: unknown) => sql`${String(v)}::tid` }
    : { column: sql.literal("rowid"), start: 0 as unknown, at: (v: unknown) => sql`${Number(v)}` }

/** After values were rewritten in place: no old copy stays in free pages or the WAL (SQLite), or in dead row versions (PostgreSQL). */
export const rewriteTables = (sql: SqlClient.SqlClient, tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    // PostgreSQL: the tables are rewritten without old row versions; its WAL and backups are the server's.
    if (isPostgres(sql)) {
      for (const table of tables) yield* sql`VACUUM FULL ${sql(table)}`
      return
    }
    yield* sql`PRAGMA wal_checkpoint(TRUNCATE)`
    yield* sql`VACUUM`
    yield* sql`PRAGMA wal_checkpoint(TRUNCATE)`
  })

/**
 * Returns free pages to the file system. A store made before autotune set incremental auto-vacuum is rebuilt
 * once (a full VACUUM, the first time something is pruned); after that each prune gives back only what it freed.
 */
export const giveBackSpace = (sql: SqlClient.SqlClient, pruned: boolean, tables: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    // PostgreSQL: VACUUM makes the pruned rows' space reusable (autovacuum would, later); the files keep their size.
    if (isPostgres(sql)) {
      if (pruned) yield* sql`VACUUM ${sql.literal(tables.join(", "))}`
      return
    }
    const mode = yield* sql<{ auto_vacuum: number }>`PRAGMA auto_vacuum`
    if (Number(mode[0]?.auto_vacuum ?? 0) !== 2) {
      if (!pruned) return
      yield* sql`PRAGMA auto_vacuum = INCREMENTAL`
      yield* sql`VACUUM`
      return
    }
    // Each step of PRAGMA incremental_vacuum frees one page, and the SQL client steps a statement that returns
    // no rows once: it is run once per free page (a day's prune at 5,000 turns is about 1,500 pages).
    const free = yield* sql<{ n: number }>`SELECT freelist_count AS n FROM pragma_freelist_count()`
    for (let i = 0; i < Number(free[0]?.n ?? 0); i++) yield* sql`PRAGMA incremental_vacuum`
    yield* sql`PRAGMA wal_checkpoint(TRUNCATE)`
  })

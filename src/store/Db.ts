/**
 * The store as a layer: SQLite (the embedded default) or PostgreSQL (a fleet), opened, checked against the home's
 * record of it, migrated (migrations/), and the transaction and error helpers every store module uses.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import Database from "better-sqlite3"
import { SqlClient, SqlError } from "@effect/sql"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import * as path from "node:path"
import { isSet, Settings } from "../config/Config.js"
import { ConfigError, StoreError } from "../Domain/Errors.js"
import { isBusyCode } from "./BulkRows.js"
import { secureSidecars, secureStore } from "./FileModes.js"
import { makePgLayer } from "./Postgres.js"
import { withRunLock } from "./RunLock.js"
import { checkSqliteStore, settleStoreIdentity } from "./Identity.js"
import { LATEST_MIGRATION, migrationsFor, renumberLegacy } from "./migrations/index.js"

export const isBusy = (error: SqlError.SqlError) => isBusyCode((error.cause as { code?: unknown } | undefined)?.code)

/**
 * Another autotune process may hold the write lock; better-sqlite3 waits 5 s on its own, but a deferred
 * transaction that must upgrade to a writer gets SQLITE_BUSY at once. Retrying the whole transaction is
 * the correct answer to both, so no raw SQLITE_BUSY reaches the user.
 */
export const busyRetry = Schedule.exponential("50 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo(Duration.minutes(2))
)

/** Opening and migrating retry a busy store like a write, but give up after 40 tries with the error. */
const openRetry = Schedule.intersect(busyRetry, Schedule.recurs(40))

/**
 * Runs a write transaction, retrying it whole while another process holds the database. When SQLite has
 * already rolled back on its own (a full disk), @effect/sql's ROLLBACK fails too and dies: that is the same
 * store failure, so it comes back as a typed error, not as a silent crash.
 */
export const writeTransaction = <A, E, R>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E, R>) =>
  sql.withTransaction(effect).pipe(
    Effect.catchSomeDefect((defect) =>
      defect instanceof SqlError.SqlError ? Option.some(Effect.fail(defect)) : Option.none()
    ),
    Effect.retry({
      schedule: busyRetry,
      while: (error) => error instanceof SqlError.SqlError && isBusy(error)
    })
  )

/** What a person should read for SQLite's and the file system's error codes. */
export const describeStoreCause = (cause: unknown): string => {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown }
  const text = typeof message === "string" ? message : String(cause)
  const c = typeof code === "string" ? code : ""
  if (c === "SQLITE_FULL" || c === "ENOSPC") return "the disk is full"
  if (c.startsWith("SQLITE_READONLY") || c === "EROFS")
    return `the database cannot be written (read-only file system or file; ${text})`
  if (c.startsWith("SQLITE_CORRUPT") || c === "SQLITE_NOTADB")
    return `the database file is damaged (${text}); move it aside and run \`autotune accept-store\`: a new store is built and the traces are read again from DotClaw's files`
  if (c.startsWith("SQLITE_CANTOPEN"))
    return `cannot open the database file (missing directory or no permission; ${text})`
  if (c === "SQLITE_PERM" || c === "EACCES" || c === "EPERM") return `permission denied (${text})`
  if (c.startsWith("SQLITE_IOERR")) return `disk I/O error (${text}): is the disk full or failing?`
  return text
}

/** How many rows a statement run with `.raw` changed. */
export const rowsChanged = (result: unknown) => {
  // better-sqlite3 says `changes`, node-postgres `rowCount`.
  const r = result as { changes?: number; rowCount?: number | null } | undefined
  return Number(r?.changes ?? r?.rowCount ?? 0)
}

/** Maps a SqlError to the one-line StoreError a user sees. */
export const storeError = (operation: string) => (error: SqlError.SqlError) =>
  new StoreError({ operation, detail: describeStoreCause(error.cause ?? error) })

export const makeDbLayer = (filename: string, home?: string) => {
  // WAL with synchronous=NORMAL: a crash of the process never loses a commit; only a power cut can lose
  // the last few, and never corrupts. FULL would fsync on every ingest batch for no gain in our use.
  const client = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      // Incremental auto-vacuum takes effect on a new file (before its first table) and lets retention give
      // pages back; an older store is converted by retention's first prune.
      Effect.zipRight(
        Effect.zipRight(sql`PRAGMA auto_vacuum = INCREMENTAL`, sql`PRAGMA synchronous = NORMAL`).pipe(
          Effect.retry({ schedule: openRetry, while: isBusy })
        ),
        Effect.forEach(secureSidecars(filename), (w) => Effect.logWarning(w), { discard: true })
      )
    )
  ).pipe(
    // WAL is switched on by walMode below, with retries: the client's own switch runs inside its constructor,
    // where a busy database is an untyped crash.
    Layer.provideMerge(SqliteClient.layer({ filename, disableWAL: true }))
  )
  // @effect/sql's migrator treats any failure to claim a migration (SQLITE_BUSY included) as "another process
  // is migrating" and carries on before that process has committed: two first runs side by side would then
  // query tables that do not exist yet. A lock file beside the database makes the second one wait instead.
  // It also returns quietly when the claim fails because the other process merely holds the write lock for a
  // moment (its WAL switch, its first ingest batch): then nothing ran. So the store itself is asked whether every
  // migration is there, and a store still behind is retried like a busy one (seen: 1 run in 10 of two first
  // `ingest`s side by side failed with "no such table: ingest_positions").
  const migrate = Effect.gen(function* () {
    yield* renumberLegacy("sqlite")
    yield* SqliteMigrator.run({ loader: SqliteMigrator.fromRecord(migrationsFor("sqlite")) })
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ id: number | null }>`SELECT MAX(migration_id) AS id FROM effect_sql_migrations`
    if (Number(row?.id ?? 0) < LATEST_MIGRATION) {
      return yield* new SqlError.SqlError({
        cause: { code: "SQLITE_BUSY" },
        message: `the store is at migration ${row?.id ?? 0} of ${LATEST_MIGRATION}: another process holds it`
      })
    }
  })
  // The store's id against the home's record (store/Identity.ts), once the store is migrated.
  const identity =
    home === undefined || home === ""
      ? Effect.void
      : Effect.flatMap(SqlClient.SqlClient, (sql) => settleStoreIdentity(sql, home, filename, filename))
  const migrated = Layer.effectDiscard(
    Effect.zipRight(withRunLock(`${filename}.migrate.lock`, migrate, "2 minutes"), identity)
  ).pipe(
    Layer.provide(NodeContext.layer),
    // A gone or swapped store is no busy store: it fails at once.
    Layer.retry(
      Schedule.intersect(
        openRetry,
        Schedule.recurWhile((e: unknown) => !(e instanceof StoreError))
      )
    )
  )
  // Before anything creates the file: a store the home's record names that is gone or swapped stops here.
  const checked =
    home === undefined || home === ""
      ? Effect.void
      : Effect.flatMap(checkSqliteStore(home, filename), (note) =>
          note === undefined ? Effect.void : Effect.logWarning(note)
        )
  const secured = Effect.try({
    try: () => secureStore(filename, home),
    catch: (cause) =>
      new StoreError({
        operation: "open",
        detail: `cannot create ${path.dirname(filename)} or its database privately: ${describeStoreCause(cause)}`
      })
  }).pipe(Effect.flatMap((warnings) => Effect.forEach(warnings, (w) => Effect.logWarning(w), { discard: true })))
  return migrated.pipe(
    Layer.provideMerge(client),
    Layer.provideMerge(Layer.effectDiscard(checked.pipe(Effect.zipRight(secured), Effect.zipRight(walMode(filename))))),
    Layer.catchAll((error) =>
      Layer.fail(
        error instanceof StoreError ? error : new StoreError({ operation: `open ${filename}`, detail: describe(error) })
      )
    )
  )
}

const describe = (error: unknown): string => {
  const cause = (error as { cause?: unknown }).cause
  return describeStoreCause(cause instanceof Error ? cause : error)
}

/**
 * Puts the database in WAL mode before the SQL client opens it (the client is told not to). The client's own
 * switch runs synchronously in its constructor, where SQLITE_BUSY from a second process (opening a new store,
 * or recovering the WAL while another writes) is an untyped crash: "unexpected failure: database is locked",
 * seen in CI with two ingests started together. Here the switch is retried like any busy write.
 */
const walMode = (filename: string) =>
  Effect.try({
    try: () => {
      const db = new Database(filename)
      try {
        // Before anything writes the file's first page: only a new file takes incremental auto-vacuum.
        db.pragma("auto_vacuum = INCREMENTAL")
        db.pragma("journal_mode = WAL")
      } finally {
        db.close()
      }
    },
    catch: (cause) => new SqlError.SqlError({ cause, message: "switch to WAL mode" })
  }).pipe(Effect.retry({ schedule: openRetry, while: isBusy }))

/** The store: PostgreSQL at AUTOTUNE_DATABASE_URL when set (a fleet), else SQLite at AUTOTUNE_DB_PATH. */
export const DbLive: Layer.Layer<SqlClient.SqlClient, StoreError | ConfigError, Settings> = Layer.unwrapEffect(
  Effect.map(Settings, (s): Layer.Layer<SqlClient.SqlClient, StoreError | ConfigError> =>
    isSet(s.config.databaseUrl)
      ? makePgLayer(s.config.databaseUrl, { hostId: s.config.hostId, home: s.config.home })
      : makeDbLayer(s.config.dbPath, s.config.home)
  )
)

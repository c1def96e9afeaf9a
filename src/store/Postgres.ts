/**
 * The PostgreSQL store (AUTOTUNE_DATABASE_URL=postgres://…), for several DotClaw hosts sharing one autotune.
 * Same tables and meaning as the SQLite store (Db.ts), built by the same list of migrations in PostgreSQL's
 * words (migrations/). Times are epoch milliseconds in BIGINT, read back as numbers.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { SqlClient } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { Clock, Effect, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeDirs, MODES } from "./FileModes.js"
import { settleStoreIdentity } from "./Identity.js"
import { maskSecret } from "../config/Config.js"
import pg from "pg"
import { ConfigError, StoreError } from "../Domain/Errors.js"
import { migrationsFor, renumberLegacy } from "./migrations/index.js"

// Epoch milliseconds, counts and sums come back as numbers, not strings: BIGINT (int8) and NUMERIC (what
// SUM and AVG of integers give) both fit a double for every value the store holds.
const INT8 = 20
const NUMERIC = 1700
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 || oid === NUMERIC
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser
}

/** A fixed key for PostgreSQL's advisory locks: migrations take it per transaction, the leader per session. */
export const MIGRATE_LOCK = 0x61757475 // "autu"
export const LEADER_LOCK = 0x61757476

/**
 * Runs `effect` while this process holds a session advisory lock, on a connection kept aside for it (the work
 * itself runs on the pool). "wait" queues behind another holder; "try" gives None at once when one holds it.
 * The lock goes with the session, so a killed process never leaves it held.
 */
export const withAdvisoryLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  key: number,
  mode: "wait" | "try",
  effect: Effect.Effect<A, E, R>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const locked = Effect.gen(function* () {
        const conn = yield* sql.reserve
        if (mode === "wait") yield* conn.executeRaw("SELECT pg_advisory_lock($1)", [key])
        else {
          const rows = yield* conn.execute("SELECT pg_try_advisory_lock($1) AS held", [key], undefined)
          if (rows[0]?.held !== true) return undefined
        }
        return conn
      }).pipe(
        Effect.mapError(
          (e) =>
            new StoreError({
              operation: "take an advisory lock in the PostgreSQL store",
              detail: describePgCause(e.cause ?? e)
            })
        )
      )
      const conn = yield* locked
      if (conn === undefined) return Option.none<A>()
      return yield* effect.pipe(
        Effect.map(Option.some),
        Effect.ensuring(Effect.ignore(conn.executeRaw("SELECT pg_advisory_unlock($1)", [key])))
      )
    })
  )

/** The server's own words for a failed connection, shortened to what a person can act on. */
export const describePgCause = (cause: unknown): string => {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown }
  const text = typeof message === "string" ? message : String(cause)
  if (code === "ECONNREFUSED") return `nothing listens there (${text}): is PostgreSQL running?`
  if (code === "28P01" || code === "28000")
    return `authentication failed (${text}): check the user and password in AUTOTUNE_DATABASE_URL`
  if (code === "3D000") return `the database does not exist (${text}): create it first (createdb)`
  return text
}

/**
 * This installation's id: random, made once and kept in its home (0600). A host id another installation
 * already holds in the store is refused, before anything is read or written under it.
 */
export const installId = (home: string): string => {
  const file = path.join(home, "install-id")
  if (!fs.existsSync(file)) {
    makeDirs(home, MODES.private.dir)
    try {
      fs.writeFileSync(file, `${randomUUID()}\n`, { mode: MODES.private.file, flag: "wx" })
    } catch (error) {
      // Another process of this installation made it first: its id is the one.
      if ((error as { code?: unknown }).code !== "EEXIST") throw error
    }
  }
  return fs.readFileSync(file, "utf8").trim()
}

const claimHost = (sql: SqlClient.SqlClient, hostId: string, install: string) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const claimed = yield* sql<{ host_id: string }>`
      INSERT INTO fleet_hosts VALUES (${hostId}, ${install}, ${now}, ${now})
      ON CONFLICT (host_id) DO UPDATE SET last_seen = EXCLUDED.last_seen WHERE fleet_hosts.install_id = EXCLUDED.install_id
      RETURNING host_id`
    if (claimed.length === 0) {
      return yield* new ConfigError({
        key: "hostId",
        source: "AUTOTUNE_HOST_ID (default: the hostname)",
        detail: `"${hostId}" is already used in this store by another autotune installation; give this host its own AUTOTUNE_HOST_ID`
      })
    }
  })

export const makePgLayer = (
  url: Redacted.Redacted<string>,
  host?: { readonly hostId: string; readonly home: string }
) => {
  const client = PgClient.layer({
    url,
    types,
    maxConnections: 8,
    connectTimeout: "10 seconds",
    applicationName: "autotune"
  })
  // Several hosts may start together: the advisory lock makes one migrate while the others wait for it.
  // Then this host's id is claimed (or refused) before any command reads or writes under it.
  const migrated = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.zipRight(
        withAdvisoryLock(
          sql,
          MIGRATE_LOCK,
          "wait",
          Effect.zipRight(renumberLegacy("pg"), PgMigrator.run({ loader: PgMigrator.fromRecord(migrationsFor("pg")) }))
        ),
        host === undefined
          ? Effect.void
          : Effect.try({
              try: () => installId(host.home),
              catch: (cause) =>
                new StoreError({
                  operation: `keep this installation's id in ${host.home}`,
                  detail: cause instanceof Error ? cause.message : String(cause)
                })
            }).pipe(
              Effect.flatMap((install) => claimHost(sql, host.hostId, install)),
              // The store's id against the home's record (store/Identity.ts): a database dropped and made again is a swap.
              Effect.zipRight(settleStoreIdentity(sql, host.home, maskSecret(url)))
            )
      )
    )
  ).pipe(Layer.provide(NodeContext.layer))
  return migrated.pipe(
    Layer.provideMerge(client),
    Layer.catchAll((error): Layer.Layer<unknown, ConfigError | StoreError> => {
      if (error instanceof ConfigError || error instanceof StoreError) return Layer.fail(error)
      const cause = (error as { cause?: unknown }).cause ?? error
      return Layer.fail(new StoreError({ operation: "open the PostgreSQL store", detail: describePgCause(cause) }))
    })
  )
}

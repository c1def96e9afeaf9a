/**
 * Which store autotune works on, remembered outside it. A store removed or replaced under a running daemon used to
 * be replaced in silence by an empty one: every trace ingested and judged again, the day's spend forgotten, the
 * pack history gone while canaries stayed live on disk. So each store carries an id written when it is made
 * (store_meta `store_id`), and the home keeps a small record (store-identity.json, 0600) of the store this
 * installation works on: where it is, its id, for SQLite the file's device and inode, and what the LLM calls of the
 * last 24 hours cost (so the daily budget survives a swap). Every command checks the store against the record
 * before it opens it; a daemon and a timer `once` read the same record.
 *
 * - The record names this location and the file is gone: the command fails, nothing is created.
 * - The file's id is read without opening it for writing: another id or none is a swap, and the command fails; the
 *   same id in another file (device or inode differ) is the store back from a copy, said in one line.
 * - The configuration names another location: that is a change, said in one line, and the record follows it.
 * - `autotune accept-store` makes the store configured now the one (a new empty store when there is none).
 */
import { SqlClient } from "@effect/sql"
import Database from "better-sqlite3"
import { Clock, Effect } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { StoreError } from "../Domain/Errors.js"
import { MODES } from "./FileModes.js"
import { writeFileAtomic } from "./Files.js"
import { isPostgres } from "./Dialect.js"

export interface SpendEntry {
  readonly at: number
  readonly usd: number
}

export interface StoreRecord {
  readonly location?: string
  readonly storeId?: string
  readonly device?: number
  readonly inode?: number
  /** What each command's LLM calls cost, over the last 24 hours. */
  readonly spend: ReadonlyArray<SpendEntry>
}

const DAY_MS = 86_400_000
export const RECORD_FILE = "store-identity.json"
export const recordPath = (home: string) => path.join(home, RECORD_FILE)

/** The record in the home; an unreadable or damaged one reads as none (it is a cache of what the store says). */
export const readRecord = (home: string): StoreRecord | undefined => {
  try {
    const raw = JSON.parse(fs.readFileSync(recordPath(home), "utf8")) as Partial<StoreRecord>
    const spend = Array.isArray(raw.spend)
      ? raw.spend.filter((s): s is SpendEntry => typeof s?.at === "number" && typeof s?.usd === "number")
      : []
    return { ...raw, spend }
  } catch {
    return undefined
  }
}

/** Writes the record atomically, 0600; the spend of more than a day ago is dropped. */
const writeRecord = (home: string, record: StoreRecord) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeFileAtomic(
      recordPath(home),
      JSON.stringify({ ...record, spend: record.spend.filter((s) => s.at > now - DAY_MS) }) + "\n",
      MODES.private
    )
  ).pipe(
    Effect.mapError(
      (e) => new StoreError({ operation: `keep the store's identity in ${recordPath(home)}`, detail: e.detail })
    )
  )

/** The id a store carries (store_meta `store_id`), null for none. */
const storeIdOf = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ value: string }>`SELECT value FROM store_meta WHERE key = 'store_id'`,
    (rows) => rows[0]?.value ?? null
  )

/** What the 24 hours before `now` cost in LLM calls by this installation's record: a store swapped in cannot forget it. */
export const rememberedSpend = (home: string, now: number): number =>
  (readRecord(home)?.spend ?? []).filter((s) => s.at > now - DAY_MS).reduce((sum, s) => sum + s.usd, 0)

/** Adds a command's LLM spend to the record (nothing to add, or no home made yet: nothing written). */
export const rememberSpend = (home: string, usd: number) =>
  usd <= 0 || home === "" || !fs.existsSync(home)
    ? Effect.void
    : Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const record = readRecord(home)
        return writeRecord(home, { ...record, spend: [...(record?.spend ?? []), { at: now, usd }] })
      })

const RESTORE = "restore it, or run `autotune accept-store` to start afresh with the store configured now"

const gone = (location: string, id: string | undefined) =>
  new StoreError({
    operation: "check the store",
    path: location,
    detail: `the store is gone (it was store ${id ?? "?"}); nothing was ingested or spent: ${RESTORE} (traces are read again from DotClaw's files; the last 24 hours' spend still counts)`
  })

const swapped = (location: string, was: string | undefined, now: string | undefined) =>
  new StoreError({
    operation: "check the store",
    path: location,
    detail: `another store is in its place (store ${now ?? "without an id"}, was ${was ?? "?"}); nothing was ingested or spent: ${RESTORE}`
  })

/**
 * The id a SQLite file carries, read without writing to it: "none" for a file that is readable and has none (an
 * empty file, someone else's database), "unreadable" when it cannot be read now (then the check after opening
 * decides, settleStoreIdentity).
 */
const sqliteIdOf = (file: string): string | "none" | "unreadable" => {
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: true, fileMustExist: true })
  } catch {
    return "unreadable"
  }
  try {
    const row = db.prepare("SELECT value FROM store_meta WHERE key = 'store_id'").get() as
      { value?: string } | undefined
    return row?.value ?? "none"
  } catch (error) {
    return /no such table|not a database|file is not a database/i.test((error as Error).message) ? "none" : "unreadable"
  } finally {
    db.close()
  }
}

/**
 * Before a SQLite store is opened: fails when the record names this file and it is gone or another store is in its
 * place. Returns the line to log when the store is back as a copy, or when the configuration moved it.
 */
export const checkSqliteStore = (home: string, file: string): Effect.Effect<string | undefined, StoreError> =>
  Effect.suspend(() => {
    const record = readRecord(home)
    if (record?.location === undefined || record.storeId === undefined) return Effect.succeed(undefined)
    if (record.location !== file) return Effect.succeed(undefined)
    let stat: fs.Stats
    try {
      stat = fs.statSync(file)
    } catch {
      return Effect.fail(gone(file, record.storeId))
    }
    // The id is read every time: a file made in the store's place can get the removed file's inode number.
    const id = sqliteIdOf(file)
    if (id === "unreadable") return Effect.succeed(undefined)
    if (id !== record.storeId) return Effect.fail(swapped(file, record.storeId, id === "none" ? undefined : id))
    if (stat.dev === record.device && stat.ino === record.inode) return Effect.succeed(undefined)
    return Effect.succeed(`the store at ${file} is a copy of store ${id} (a restore): carrying on with it`)
  })

/**
 * After the store is open and migrated: its id (made now for a store that has none: a new store, or one made before
 * ids), checked against the record for this location, and the record brought up to date. A record of another
 * location means the configuration names another store: a change, said in one line.
 */
export const settleStoreIdentity = (sql: SqlClient.SqlClient, home: string, location: string, file?: string) =>
  Effect.gen(function* () {
    const record = readRecord(home)
    const stored = yield* storeIdOf(sql)
    const sameLocation = record?.location === location && record.storeId !== undefined
    if (stored === null && sameLocation) return yield* swapped(location, record.storeId, undefined)
    if (stored === null) {
      const fresh = randomUUID()
      yield* isPostgres(sql)
        ? sql`INSERT INTO store_meta (key, value) VALUES ('store_id', ${fresh}) ON CONFLICT (key) DO NOTHING`
        : sql`INSERT OR IGNORE INTO store_meta (key, value) VALUES ('store_id', ${fresh})`
    }
    const id = (yield* storeIdOf(sql))!
    if (sameLocation && record.storeId !== id) return yield* swapped(location, record.storeId, id)
    const stat = file === undefined ? undefined : fs.statSync(file)
    const changed = record?.location !== undefined && record.location !== location
    if (
      record?.location !== location ||
      record.storeId !== id ||
      record.device !== stat?.dev ||
      record.inode !== stat?.ino
    ) {
      yield* writeRecord(home, {
        location,
        storeId: id,
        ...(stat === undefined ? {} : { device: stat.dev, inode: stat.ino }),
        spend: record?.spend ?? []
      })
    }
    if (changed)
      yield* Effect.logInfo(
        `the configuration names another store: now ${location} (store ${id}), was ${record.location}`
      )
  }).pipe(
    Effect.catchTag("SqlError", (e) =>
      Effect.fail(new StoreError({ operation: "read the store's id", detail: e.message }))
    )
  )

/** The id of the store open now. */
export const currentStoreId = Effect.flatMap(SqlClient.SqlClient, storeIdOf).pipe(
  Effect.catchTag("SqlError", (e) =>
    Effect.fail(new StoreError({ operation: "read the store's id", detail: e.message }))
  )
)

/** `autotune accept-store`: forgets which store the record names (the spend stays), so the next open adopts the one configured now. */
export const forgetStore = (home: string) =>
  Effect.suspend(() => {
    const record = readRecord(home)
    return record === undefined ? Effect.succeed(record) : Effect.as(writeRecord(home, { spend: record.spend }), record)
  })

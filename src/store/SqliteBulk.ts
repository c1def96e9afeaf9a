/**
 * Ingest's writes to the SQLite store: one prepared statement per row, on a connection of its own, in a
 * thread of its own when the built writer thread is there (sqliteWriterWorker.js), else on this thread.
 *
 * Why: @effect/sql runs a statement per Effect, so a batch went as multi-row INSERTs of 500 rows; SQLite runs
 * those far slower than the same rows through one prepared single-row statement (200,000 traces with their
 * pack rows, better-sqlite3 alone: 4.97 s as 500-row INSERT ... RETURNING, 3.16 s row by row), and a row at a
 * time needs no RETURNING to learn which traces were new. In a thread, SQLite's ~3 s of a 200,000-trace
 * ingest runs beside the parsing and redaction instead of after it. Both connections are to the same file
 * in WAL mode; only this one writes while an ingest runs.
 */
import { SqlError } from "@effect/sql"
import Database from "better-sqlite3"
import { Effect, Scope } from "effect"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { type MessagePort, MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads"
import { type Row, runRow } from "./BulkRows.js"
import { busyRetry, isBusy } from "./Db.js"

export type { Row } from "./BulkRows.js"

export interface RowWriter {
  /** Opens a write transaction (BEGIN IMMEDIATE); a busy store is waited for (by the thread, or here). */
  readonly begin: Effect.Effect<void, SqlError.SqlError>
  /** Writes a row in the open transaction, now or queued for the writer thread. */
  readonly add: (row: Row) => void
  /** Hands queued rows over; waits while the thread is several hand-overs behind, so memory stays bounded. */
  readonly flush: Effect.Effect<void, SqlError.SqlError>
  /**
   * Commits the open transaction. What it gives waits for the commit to be done (the thread commits while
   * the next lines are parsed): per statement, how many of the transaction's rows changed the store (were new).
   */
  readonly commit: Effect.Effect<Effect.Effect<ReadonlyArray<number>, SqlError.SqlError>, SqlError.SqlError>
  /** Rolls back whatever the open transaction holds (after a failure; never fails itself). */
  readonly rollback: Effect.Effect<void>
}

/** What the writer thread is started with. */
export interface WriterSetup {
  readonly filename: string
  readonly pragmas: ReadonlyArray<string>
  readonly statements: ReadonlyArray<string>
}
export type Request =
  { readonly type: "begin" | "commit" | "rollback" } | { readonly type: "rows"; readonly rows: ReadonlyArray<Row> }
export type ToWriter = { readonly id: number } & Request
/** What the thread is started with: the setup, the port it answers on, and its shared count of answers. */
export interface ThreadData extends WriterSetup {
  readonly replies: MessagePort
  readonly done: SharedArrayBuffer
}
interface Counts {
  readonly changed: Array<number>
}
export type FromWriter =
  | { readonly id: number; readonly changed: ReadonlyArray<number> }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } }

// As the store's own connection (Db.ts): a crash never loses a commit, only a power cut the last few. A
// larger WAL between checkpoints: a batch rewrites index pages that a checkpoint after every commit would copy
// into the database again each time.
const PRAGMAS = ["synchronous = NORMAL", "wal_autocheckpoint = 10000", "journal_size_limit = 67108864"]
// Hand-overs (of 100 traces each, from TraceSource) the thread may be behind before the main thread waits:
// enough to go on parsing through a commit (~80 ms for 20,000 lines, some 2,700 traces' worth of parsing).
// On bench:ingest's 200,000 traces: 4 in flight, 6.4-6.6 s (0.9 s blocked); 40, 5.9-6.1 s; more gained
// nothing. What waits is serialized (native, ~110 KB a hand-over), and peak RSS stayed at 177-187 MB.
const MAX_IN_FLIGHT = 40
// And by size, for turns of megabytes (long pasted documents): a hand-over goes once its rows hold this many
// characters of text, and no more than IN_FLIGHT_CHARS wait. 300 turns of 1 MB each took 724 MB peak RSS
// handed over 100 at a time.
const HAND_OVER_CHARS = 2_000_000
const IN_FLIGHT_CHARS = 8_000_000
// The thread holds one hand-over of rows at a time; its heap stays small (bench:ingest: ~15 MB for the thread).
const THREAD_HEAP = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4 }
// A thread that answers nothing for this long (BEGIN waits up to 2 minutes for another writer) has failed.
const STALL_MS = 3 * 60_000

const sqlError = (message: string) => (cause: unknown) => new SqlError.SqlError({ cause, message })

/** The built writer thread beside this module (tsc's dist/store/) or beside the bundle (dist/bin.js). */
const writerThreadFile = (): URL | undefined =>
  [new URL("./sqliteWriterWorker.js", import.meta.url), new URL("./store/sqliteWriterWorker.js", import.meta.url)].find(
    (url) => fs.existsSync(fileURLToPath(url))
  )

/**
 * A row writer on the store at `filename` for the scope's life, running `statements` (rows name them by
 * index). In the writer thread when it is built (the CLI and the library from dist/); on this thread when it
 * is not (tests run the TypeScript sources) or when `inline` is asked for.
 */
export const openRowWriter = (
  filename: string,
  statements: ReadonlyArray<string>,
  options: { readonly inline?: boolean } = {}
): Effect.Effect<RowWriter, SqlError.SqlError, Scope.Scope> => {
  const thread = options.inline === true ? undefined : writerThreadFile()
  return thread === undefined
    ? inlineWriter(filename, statements)
    : threadWriter(thread, { filename, pragmas: PRAGMAS, statements })
}

const inlineWriter = (filename: string, texts: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const db = new Database(filename, { fileMustExist: true })
        for (const pragma of PRAGMAS) db.pragma(pragma)
        return db
      },
      catch: sqlError(`open ${filename} for ingest`)
    }),
    (db) => Effect.sync(() => db.close())
  ).pipe(
    Effect.map((db): RowWriter => {
      const statements = texts.map((text) => db.prepare(text))
      let changed = texts.map(() => 0)
      // A failed row (a full disk) is kept and reported by the next flush or commit, as the thread reports
      // it: `add` runs inside the reading of a file, where a throw would read as a file error.
      let failure: unknown
      const failed = Effect.suspend(() =>
        failure === undefined ? Effect.void : Effect.fail(sqlError("ingest write")(failure))
      )
      const run = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: sqlError(what) })
      return {
        begin: run("begin ingest write", () => {
          changed = texts.map(() => 0)
          failure = undefined
          db.exec("BEGIN IMMEDIATE")
        }).pipe(Effect.retry({ schedule: busyRetry, while: isBusy })),
        add: (row) => {
          if (failure !== undefined) return
          try {
            runRow(statements, row, changed)
          } catch (e) {
            failure = e
          }
        },
        flush: failed,
        commit: Effect.zipRight(
          failed,
          run("commit ingest write", () => {
            db.exec("COMMIT")
            return Effect.succeed(changed)
          })
        ),
        rollback: Effect.sync(() => {
          try {
            if (db.inTransaction) db.exec("ROLLBACK")
          } catch {
            // SQLite rolled back on its own (a full disk)
          }
        })
      }
    })
  )

/**
 * The thread answers each request on a port of its own and counts it in shared memory; this side reads the
 * answers synchronously (receiveMessageOnPort) and blocks (Atomics.wait) only when the thread is MAX_IN_FLIGHT
 * requests behind. Waiting on promises instead cost a turn of the event loop per hand-over: about 1 s of a
 * 7 s ingest of 200,000 traces, with the thread idle half the time.
 */
const threadWriter = (file: URL, setup: WriterSetup) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const { port1: replies, port2 } = new MessageChannel()
      const done = new Int32Array(new SharedArrayBuffer(4))
      const data: ThreadData = { ...setup, replies: port2, done: done.buffer as SharedArrayBuffer }
      const worker = new Worker(file, { workerData: data, transferList: [port2], resourceLimits: THREAD_HEAP })
      let failed: string | undefined
      worker.on("error", (e) => (failed = `the ingest writer thread failed: ${e.message}`))
      // While this thread blocks, no event arrives: a thread that is gone has threadId -1 at once.
      const exited = () => failed ?? (worker.threadId === -1 ? "the ingest writer thread stopped" : undefined)
      return { worker, replies, done, exited }
    }),
    ({ worker, replies }) =>
      Effect.promise(async () => {
        replies.close()
        await worker.terminate()
      })
  ).pipe(
    Effect.map(({ worker, replies, done, exited }): RowWriter => {
      let posted = 0
      let queued: Array<Row> = []
      let queuedChars = 0
      // Rows requests not yet known to be answered, oldest first, with their characters.
      const sizes: Array<{ readonly id: number; readonly chars: number }> = []
      let inFlightChars = 0
      // The transaction each posted request belongs to, oldest unanswered first.
      const owners: Array<Counts> = []
      let tx: Counts = { changed: setup.statements.map(() => 0) }
      // The first failed request: it fails every wait for it or a later one, not for those before it.
      let failure: { readonly id: number; readonly cause: unknown } | undefined
      let answers = 0
      const post = (request: Request) => {
        owners.push(tx)
        worker.postMessage({ ...request, id: ++posted } satisfies ToWriter)
      }
      /** Takes every answer already there. */
      const receive = () => {
        for (let m = receiveMessageOnPort(replies); m !== undefined; m = receiveMessageOnPort(replies)) {
          const reply = m.message as FromWriter
          const owner = owners.shift()!
          answers++
          // SQLite's error as the thread saw it, its code intact for describeStoreCause.
          if ("error" in reply)
            failure ??= {
              id: answers,
              cause: Object.assign(new Error(reply.error.message), { code: reply.error.code })
            }
          else reply.changed.forEach((n, i) => (owner.changed[i]! += n))
        }
      }
      /** Blocks until the thread has answered request `id` and takes the answers; why not, if it cannot. */
      const block = (id: number): string | undefined => {
        let progress = Date.now()
        for (let seen = Atomics.load(done, 0); seen < id; seen = Atomics.load(done, 0)) {
          const stopped = exited()
          if (stopped !== undefined) return stopped
          if (Date.now() - progress > STALL_MS)
            return `the ingest writer thread has not answered for ${STALL_MS / 60_000} minutes`
          if (Atomics.wait(done, 0, seen, 1000) !== "timed-out") progress = Date.now()
        }
        receive()
        return undefined
      }
      /** `block` as an effect that fails with the thread's reason or the first error at or before `id`. */
      const answered = (id: number, what: string) =>
        Effect.suspend(() => {
          const stopped = block(id)
          if (stopped !== undefined) return Effect.fail(sqlError(what)(new Error(stopped)))
          return failure === undefined || failure.id > id ? Effect.void : Effect.fail(sqlError(what)(failure.cause))
        })
      const handOver = () => {
        if (queued.length === 0) return
        post({ type: "rows", rows: queued })
        sizes.push({ id: posted, chars: queuedChars })
        inFlightChars += queuedChars
        queued = []
        queuedChars = 0
      }
      /** The request to wait for so that no more than MAX_IN_FLIGHT requests and IN_FLIGHT_CHARS wait. */
      const waitFor = () => {
        const answeredSoFar = Atomics.load(done, 0)
        let id = posted - MAX_IN_FLIGHT
        while (sizes.length > 0 && (sizes[0]!.id <= answeredSoFar || inFlightChars > IN_FLIGHT_CHARS)) {
          const oldest = sizes.shift()!
          inFlightChars -= oldest.chars
          id = Math.max(id, oldest.id)
        }
        return id
      }
      return {
        begin: Effect.sync(() => {
          tx = { changed: setup.statements.map(() => 0) }
          post({ type: "begin" })
        }),
        add: (row) => {
          queued.push(row)
          for (const value of row[1]) if (typeof value === "string") queuedChars += value.length
          if (queuedChars < HAND_OVER_CHARS) return
          handOver()
          // Inside the reading of a file, between hand-overs: wait here (a failure is reported by the next
          // flush or commit, which waits for the same requests).
          if (inFlightChars > IN_FLIGHT_CHARS) block(waitFor())
        },
        flush: Effect.suspend(() => {
          handOver()
          return answered(waitFor(), "ingest write")
        }),
        commit: Effect.sync(() => {
          handOver()
          post({ type: "commit" })
          const [id, counts] = [posted, tx]
          return Effect.as(answered(id, "commit ingest write"), counts.changed)
        }),
        rollback: Effect.suspend(() => {
          queued = []
          queuedChars = 0
          post({ type: "rollback" })
          return Effect.ignore(answered(posted, "rollback ingest write"))
        })
      }
    })
  )

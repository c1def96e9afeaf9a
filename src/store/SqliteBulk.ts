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
import { Worker } from "node:worker_threads"
import { busyRetry, isBusy } from "./Db.js"

/** A row: which statement, its values, and the rows to write only when this one was new (a trace's packs). */
export type Row = readonly [statement: number, values: ReadonlyArray<unknown>, then?: ReadonlyArray<readonly [number, ReadonlyArray<unknown>]>]

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
export type Request = { readonly type: "begin" | "commit" | "rollback" | "close" } | { readonly type: "rows"; readonly rows: ReadonlyArray<Row> }
export type ToWriter = { readonly id: number } & Request
export type FromWriter =
  | { readonly id: number; readonly changed: ReadonlyArray<number> }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } }

// As the store's own connection (Db.ts): a crash never loses a commit, only a power cut the last few. A
// larger WAL between checkpoints: a batch rewrites index pages that a checkpoint after every commit would copy
// into the database again each time.
const PRAGMAS = ["synchronous = NORMAL", "wal_autocheckpoint = 10000", "journal_size_limit = 67108864"]
// Hand-overs the thread may be behind before the main thread waits. With TraceSource's hand-overs of 100
// traces, rows live too briefly to reach the main thread's old generation: 1,000-trace hand-overs, or 16 in
// flight, cost 20-40 MB more peak RSS on bench:ingest and were no faster.
const MAX_IN_FLIGHT = 4
// The thread holds one hand-over of rows at a time; its heap stays small (bench:ingest: ~15 MB for the thread).
const THREAD_HEAP = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4 }

const sqlError = (message: string) => (cause: unknown) => new SqlError.SqlError({ cause, message })

/** The built writer thread beside this module (tsc's dist/store/) or beside the bundle (dist/bin.js). */
const writerThreadFile = (): URL | undefined =>
  [new URL("./sqliteWriterWorker.js", import.meta.url), new URL("./store/sqliteWriterWorker.js", import.meta.url)].find((url) =>
    fs.existsSync(fileURLToPath(url))
  )

/**
 * A row writer on the store at `filename` for the scope's life, running `statements` (rows name them by
 * index). In the writer thread when it is built (the CLI and the library from dist/); on this thread when it
 * is not (tests run the TypeScript sources) or when `inline` is asked for.
 */
export const openRowWriter = (filename: string, statements: ReadonlyArray<string>, options: { readonly inline?: boolean } = {}): Effect.Effect<RowWriter, SqlError.SqlError, Scope.Scope> => {
  const thread = options.inline === true ? undefined : writerThreadFile()
  return thread === undefined ? inlineWriter(filename, statements) : threadWriter(thread, { filename, pragmas: PRAGMAS, statements })
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
      const failed = Effect.suspend(() => (failure === undefined ? Effect.void : Effect.fail(sqlError("ingest write")(failure))))
      const run = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: sqlError(what) })
      return {
        begin: run("begin ingest write", () => {
          changed = texts.map(() => 0)
          failure = undefined
          db.exec("BEGIN IMMEDIATE")
        }).pipe(Effect.retry({ schedule: busyRetry, while: isBusy })),
        add: ([statement, values, then]) => {
          if (failure !== undefined) return
          try {
            if (statements[statement]!.run(...values).changes === 0) return
            changed[statement]!++
            for (const [next, nextValues] of then ?? []) statements[next]!.run(...nextValues)
          } catch (e) {
            failure = e
          }
        },
        flush: failed,
        commit: Effect.zipRight(failed, run("commit ingest write", () => {
          db.exec("COMMIT")
          return Effect.succeed(changed)
        })),
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

const threadWriter = (file: URL, setup: WriterSetup) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const worker = new Worker(file, { workerData: setup, resourceLimits: THREAD_HEAP })
      const waiting = new Map<number, { resolve: (m: FromWriter) => void; reject: (e: unknown) => void }>()
      const failAll = (cause: unknown) => {
        for (const w of waiting.values()) w.reject(cause)
        waiting.clear()
      }
      worker.on("message", (m: FromWriter) => {
        waiting.get(m.id)?.resolve(m)
        waiting.delete(m.id)
      })
      worker.on("error", failAll)
      worker.on("exit", (code) => failAll(new Error(`the ingest writer thread stopped (exit ${code})`)))
      return { worker, waiting }
    }),
    ({ worker, waiting }) =>
      Effect.promise(async () => {
        if (waiting.size === 0) worker.postMessage({ id: 0, type: "close" } satisfies ToWriter)
        await worker.terminate()
      })
  ).pipe(
    Effect.map(({ worker, waiting }): RowWriter => {
      let nextId = 1
      let queued: Array<Row> = []
      // Replies not yet waited for, oldest first; the thread answers in order.
      let inFlight: Array<Promise<unknown>> = []
      // The open transaction: its rows' counts and every reply it waits for.
      let tx = { changed: setup.statements.map(() => 0), replies: [] as Array<Promise<unknown>> }
      const post = (message: Request) => {
        const current = tx
        const reply = new Promise<FromWriter>((resolve, reject) => {
          const id = nextId++
          waiting.set(id, { resolve, reject })
          worker.postMessage({ ...message, id } satisfies ToWriter)
        }).then((m) => {
          // SQLite's error as the thread saw it, its code intact for describeStoreCause.
          if ("error" in m) throw Object.assign(new Error(m.error.message), { code: m.error.code })
          m.changed.forEach((n, i) => (current.changed[i]! += n))
        })
        reply.catch(() => undefined) // waited for later; not an unhandled rejection meanwhile
        current.replies.push(reply)
        inFlight.push(reply)
      }
      const wait = (what: string, replies: ReadonlyArray<Promise<unknown>>) =>
        Effect.tryPromise({ try: () => Promise.all(replies), catch: sqlError(what) })
      const handOver = () => {
        if (queued.length > 0) post({ type: "rows", rows: queued })
        queued = []
      }
      return {
        begin: Effect.sync(() => {
          tx = { changed: setup.statements.map(() => 0), replies: [] }
          post({ type: "begin" })
        }),
        add: (row) => void queued.push(row),
        flush: Effect.suspend(() => {
          handOver()
          if (inFlight.length <= MAX_IN_FLIGHT) return Effect.void
          const oldest = inFlight.slice(0, inFlight.length - MAX_IN_FLIGHT)
          inFlight = inFlight.slice(oldest.length)
          return wait("ingest write", oldest)
        }),
        commit: Effect.sync(() => {
          handOver()
          post({ type: "commit" })
          const done = tx
          return Effect.as(wait("commit ingest write", done.replies), done.changed)
        }),
        rollback: Effect.suspend(() => {
          queued = []
          inFlight = []
          post({ type: "rollback" })
          return Effect.promise(() => Promise.allSettled(tx.replies))
        }).pipe(Effect.asVoid)
      }
    })
  )

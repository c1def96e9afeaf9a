/**
 * A trace file's batches into the store, two ways: SQLite's rows through the bulk row writer as they are parsed
 * (store/SqliteBulk.ts), PostgreSQL's as multi-row INSERTs. Either way each transaction commits the rows with
 * the file position after its last line: a kill at any point loses or doubles nothing.
 */
import type { SqlClient, SqlError } from "@effect/sql"
import { Clock, Effect } from "effect"
import type * as fs from "node:fs"
import type { AppConfig } from "../config/Table.js"
import type { FileError, StoreError } from "../Domain/Errors.js"
import { storedVersion } from "../privacy/Redactor.js"
import { storeError } from "../store/Db.js"
import type { RowWriter } from "../store/SqliteBulk.js"
import { BULK, commitTraceRows, MALFORMED_COLUMNS, packValues, type StoredAt, traceValues } from "../store/TraceRows.js"
import { type Batch, fileBatches, fileError, mergeBatches, type Parsed, type ReadEnd } from "./Batch.js"
import type { From, Position, Positions } from "./Positions.js"

// SQLite (readBulk): lines per transaction, and per hand-over to the row writer within one.
const BULK_BATCH_LINES = 20_000
const BULK_CHUNK_LINES = 100
const { trace: TRACE, pack: PACK, malformed: MALFORMED, position: POSITION } = BULK

export const makeWrite = (
  { sql, config }: { readonly sql: SqlClient.SqlClient; readonly config: AppConfig },
  { positionRow, positionValues }: Positions
) => {
  const redactionVersion = storedVersion(config.redact)
  const storedAt = (file: string, p: Parsed, now: number): StoredAt => ({
    file,
    byteOffset: p.byteOffset,
    lineNo: p.lineNo,
    now,
    redactionVersion
  })
  /** A file's position alone (a file read again from the start, or seen for the first time with nothing new). */
  const savePosition = (writer: RowWriter | undefined, file: string, next: Position) => {
    const save: Effect.Effect<unknown, SqlError.SqlError> =
      writer === undefined
        ? commitStatements(file, undefined, next)
        : Effect.zipRight(
            writer.begin,
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              writer.add([POSITION, positionValues(file, next, now)])
              return Effect.flatten(writer.commit)
            })
          ).pipe(Effect.onError(() => writer.rollback))
    return save.pipe(Effect.mapError(storeError(`ingest of ${file}`)))
  }

  /** Rows and the file's new position in one transaction: a kill at any point loses or doubles nothing. */
  const commitStatements = (file: string, batch: Batch | undefined, next: Position) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      commitTraceRows(sql, {
        traces: (batch?.parsed ?? []).map((p) => ({ trace: p.trace, at: storedAt(file, p, now) })),
        malformed: batch?.malformed ?? [],
        position: positionRow(file, next, now)
      })
    )

  /** PostgreSQL: batches of parsed lines, each committed as multi-row INSERTs with the file position after it. */
  const readStatements = (
    file: string,
    handle: fs.promises.FileHandle,
    from: From,
    size: number,
    positionAt: (batch: Batch) => Position,
    committed: (batch: Batch, inserted: number) => void
  ) =>
    Effect.gen(function* () {
      const batches = fileBatches(handle.fd, file, config.redact, from, size, { maxLineBytes: config.maxLineBytes })
      for (;;) {
        const next = yield* Effect.try({ try: () => batches.next(), catch: fileError(file, "read") })
        if (next.done === true) return next.value
        const inserted = yield* commitStatements(file, next.value, positionAt(next.value)).pipe(
          Effect.mapError(storeError(`ingest of ${file}`))
        )
        committed(next.value, inserted)
      }
    })

  /**
   * SQLite: each trace goes to the row writer as it is parsed (so a batch's traces are never all in memory,
   * and SQLite writes while the next lines are parsed), and each transaction commits with the file position
   * after its last line. Only a new trace gets pack rows: one seen twice keeps the versions it was first
   * stored with, and the first line of a trace id is the one stored.
   */
  const readBulk = (
    writer: RowWriter,
    file: string,
    handle: fs.promises.FileHandle,
    from: From,
    size: number,
    positionAt: (batch: Batch) => Position,
    committed: (batch: Batch, inserted: number) => void
  ): Effect.Effect<ReadEnd, FileError | StoreError> =>
    Effect.gen(function* () {
      let now = yield* Clock.currentTimeMillis
      const sink = (p: Parsed) =>
        writer.add([
          TRACE,
          traceValues(p.trace, storedAt(file, p, now)),
          packValues(p.trace).map((values) => [PACK, values] as const)
        ])
      const batches = fileBatches(handle.fd, file, config.redact, from, size, {
        batchLines: BULK_CHUNK_LINES,
        sink,
        maxLineBytes: config.maxLineBytes
      })
      let chunks: Array<Batch> = []
      let lines = 0
      // The last commit handed to the writer and its lines: counted once it is done, while the next
      // transaction's lines are already being read.
      let pending: Effect.Effect<void, SqlError.SqlError> = Effect.void
      const commit = Effect.gen(function* () {
        const batch = mergeBatches(chunks)
        for (const m of batch.malformed) writer.add([MALFORMED, MALFORMED_COLUMNS.map((c) => m[c])])
        writer.add([POSITION, positionValues(file, positionAt(batch), now)])
        const done = yield* writer.commit
        yield* pending
        pending = Effect.map(done, (changed) => committed(batch, changed[TRACE]!))
        chunks = []
        lines = 0
      })
      const read = Effect.try({ try: () => batches.next(), catch: fileError(file, "read") })
      const loop = Effect.gen(function* () {
        for (;;) {
          if (chunks.length === 0) {
            yield* writer.begin
            now = yield* Clock.currentTimeMillis
          }
          const next = yield* read
          if (next.done === true) {
            if (chunks.length > 0) yield* commit
            else yield* writer.rollback
            yield* pending
            return next.value
          }
          chunks.push(next.value)
          lines += next.value.lines
          if (lines >= BULK_BATCH_LINES) yield* commit
          else yield* writer.flush
        }
      })
      return yield* loop.pipe(
        Effect.mapError((e) => (e._tag === "FileError" ? e : storeError(`ingest of ${file}`)(e))),
        // What was committed before the failure is counted, so the error can say how much was saved.
        Effect.onError(() => Effect.zipRight(Effect.ignore(Effect.suspend(() => pending)), writer.rollback))
      )
    })

  return { savePosition, readStatements, readBulk } as const
}

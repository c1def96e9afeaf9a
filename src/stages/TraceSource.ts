import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, type Scope } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Settings, storeLocation } from "../Config.js"
import { FileError, StoreError } from "../Domain/Errors.js"
import { type Batch, fileBatches, MALFORMED_COLUMNS, mergeBatches, type Parsed, type ReadEnd } from "./IngestBatch.js"
import { storedVersion } from "../privacy/Redactor.js"
import { storeError, writeTransaction } from "../store/Db.js"
import { insertIgnore, isPostgres } from "../store/Dialect.js"
import { openRowWriter, type RowWriter } from "../store/SqliteBulk.js"
import { PACK_COLUMNS, packValues, type StoredAt, TRACE_COLUMNS, traceRow, traceValues } from "../store/TraceRows.js"

export interface IngestSummary {
  readonly files: number
  /** Complete lines read this run (blank lines included). */
  readonly lines: number
  readonly ingested: number
  readonly duplicates: number
  readonly malformed: number
  /** Malformed lines by kind of problem ("bad timestamp", "invalid JSON", …). */
  readonly malformedReasons: Readonly<Record<string, number>>
  readonly bytes: number
  /** Files that were read again from the start because they shrank or were replaced. */
  readonly restarted: number
  /** Files whose last line has no newline yet; it waits for the next run. */
  readonly pendingPartial: number
  readonly elapsedMs: number
}

export interface IngestProgress {
  readonly bytesDone: number
  readonly bytesTotal: number
  readonly file: string
}

type Totals = { -readonly [K in Exclude<keyof IngestSummary, "elapsedMs" | "files" | "malformedReasons">]: IngestSummary[K] } & {
  readonly malformedReasons: Record<string, number>
}

const ROWS_PER_INSERT = 500
// SQLite (readBulk): lines per transaction, and per hand-over to the row writer within one.
const BULK_BATCH_LINES = 20_000
const BULK_CHUNK_LINES = 100
const POSITION_COLUMNS = ["host_id", "file", "file_id", "byte_offset", "line_no", "head_hash", "updated_at"] as const
const POSITION_CONFLICT = `ON CONFLICT (host_id, file) DO UPDATE SET file_id = excluded.file_id, byte_offset = excluded.byte_offset,
  line_no = excluded.line_no, head_hash = excluded.head_hash, updated_at = excluded.updated_at`
const insertOrIgnore = (table: string, columns: ReadonlyArray<string>) =>
  `INSERT OR IGNORE INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
const UPSERT_POSITION = `INSERT INTO ingest_positions (${POSITION_COLUMNS.join(", ")}) VALUES (${POSITION_COLUMNS.map(() => "?").join(", ")})
  ${POSITION_CONFLICT}`
// The row writer's statements, named by their index.
const [TRACE, PACK, MALFORMED, POSITION] = [0, 1, 2, 3] as const
const BULK_STATEMENTS = [
  insertOrIgnore("traces", TRACE_COLUMNS),
  insertOrIgnore("trace_packs", PACK_COLUMNS),
  insertOrIgnore("malformed_lines", MALFORMED_COLUMNS),
  UPSERT_POSITION
]
const HEAD_BYTES = 512

/** Where reading a file starts. */
interface From {
  readonly byteOffset: number
  readonly lineNo: number
}

interface Position {
  readonly fileId: string
  readonly byteOffset: number
  readonly lineNo: number
  readonly headHash: string
}

const fileError = (file: string, operation: string) => (cause: unknown) =>
  new FileError({ path: file, operation, detail: cause instanceof Error ? cause.message : String(cause) })

const headHash = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex").slice(0, 16)

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

export class TraceSource extends Effect.Service<TraceSource>()("autotune/TraceSource", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config, dotclawHome } = yield* Settings

    // SQLite's rows go through a bulk writer (store/SqliteBulk.ts); PostgreSQL's as multi-row INSERTs.
    const bulkFile = isPostgres(sql) ? undefined : config.dbPath

    const redactionVersion = storedVersion(config.redact)
    const storedAt = (file: string, p: Parsed, now: number): StoredAt => ({ file, byteOffset: p.byteOffset, lineNo: p.lineNo, now, redactionVersion })
    const positionRow = (file: string, next: Position, now: number): Record<(typeof POSITION_COLUMNS)[number], string | number> =>
      ({ host_id: config.hostId, file, file_id: next.fileId, byte_offset: next.byteOffset, line_no: next.lineNo, head_hash: next.headHash, updated_at: now })
    const positionValues = (file: string, next: Position, now: number) => {
      const row = positionRow(file, next, now)
      return POSITION_COLUMNS.map((c) => row[c])
    }

    /** A file's position alone (a file read again from the start, or seen for the first time with nothing new). */
    const savePosition = (writer: RowWriter | undefined, file: string, next: Position) => {
      const save: Effect.Effect<unknown, SqlError.SqlError> = writer === undefined
        ? commitStatements(file, undefined, next)
        : Effect.zipRight(writer.begin, Effect.suspend(() => {
            writer.add([POSITION, positionValues(file, next, Date.now())])
            return Effect.flatten(writer.commit)
          })).pipe(Effect.onError(() => writer.rollback))
      return save.pipe(Effect.mapError(storeError(`ingest of ${file}`)))
    }

    /** Rows and the file's new position in one transaction: a kill at any point loses or doubles nothing. */
    const commitStatements = (file: string, batch: Batch | undefined, next: Position) =>
      writeTransaction(sql,
        Effect.gen(function* () {
          const now = Date.now()
          const fresh = new Set<string>()
          for (const rows of chunks(batch?.parsed ?? [], ROWS_PER_INSERT)) {
            const ids = yield* insertIgnore(sql, "traces", rows.map((p) => traceRow(p.trace, storedAt(file, p, now))), "trace_id")
            for (const r of ids) fresh.add(r["trace_id"] as string)
          }
          const inserted = fresh.size
          const packs = (batch?.parsed ?? []).filter((p) => fresh.delete(p.trace.traceId)).flatMap((p) =>
            packValues(p.trace).map((values) => Object.fromEntries(PACK_COLUMNS.map((c, i) => [c, values[i]])))
          )
          for (const rows of chunks(packs, ROWS_PER_INSERT)) {
            yield* insertIgnore(sql, "trace_packs", rows)
          }
          for (const rows of chunks(batch?.malformed ?? [], ROWS_PER_INSERT)) {
            yield* insertIgnore(sql, "malformed_lines", rows)
          }
          yield* sql`INSERT INTO ingest_positions ${sql.insert(positionRow(file, next, now))} ${sql.literal(POSITION_CONFLICT)}`
          return inserted
        })
      )

    const savedPosition = (file: string) =>
      sql<{ fileId: string; byteOffset: number; lineNo: number; headHash: string }>`
        SELECT file_id AS "fileId", byte_offset AS "byteOffset", line_no AS "lineNo", head_hash AS "headHash"
        FROM ingest_positions WHERE host_id = ${config.hostId} AND file = ${file}`.pipe(
        Effect.map((rows) => rows[0]),
        Effect.mapError(storeError("read ingest positions"))
      )

    /**
     * Where to resume: the saved offset, or 0 when the file shrank, was replaced, or was never seen.
     * The head hash covers the first bytes already consumed, so appends never change it.
     */
    const startPosition = (file: string, handle: fs.promises.FileHandle, stat: fs.Stats) =>
      Effect.gen(function* () {
        const fileId = `${stat.dev}:${stat.ino}`
        const saved = yield* savedPosition(file)
        const head = Buffer.alloc(Math.min(HEAD_BYTES, stat.size))
        yield* Effect.tryPromise({ try: () => handle.read(head, 0, head.length, 0), catch: fileError(file, "read") })
        const hashAt = (offset: number) => headHash(head.subarray(0, Math.min(HEAD_BYTES, offset)))
        if (saved === undefined) return { fileId, byteOffset: 0, lineNo: 0, restarted: false, hashAt }
        const same = saved.fileId === fileId && saved.byteOffset <= stat.size && saved.headHash === hashAt(saved.byteOffset)
        if (same) return { fileId, byteOffset: saved.byteOffset, lineNo: saved.lineNo, restarted: false, hashAt }
        return { fileId, byteOffset: 0, lineNo: 0, restarted: saved.byteOffset > 0, hashAt }
      })

    /** PostgreSQL: batches of parsed lines, each committed as multi-row INSERTs with the file position after it. */
    const readStatements = (file: string, handle: fs.promises.FileHandle, from: From, size: number, positionAt: (batch: Batch) => Position, committed: (batch: Batch, inserted: number) => void) =>
      Effect.gen(function* () {
        const batches = fileBatches(handle.fd, file, config.redact, from, size, { maxLineBytes: config.maxLineBytes })
        for (;;) {
          const next = yield* Effect.try({ try: () => batches.next(), catch: fileError(file, "read") })
          if (next.done === true) return next.value
          const inserted = yield* commitStatements(file, next.value, positionAt(next.value)).pipe(Effect.mapError(storeError(`ingest of ${file}`)))
          committed(next.value, inserted)
        }
      })

    /**
     * SQLite: each trace goes to the row writer as it is parsed (so a batch's traces are never all in memory,
     * and SQLite writes while the next lines are parsed), and each transaction commits with the file position
     * after its last line. Only a new trace gets pack rows: one seen twice keeps the versions it was first
     * stored with, and the first line of a trace id is the one stored.
     */
    const readBulk = (writer: RowWriter, file: string, handle: fs.promises.FileHandle, from: From, size: number, positionAt: (batch: Batch) => Position, committed: (batch: Batch, inserted: number) => void): Effect.Effect<ReadEnd, FileError | StoreError> =>
      Effect.gen(function* () {
        let now = Date.now()
        const sink = (p: Parsed) =>
          writer.add([TRACE, traceValues(p.trace, storedAt(file, p, now)), packValues(p.trace).map((values) => [PACK, values] as const)])
        const batches = fileBatches(handle.fd, file, config.redact, from, size, { batchLines: BULK_CHUNK_LINES, sink, maxLineBytes: config.maxLineBytes })
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
              now = Date.now()
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

    const ingestFile = (
      // Opened on first use: a run with nothing new starts no writer.
      writer: Effect.Effect<RowWriter, StoreError, Scope.Scope> | undefined,
      file: string,
      totals: Totals,
      progress: (bytes: number) => void
    ) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => fs.promises.open(file, "r"), catch: fileError(file, "open") }),
        (handle) =>
          Effect.gen(function* () {
            const stat = yield* Effect.tryPromise({ try: () => handle.stat(), catch: fileError(file, "stat") })
            const start = yield* startPosition(file, handle, stat)
            if (start.restarted) {
              totals.restarted++
              yield* Effect.logWarning(`${path.basename(file)} shrank or was replaced; reading it again from the start (duplicates are skipped)`)
            }
            const positionAt = (byteOffset: number, lineNo: number): Position => ({ fileId: start.fileId, byteOffset, lineNo, headHash: start.hashAt(byteOffset) })
            let position = positionAt(start.byteOffset, start.lineNo)
            const after = (batch: Batch) => positionAt(batch.byteOffset, batch.lineNo)
            const committed = (batch: Batch, inserted: number) => {
              const before = position.byteOffset
              position = after(batch)
              totals.lines += batch.lines
              totals.ingested += inserted
              totals.duplicates += batch.traces - inserted
              totals.malformed += batch.malformed.length
              for (const kind of batch.malformedKinds) totals.malformedReasons[kind] = (totals.malformedReasons[kind] ?? 0) + 1
              progress(batch.byteOffset - before)
            }
            // Read only up to the size seen at the start; a line DotClaw appends meanwhile waits for the next run.
            const end = writer === undefined
              ? yield* readStatements(file, handle, start, stat.size, after, committed)
              : start.byteOffset >= stat.size
                ? { bytes: 0, carried: 0 }
                : yield* readBulk(yield* writer, file, handle, start, stat.size, after, committed)
            if (end.carried > 0) totals.pendingPartial++
            // Record the position even when no line was new, so a replaced file is not re-read each run.
            if (start.restarted || (yield* savedPosition(file)) === undefined) {
              yield* savePosition(writer === undefined ? undefined : yield* writer, file, position)
            }
            totals.bytes += end.bytes
          }),
        (handle) => Effect.promise(() => handle.close())
      )

    const listFiles = Effect.tryPromise({
      try: async () => {
        const entries = await fs.promises.readdir(config.traceDir, { withFileTypes: true })
        return entries
          .filter((e) => e.isFile() && e.name.endsWith(".jsonl"))
          .map((e) => path.join(config.traceDir, e.name))
          .sort()
      },
      catch: fileError(config.traceDir, "list trace dir")
    })

    const ingest = Effect.fn("TraceSource.ingest")(function* (onProgress?: (p: IngestProgress) => void) {
      const started = Date.now()
      const exists = fs.existsSync(config.traceDir)
      if (!exists) {
        const where = dotclawHome === undefined ? "no current DotClaw found (DOTCLAW_HOME unset, no ~/.dotclaw); " : ""
        yield* Effect.logWarning(`${where}trace dir ${config.traceDir} does not exist yet; nothing to ingest (set DOTCLAW_HOME or AUTOTUNE_TRACE_DIR if DotClaw writes elsewhere)`)
      }
      const files = exists ? yield* listFiles : []
      const writer = bulkFile === undefined ? undefined : yield* Effect.cached(openRowWriter(bulkFile, BULK_STATEMENTS).pipe(Effect.mapError(storeError("open the store for ingest"))))
      const sizes = files.map((f) => {
        try {
          return fs.statSync(f).size
        } catch {
          return 0
        }
      })
      const bytesTotal = sizes.reduce((a, b) => a + b, 0)
      let bytesDone = 0
      const totals: Totals = { lines: 0, ingested: 0, duplicates: 0, malformed: 0, malformedReasons: {}, bytes: 0, restarted: 0, pendingPartial: 0 }
      for (const file of files) {
        yield* ingestFile(writer, file, totals, (n) => {
          bytesDone += n
          onProgress?.({ bytesDone, bytesTotal, file })
        }).pipe(
          // A file deleted by DotClaw's retention between listing and reading is not an error.
          Effect.catchIf(
            (e): e is FileError => e._tag === "FileError" && !fs.existsSync(file),
            () => Effect.logInfo(`${path.basename(file)} disappeared while ingesting; skipped`)
          ),
          // A person must know whether anything was lost: each batch commits with its file position, so no.
          Effect.mapError((e) =>
            e._tag === "StoreError"
              ? new StoreError({
                  operation: e.operation,
                  detail: e.detail,
                  path: storeLocation(config),
                  saved: `${totals.ingested} new trace(s) were saved before it; the batch being written was rolled back and the next run resumes from the last saved position: nothing was lost`
                })
              : e
          )
        )
      }
      // Positions of files DotClaw's retention deleted go too; not when the whole dir is missing (an unmounted
      // disk must not cost a full re-read later).
      if (exists) {
        yield* sql`DELETE FROM ingest_positions WHERE host_id = ${config.hostId} AND file NOT IN ${sql.in(files.length > 0 ? files : [""])}`.pipe(
          Effect.mapError(storeError("prune ingest positions"))
        )
      }
      const summary: IngestSummary = { files: files.length, ...totals, elapsedMs: Date.now() - started }
      return summary
    }, Effect.scoped)

    return { ingest } as const
  })
}) {}

export type IngestError = FileError | StoreError | SqlError.SqlError

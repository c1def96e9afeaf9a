/**
 * ingest/: DotClaw's trace files and users' reactions into the store, incrementally, redacted and crash-safe.
 * Ingest.ts is the TraceSource service: which files, in what order, and the run's summary. Batch.ts reads a
 * file's lines in batches, Parse.ts turns one line into a Trace, Write.ts commits a batch with its file
 * position, Positions.ts says where each file resumes; Feedback.ts imports 👍/👎 from DotClaw's messages.db,
 * Rescan.ts re-cleans stored text after a redaction upgrade.
 * May import: Domain, config, privacy, store, llm
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Effect, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Settings, storeLocation } from "../config/Config.js"
import { type FileError, StoreError } from "../Domain/Errors.js"
import { storeError } from "../store/Db.js"
import { isPostgres } from "../store/Dialect.js"
import { openRowWriter, type RowWriter } from "../store/SqliteBulk.js"
import { type Batch, fileError } from "./Batch.js"
import { makePositions, type Position } from "./Positions.js"
import { makeWrite } from "./Write.js"
import { BULK_STATEMENTS, forgetPositionsExcept } from "../store/TraceRows.js"

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

type Totals = {
  -readonly [K in Exclude<keyof IngestSummary, "elapsedMs" | "files" | "malformedReasons">]: IngestSummary[K]
} & {
  readonly malformedReasons: Record<string, number>
}

// Regular files only: a symbolic link could point anywhere on the machine (another user's file, a device),
// and DotClaw writes its traces as plain files. A link is skipped with one warning line a cycle.
const listTraceFiles = (traceDir: string) =>
  Effect.tryPromise({
    try: async () => {
      const entries = (await fs.promises.readdir(traceDir, { withFileTypes: true })).filter((e) =>
        e.name.endsWith(".jsonl")
      )
      const files = entries
        .filter((e) => e.isFile())
        .map((e) => path.join(traceDir, e.name))
        .sort()
      const links = entries
        .filter((e) => e.isSymbolicLink())
        .map((e) => e.name)
        .sort()
      // A FIFO or socket would block the read for good (and SIGTERM with it); a directory is no trace file.
      const others = entries
        .filter((e) => !e.isFile() && !e.isSymbolicLink())
        .map((e) => e.name)
        .sort()
      return { files, links, others }
    },
    catch: fileError(traceDir, "list trace dir")
  }).pipe(
    Effect.tap(({ links, others }) => {
      const names = (list: ReadonlyArray<string>) => `${list.slice(0, 3).join(", ")}${list.length > 3 ? ", …" : ""}`
      return Effect.all([
        links.length === 0
          ? Effect.void
          : Effect.logWarning(
              `skipped ${links.length} symbolic link(s) in ${traceDir} (${names(links)}): autotune reads only regular trace files; copy the file there instead`
            ),
        others.length === 0
          ? Effect.void
          : Effect.logWarning(
              `skipped ${others.length} entr(y/ies) in ${traceDir} that are not regular files (${names(others)}: a FIFO, socket or directory)`
            )
      ])
    }),
    Effect.map(({ files }) => files)
  )

/** A committed batch counted into the run's totals. */
const addBatch = (totals: Totals, batch: Batch, inserted: number) => {
  totals.lines += batch.lines
  totals.ingested += inserted
  totals.duplicates += batch.traces - inserted
  totals.malformed += batch.malformed.length
  for (const kind of batch.malformedKinds) totals.malformedReasons[kind] = (totals.malformedReasons[kind] ?? 0) + 1
}

export class TraceSource extends Effect.Service<TraceSource>()("autotune/TraceSource", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config, dotclawHome } = yield* Settings

    // SQLite's rows go through a bulk writer (store/SqliteBulk.ts); PostgreSQL's as multi-row INSERTs.
    const bulkFile = isPostgres(sql) ? undefined : config.dbPath

    const positions = makePositions({ sql, config })
    const { savedPosition, startPosition } = positions
    const { savePosition, readStatements, readBulk } = makeWrite({ sql, config }, positions)

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
              yield* Effect.logWarning(
                `${path.basename(file)} shrank or was replaced; reading it again from the start (duplicates are skipped)`
              )
            }
            const positionAt = (byteOffset: number, lineNo: number): Position => ({
              fileId: start.fileId,
              byteOffset,
              lineNo,
              headHash: start.hashAt(byteOffset)
            })
            let position = positionAt(start.byteOffset, start.lineNo)
            const after = (batch: Batch) => positionAt(batch.byteOffset, batch.lineNo)
            const committed = (batch: Batch, inserted: number) => {
              const before = position.byteOffset
              position = after(batch)
              addBatch(totals, batch, inserted)
              progress(batch.byteOffset - before)
            }
            // Read only up to the size seen at the start; a line DotClaw appends meanwhile waits for the next run.
            const end =
              writer === undefined
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

    const ingest = Effect.fn("TraceSource.ingest")(function* (onProgress?: (p: IngestProgress) => void) {
      const started = yield* Clock.currentTimeMillis
      const exists = fs.existsSync(config.traceDir)
      if (!exists) {
        const where = dotclawHome === undefined ? "no current DotClaw found (DOTCLAW_HOME unset, no ~/.dotclaw); " : ""
        yield* Effect.logWarning(
          `${where}trace dir ${config.traceDir} does not exist yet; nothing to ingest (set DOTCLAW_HOME or AUTOTUNE_TRACE_DIR if DotClaw writes elsewhere)`
        )
      }
      const files = exists ? yield* listTraceFiles(config.traceDir) : []
      const writer =
        bulkFile === undefined
          ? undefined
          : yield* Effect.cached(
              openRowWriter(bulkFile, BULK_STATEMENTS).pipe(Effect.mapError(storeError("open the store for ingest")))
            )
      const sizes = files.map((f) => {
        try {
          return fs.statSync(f).size
        } catch {
          return 0
        }
      })
      const bytesTotal = sizes.reduce((a, b) => a + b, 0)
      let bytesDone = 0
      const totals: Totals = {
        lines: 0,
        ingested: 0,
        duplicates: 0,
        malformed: 0,
        malformedReasons: {},
        bytes: 0,
        restarted: 0,
        pendingPartial: 0
      }
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
        yield* forgetPositionsExcept(sql, config.hostId, files)
      }
      const summary: IngestSummary = {
        files: files.length,
        ...totals,
        elapsedMs: (yield* Clock.currentTimeMillis) - started
      }
      return summary
    }, Effect.scoped)

    return { ingest } as const
  })
}) {}

export type IngestError = FileError | StoreError | SqlError.SqlError

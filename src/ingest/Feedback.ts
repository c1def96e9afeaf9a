import { SqlClient } from "@effect/sql"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import { Settings } from "../config/Config.js"
import { StoreError } from "../Domain/Errors.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { describeStoreCause, rowsChanged, storeError, writeTransaction } from "../store/Db.js"
import { insertIgnore } from "../store/Dialect.js"

/**
 * Users' 👍/👎 reactions, imported from DotClaw's messages.db (shared/dotclaw-interop.md §6). DotClaw's host
 * writes that database while it runs, so it is opened read-only, with a busy timeout, and read in short
 * statements (each its own read transaction): in WAL mode a reader never blocks DotClaw's writer. Import is
 * incremental and idempotent, keyed by DotClaw's feedback id; a reaction whose trace has not been ingested
 * yet is kept and joins its trace when it arrives.
 */

export interface FeedbackSummary {
  /** The database read, or null when there was none to read. */
  readonly source: string | null
  readonly imported: number
  /** Reactions stored whose trace is not ingested yet. */
  readonly waitingForTrace: number
  readonly skipped?: string
}

interface Row {
  readonly id: string
  readonly trace_id: string
  readonly feedback_type: string
  readonly reason: string | null
  readonly created_at: string
  readonly user_id: string | null
}

const PAGE = 2000
const BUSY_TIMEOUT_MS = 2000
// Reactions can be written slightly out of order; re-reading a day before the newest one costs little.
const OVERLAP_MS = 86_400_000

/** Reads reactions newer than `since` (ISO) in pages; every page is one short statement. */
const readPages = (file: string, since: string, onPage: (rows: ReadonlyArray<Row>) => void): "ok" | "no-table" => {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'user_feedback'").get()
    if (table === undefined) return "no-table"
    // Who reacted (DotClaw writes it; an older table may lack the column): alignment bounds each person's weight.
    const hasUser = (db.prepare("SELECT 1 FROM pragma_table_info('user_feedback') WHERE name = 'user_id'").get() as unknown) !== undefined
    const page = db.prepare(
      `SELECT id, trace_id, feedback_type, reason, created_at, ${hasUser ? "user_id" : "NULL AS user_id"} FROM user_feedback
       WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ${PAGE}`
    )
    let after: [string, string] = [since, ""]
    for (;;) {
      const rows = page.all(...after) as Array<Row>
      if (rows.length === 0) return "ok"
      onPage(rows)
      const last = rows[rows.length - 1]!
      after = [last.created_at, last.id]
    }
  } finally {
    db.close()
  }
}

export class Feedback extends Effect.Service<Feedback>()("autotune/Feedback", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings

    const newest = sql<{ at: string | null }>`SELECT MAX(created_at) AS at FROM feedback`.pipe(
      Effect.map((rows) => rows[0]?.at ?? null),
      Effect.mapError(storeError("read feedback"))
    )

    const store = (rows: ReadonlyArray<Row>) =>
      writeTransaction(
        sql,
        Effect.gen(function* () {
          const now = Date.now()
          const values = rows
            .filter((r) => r.feedback_type === "positive" || r.feedback_type === "negative")
            .map((r) => ({
              id: r.id,
              trace_id: r.trace_id,
              feedback_type: r.feedback_type,
              reason: r.reason === null ? null : redactIf(config.redact, r.reason),
              user_id: r.user_id === null ? null : String(r.user_id),
              created_at: r.created_at,
              created_ms: Date.parse(r.created_at) || now,
              imported_at: now,
              redaction_version: storedVersion(config.redact)
            }))
          if (values.length === 0) return 0
          const result = yield* insertIgnore(sql, "feedback", values).raw
          return rowsChanged(result)
        })
      ).pipe(Effect.mapError(storeError("store feedback")))

    const waiting = sql<{ n: number }>`SELECT COUNT(*) AS n FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.trace_id = f.trace_id)`.pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0)),
      Effect.mapError(storeError("count feedback"))
    )

    /** Imports what is new; a missing database or table is one info line, not a failure. */
    const importNew = Effect.fn("Feedback.importNew")(function* () {
      const file = config.feedbackDbPath
      if (!fs.existsSync(file)) {
        yield* Effect.logInfo(`no DotClaw feedback database at ${file}; users' reactions are not imported (set AUTOTUNE_FEEDBACK_DB if it is elsewhere)`)
        return { source: null, imported: 0, waitingForTrace: 0, skipped: "no database" } satisfies FeedbackSummary
      }
      const since = yield* newest
      const from = since === null ? "" : new Date(Math.max(0, Date.parse(since) - OVERLAP_MS)).toISOString()
      const pages: Array<ReadonlyArray<Row>> = []
      const read = yield* Effect.try({
        // Pages are collected first: the foreign database is closed before our own write transaction starts.
        try: () => readPages(file, from, (rows) => pages.push(rows)),
        catch: (cause) => new StoreError({ operation: "read DotClaw's feedback", path: file, detail: describeStoreCause(cause) })
      })
      if (read === "no-table") {
        yield* Effect.logInfo(`${file} has no user_feedback table (DotClaw older than 2.5?); users' reactions are not imported`)
        return { source: file, imported: 0, waitingForTrace: 0, skipped: "no user_feedback table" } satisfies FeedbackSummary
      }
      let imported = 0
      for (const rows of pages) imported += yield* store(rows)
      return { source: file, imported, waitingForTrace: yield* waiting } satisfies FeedbackSummary
    })

    return { importNew } as const
  })
}) {}

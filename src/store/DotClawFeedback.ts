/**
 * DotClaw's own messages.db, read for its users' reactions (`user_feedback`). DotClaw's host writes that database
 * while it runs, so it is opened read-only, with a busy timeout, and read in short statements (each its own read
 * transaction): in WAL mode a reader never blocks DotClaw's writer.
 */
import Database from "better-sqlite3"

/** A reaction as DotClaw's user_feedback holds it (user_id is null where an older table lacks the column). */
export interface DotClawReaction {
  readonly id: string
  readonly trace_id: string
  readonly feedback_type: string
  readonly reason: string | null
  readonly created_at: string
  readonly user_id: string | null
}

const PAGE = 2000
const BUSY_TIMEOUT_MS = 2000

/** Reads reactions newer than `since` (ISO) in pages; every page is one short statement. */
export const readReactionPages = (
  file: string,
  since: string,
  onPage: (rows: ReadonlyArray<DotClawReaction>) => void
): "ok" | "no-table" => {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'user_feedback'").get()
    if (table === undefined) return "no-table"
    // Who reacted (DotClaw writes it; an older table may lack the column): alignment bounds each person's weight.
    const hasUser =
      (db.prepare("SELECT 1 FROM pragma_table_info('user_feedback') WHERE name = 'user_id'").get() as unknown) !==
      undefined
    const page = db.prepare(
      `SELECT id, trace_id, feedback_type, reason, created_at, ${hasUser ? "user_id" : "NULL AS user_id"} FROM user_feedback
       WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ${PAGE}`
    )
    let after: [string, string] = [since, ""]
    for (;;) {
      const rows = page.all(...after) as Array<DotClawReaction>
      if (rows.length === 0) return "ok"
      onPage(rows)
      const last = rows[rows.length - 1]!
      after = [last.created_at, last.id]
    }
  } finally {
    db.close()
  }
}

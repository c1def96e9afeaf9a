/**
 * Users' 👍/👎 reactions, imported from DotClaw's messages.db (read as store/DotClawFeedback.ts says). Import is
 * incremental and idempotent, keyed by DotClaw's feedback id; a reaction whose trace has not been ingested
 * yet is kept and joins its trace when it arrives.
 */
import { SqlClient } from "@effect/sql"
import { newestReactionAt, reactionsWithoutTurn, storeReactions } from "../store/Reactions.js"
import { Effect } from "effect"
import * as fs from "node:fs"
import { Settings } from "../config/Config.js"
import { StoreError } from "../Domain/Errors.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { describeStoreCause } from "../store/Db.js"
import { type DotClawReaction, readReactionPages } from "../store/DotClawFeedback.js"

export interface FeedbackSummary {
  /** The database read, or null when there was none to read. */
  readonly source: string | null
  readonly imported: number
  /** Reactions stored whose trace is not ingested yet. */
  readonly waitingForTrace: number
  readonly skipped?: string
}

type Row = DotClawReaction

// Reactions can be written slightly out of order; re-reading a day before the newest one costs little.
const OVERLAP_MS = 86_400_000

export class Feedback extends Effect.Service<Feedback>()("autotune/Feedback", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings

    const newest = newestReactionAt(sql)

    const store = (rows: ReadonlyArray<Row>) =>
      storeReactions(
        sql,
        rows.flatMap((r) =>
          r.feedback_type === "positive" || r.feedback_type === "negative"
            ? [
                {
                  id: r.id,
                  traceId: r.trace_id,
                  type: r.feedback_type,
                  reason: r.reason === null ? null : redactIf(config.redact, r.reason),
                  userId: r.user_id === null ? null : String(r.user_id),
                  createdAt: r.created_at,
                  redactionVersion: storedVersion(config.redact)
                }
              ]
            : []
        )
      )

    const waiting = reactionsWithoutTurn(sql)

    /** Imports what is new; a missing database or table is one info line, not a failure. */
    const importNew = Effect.fn("Feedback.importNew")(function* () {
      const file = config.feedbackDbPath
      if (!fs.existsSync(file)) {
        yield* Effect.logInfo(
          `no DotClaw feedback database at ${file}; users' reactions are not imported (set AUTOTUNE_FEEDBACK_DB if it is elsewhere)`
        )
        return { source: null, imported: 0, waitingForTrace: 0, skipped: "no database" } satisfies FeedbackSummary
      }
      const since = yield* newest
      const from = since === null ? "" : new Date(Math.max(0, Date.parse(since) - OVERLAP_MS)).toISOString()
      const pages: Array<ReadonlyArray<Row>> = []
      const read = yield* Effect.try({
        // Pages are collected first: the foreign database is closed before our own write transaction starts.
        try: () => readReactionPages(file, from, (rows) => pages.push(rows)),
        catch: (cause) =>
          new StoreError({ operation: "read DotClaw's feedback", path: file, detail: describeStoreCause(cause) })
      })
      if (read === "no-table") {
        yield* Effect.logInfo(
          `${file} has no user_feedback table (DotClaw older than 2.5?); users' reactions are not imported`
        )
        return {
          source: file,
          imported: 0,
          waitingForTrace: 0,
          skipped: "no user_feedback table"
        } satisfies FeedbackSummary
      }
      let imported = 0
      for (const rows of pages) imported += yield* store(rows)
      return { source: file, imported, waitingForTrace: yield* waiting } satisfies FeedbackSummary
    })

    return { importNew } as const
  })
}) {}

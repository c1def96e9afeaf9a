/**
 * Deleting what retention lets go: turns stored before a cutoff with what was derived from them (verdicts,
 * scores, grades, pack attributions, malformed-line records, reactions), in short batches so a writer never
 * waits long, then giving freed pages back to the file system. History (deployments, decisions, packs, optimizer
 * runs, the LLM bill) is never pruned.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { rowsChanged, storeError, writeTransaction } from "./Db.js"
import { giveBackSpace, storeBytes } from "./Dialect.js"
import { decodeRows } from "./Rows.js"

const BATCH = 5000
const PRUNED_TABLES = ["traces", "judge_scores", "trace_scores", "trace_packs", "malformed_lines", "feedback"]

/** Prunes everything before `cutoff`: how many turns went, how many derived rows with them, and the bytes freed. */
export const pruneBefore = (sql: SqlClient.SqlClient, cutoff: number) =>
  Effect.gen(function* () {
    const bytesBefore = yield* storeBytes(sql)
    let traces = 0
    let derivedRows = 0
    for (;;) {
      const batch =
        yield* sql`SELECT trace_id AS id FROM traces WHERE created_at < ${cutoff} ORDER BY created_at LIMIT ${BATCH}`.pipe(
          decodeRows(Schema.Struct({ id: Schema.String }), "prune old traces")
        )
      if (batch.length === 0) break
      const ids = batch.map((r) => r.id)
      derivedRows += yield* writeTransaction(
        sql,
        Effect.gen(function* () {
          let n = 0
          for (const table of ["judge_scores", "trace_scores", "labels"]) {
            n += rowsChanged(yield* sql`DELETE FROM ${sql(table)} WHERE trace_id IN ${sql.in(ids)}`.raw)
          }
          yield* sql`DELETE FROM traces WHERE trace_id IN ${sql.in(ids)}`
          return n
        })
      )
      traces += ids.length
    }
    derivedRows += yield* writeTransaction(
      sql,
      Effect.gen(function* () {
        let n = rowsChanged(yield* sql`DELETE FROM trace_packs WHERE created_at < ${cutoff}`.raw)
        n += rowsChanged(yield* sql`DELETE FROM malformed_lines WHERE seen_at < ${cutoff}`.raw)
        // The newest reaction stays: the import resumes from it.
        n += rowsChanged(
          yield* sql`DELETE FROM feedback WHERE created_ms < ${cutoff} AND created_at < (SELECT MAX(created_at) FROM feedback)`
            .raw
        )
        return n
      })
    )
    yield* giveBackSpace(sql, traces > 0, PRUNED_TABLES)
    const bytesAfter = yield* storeBytes(sql)
    return { traces, derivedRows, bytesFreed: Math.max(0, bytesBefore - bytesAfter) }
  }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError("prune old traces")(e))))

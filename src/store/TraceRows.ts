/**
 * How ingest stores what it reads: the `traces` row, in one column order shared by the multi-row INSERT of
 * @effect/sql (PostgreSQL) and the prepared single-row statement of SQLite's bulk writer; the pack rows, the
 * malformed lines, and each file's position, committed with them.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { sampleDraw, type Trace } from "../Domain/Trace.js"
import { storeError, writeTransaction } from "./Db.js"
import { insertIgnore } from "./Dialect.js"
import { decodeFirst } from "./Rows.js"

export const TRACE_COLUMNS = [
  "trace_id",
  "sample_draw",
  "ts",
  "created_at",
  "chat_id",
  "group_folder",
  "user_id",
  "model_id",
  "source",
  "input_text",
  "message_text",
  "output_text",
  "memory_summary",
  "memory_facts_json",
  "memory_recall_json",
  "session_recall_json",
  "tool_calls_json",
  "tool_call_count",
  "tool_failure_count",
  "latency_ms",
  "tokens_prompt",
  "tokens_completion",
  "cost_usd",
  "error_code",
  "is_error",
  "extra_json",
  "file",
  "byte_offset",
  "line_no",
  "ingested_at",
  "redaction_version"
] as const

/** Where a trace's line was read, and when and under which rule set it is stored. */
export interface StoredAt {
  readonly file: string
  readonly byteOffset: number
  readonly lineNo: number
  readonly now: number
  readonly redactionVersion: number
}

/** The `traces` row's values in TRACE_COLUMNS order. */
export const traceValues = (t: Trace, at: StoredAt): Array<string | number | null> => {
  let failures = 0
  for (const c of t.toolCalls) if (!c.ok) failures++
  return [
    t.traceId,
    sampleDraw(t.traceId),
    t.timestamp,
    t.createdAt,
    t.chatId,
    t.groupFolder,
    t.userId,
    t.modelId,
    t.source,
    t.inputText,
    t.messageText,
    t.outputText,
    t.memorySummary,
    JSON.stringify(t.memoryFacts),
    JSON.stringify(t.memoryRecall),
    JSON.stringify(t.sessionRecall),
    JSON.stringify(t.toolCalls),
    t.toolCalls.length,
    failures,
    t.latencyMs,
    t.tokensPrompt,
    t.tokensCompletion,
    t.costUsd,
    t.errorCode,
    t.isError ? 1 : 0,
    JSON.stringify(t.extra),
    at.file,
    at.byteOffset,
    at.lineNo,
    at.now,
    at.redactionVersion
  ]
}

/** The `traces` row as an object, for @effect/sql's `sql.insert`. */
export const traceRow = (t: Trace, at: StoredAt): Record<string, string | number | null> => {
  const values = traceValues(t, at)
  const row: Record<string, string | number | null> = {}
  TRACE_COLUMNS.forEach((column, i) => (row[column] = values[i]!))
  return row
}

export const PACK_COLUMNS = ["trace_id", "behavior", "version", "created_at"] as const

/** The `trace_packs` rows of a trace: the pack version that served it, per behavior. */
export const packValues = (t: Trace): Array<[string, string, string, number]> =>
  Object.entries(t.packVersions).map(([behavior, version]) => [t.traceId, behavior, version, t.createdAt])

/** The `malformed_lines` row of a line that could not be read: where, why, and a redacted excerpt. */
export const MALFORMED_COLUMNS = [
  "line_hash",
  "file",
  "line_no",
  "byte_offset",
  "reason",
  "excerpt",
  "seen_at",
  "redaction_version"
] as const
export type MalformedRow = Record<(typeof MALFORMED_COLUMNS)[number], string | number>

/** Where each trace file was read up to, per host (`ingest_positions`). */
export const POSITION_COLUMNS = [
  "host_id",
  "file",
  "file_id",
  "byte_offset",
  "line_no",
  "head_hash",
  "updated_at"
] as const
const POSITION_CONFLICT = `ON CONFLICT (host_id, file) DO UPDATE SET file_id = excluded.file_id, byte_offset = excluded.byte_offset,
  line_no = excluded.line_no, head_hash = excluded.head_hash, updated_at = excluded.updated_at`
const UPSERT_POSITION = `INSERT INTO ingest_positions (${POSITION_COLUMNS.join(", ")}) VALUES (${POSITION_COLUMNS.map(() => "?").join(", ")})
  ${POSITION_CONFLICT}`

export interface FilePosition {
  readonly fileId: string
  readonly byteOffset: number
  readonly lineNo: number
  readonly headHash: string
}

export const positionRow = (
  hostId: string,
  file: string,
  p: FilePosition,
  now: number
): Record<(typeof POSITION_COLUMNS)[number], string | number> => ({
  host_id: hostId,
  file,
  file_id: p.fileId,
  byte_offset: p.byteOffset,
  line_no: p.lineNo,
  head_hash: p.headHash,
  updated_at: now
})

export const positionValues = (hostId: string, file: string, p: FilePosition, now: number) => {
  const row = positionRow(hostId, file, p, now)
  return POSITION_COLUMNS.map((c) => row[c])
}

const insertOrIgnore = (table: string, columns: ReadonlyArray<string>) =>
  `INSERT OR IGNORE INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`

/** SQLite's bulk row writer's prepared statements (store/SqliteBulk.ts), named by their index in BULK. */
export const BULK = { trace: 0, pack: 1, malformed: 2, position: 3 } as const
export const BULK_STATEMENTS = [
  insertOrIgnore("traces", TRACE_COLUMNS),
  insertOrIgnore("trace_packs", PACK_COLUMNS),
  insertOrIgnore("malformed_lines", MALFORMED_COLUMNS),
  UPSERT_POSITION
]

const ROWS_PER_INSERT = 500

/** Items in runs of at most `size`: one multi-row INSERT each. */
export const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * A batch of traces, their pack rows, the malformed lines and the file's new position, in one transaction, as
 * multi-row INSERTs (PostgreSQL, and a position alone on SQLite). Only a new trace gets pack rows: one seen twice
 * keeps the versions it was first stored with. Returns how many traces were new.
 */
export const commitTraceRows = (
  sql: SqlClient.SqlClient,
  batch: {
    readonly traces: ReadonlyArray<{ readonly trace: Trace; readonly at: StoredAt }>
    readonly malformed: ReadonlyArray<MalformedRow>
    readonly position: Record<string, string | number>
  }
) =>
  writeTransaction(
    sql,
    Effect.gen(function* () {
      const fresh = new Set<string>()
      for (const rows of chunks(batch.traces, ROWS_PER_INSERT)) {
        const ids = yield* insertIgnore(
          sql,
          "traces",
          rows.map((r) => traceRow(r.trace, r.at)),
          "trace_id"
        )
        for (const r of ids) fresh.add(r["trace_id"] as string)
      }
      const inserted = fresh.size
      const packs = batch.traces
        .filter((r) => fresh.delete(r.trace.traceId))
        .flatMap((r) =>
          packValues(r.trace).map((values) => Object.fromEntries(PACK_COLUMNS.map((c, i) => [c, values[i]])))
        )
      for (const rows of chunks(packs, ROWS_PER_INSERT)) yield* insertIgnore(sql, "trace_packs", rows)
      for (const rows of chunks(batch.malformed, ROWS_PER_INSERT)) yield* insertIgnore(sql, "malformed_lines", rows)
      yield* sql`INSERT INTO ingest_positions ${sql.insert(batch.position)} ${sql.literal(POSITION_CONFLICT)}`
      return inserted
    })
  )

/** Where a host last read a file to, if it has. */
export const savedPosition = (sql: SqlClient.SqlClient, hostId: string, file: string) =>
  sql`
    SELECT file_id AS "fileId", byte_offset AS "byteOffset", line_no AS "lineNo", head_hash AS "headHash"
    FROM ingest_positions WHERE host_id = ${hostId} AND file = ${file}`.pipe(
    decodeFirst(
      Schema.Struct({
        fileId: Schema.String,
        byteOffset: Schema.Number,
        lineNo: Schema.Number,
        headHash: Schema.String
      }),
      "read ingest positions"
    )
  )

/** Forgets a host's positions of files no longer there (DotClaw's retention deleted them). */
export const forgetPositionsExcept = (sql: SqlClient.SqlClient, hostId: string, files: ReadonlyArray<string>) =>
  sql`DELETE FROM ingest_positions WHERE host_id = ${hostId} AND file NOT IN ${sql.in(files.length > 0 ? files : [""])}`.pipe(
    Effect.asVoid,
    Effect.mapError(storeError("prune ingest positions"))
  )

/**
 * The store's free text under a rule set: which columns of which tables hold it, how many rows an older rule set
 * (or none) cleaned, and a walk that rewrites them batch by batch with the caller's cleaning, marking each row
 * with the rule set it now carries. What counts as a secret is privacy/'s; where the text is, is the store's.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { storeError, writeTransaction } from "./Db.js"
import { rewriteTables, storageOrder, storeBytes, upsert } from "./Dialect.js"
import { decodeFirst, decodeRows, NullableNumber } from "./Rows.js"

export interface TextColumns {
  readonly table: string
  readonly text: ReadonlyArray<string>
  readonly json: ReadonlyArray<string>
}

/** Every stored column that holds free text; ids, times and versions are join keys and stay. */
export const TEXT_COLUMNS: ReadonlyArray<TextColumns> = [
  {
    table: "traces",
    text: ["input_text", "message_text", "output_text", "memory_summary", "error_code", "model_id", "source"],
    json: ["memory_facts_json", "memory_recall_json", "session_recall_json", "tool_calls_json", "extra_json"]
  },
  { table: "malformed_lines", text: ["excerpt"], json: [] },
  { table: "judge_scores", text: ["reason"], json: [] },
  { table: "trace_scores", text: ["reason"], json: [] },
  { table: "feedback", text: ["reason"], json: [] },
  { table: "optimize_runs", text: [], json: ["detail_json"] }
]

const BATCH = 1000

/** Rows whose rule set is in [lowest, version): how many, and which older sets they carry. */
export const rowsBelow = (sql: SqlClient.SqlClient, lowest: number, version: number) =>
  Effect.gen(function* () {
    let total = 0
    const versions = new Set<number>()
    for (const spec of TEXT_COLUMNS) {
      const rows = yield* sql`
        SELECT COUNT(*) AS n, redaction_version AS v FROM ${sql(spec.table)} WHERE redaction_version >= ${lowest} AND redaction_version < ${version}
        GROUP BY redaction_version`.pipe(
        decodeRows(Schema.Struct({ n: Schema.Number, v: NullableNumber }), "rescan the store")
      )
      for (const r of rows) {
        total += r.n
        if (r.v !== null) versions.add(r.v)
      }
    }
    return { total, versions: [...versions].sort() }
  })

/** The caller's cleaning of one stored value: free text, or a JSON column's decoded value; and how much it replaced. */
export interface Cleaner {
  readonly text: (column: string, text: string) => { readonly value: string; readonly replaced: number }
  readonly json: (value: unknown) => { readonly value: unknown; readonly replaced: number }
}

/** One row's columns through the cleaner; a JSON column that does not parse is cleaned as text. */
const cleanRow = (
  spec: TextColumns,
  columns: ReadonlyArray<string>,
  row: Readonly<Record<string, unknown>>,
  cleaner: Cleaner
) => {
  let replaced = 0
  const values = columns.map((c): string | null => {
    const v = row[c]
    if (typeof v !== "string") return v === undefined || v === null ? null : String(v)
    if (spec.json.includes(c)) {
      let parsed: unknown
      try {
        parsed = JSON.parse(v)
      } catch {
        const t = cleaner.text(c, v)
        replaced += t.replaced
        return t.value
      }
      const j = cleaner.json(parsed)
      replaced += j.replaced
      return JSON.stringify(j.value)
    }
    const t = cleaner.text(c, v)
    replaced += t.replaced
    return t.value
  })
  return { values, replaced }
}

/**
 * Walks one table's rows below `version` in storage order, a batch at a time; a row whose cleaning replaced
 * something is rewritten, and every row of the batch is marked with `version` (so no row is read twice).
 */
export const recleanTable = (
  sql: SqlClient.SqlClient,
  spec: TextColumns,
  range: { readonly lowest: number; readonly version: number },
  cleaner: Cleaner,
  onBatch: (rows: number) => void
) =>
  Effect.gen(function* () {
    const columns = [...spec.text, ...spec.json]
    const { column: rid, start, at: ridValue } = storageOrder(sql)
    const { lowest, version } = range
    let after = start
    let scanned = 0
    let changed = 0
    let replaced = 0
    for (;;) {
      const rows = yield* sql<Record<string, unknown>>`
        SELECT ${rid} AS rid, ${sql.literal(columns.join(", "))} FROM ${sql(spec.table)}
        WHERE ${rid} > ${ridValue(after)} AND redaction_version >= ${lowest} AND redaction_version < ${version} ORDER BY ${rid} LIMIT ${BATCH}`
      if (rows.length === 0) break
      const updates: Array<{ rid: unknown; values: ReadonlyArray<string | null> }> = []
      for (const row of rows) {
        const cleaned = cleanRow(spec, columns, row, cleaner)
        if (cleaned.replaced > 0) {
          updates.push({ rid: row["rid"], values: cleaned.values })
          replaced += cleaned.replaced
        }
      }
      const first = after
      const last = rows[rows.length - 1]!["rid"]
      yield* writeTransaction(
        sql,
        Effect.gen(function* () {
          for (const u of updates) {
            // The version goes with the cleaned text: on PostgreSQL the updated row moves past this batch's range.
            const values = Object.fromEntries([
              ...columns.map((c, i) => [c, u.values[i]]),
              ["redaction_version", version]
            ])
            yield* sql`UPDATE ${sql(spec.table)} SET ${sql.update(values)} WHERE ${rid} = ${ridValue(u.rid)}`
          }
          yield* sql`
          UPDATE ${sql(spec.table)} SET redaction_version = ${version}
          WHERE ${rid} > ${ridValue(first)} AND ${rid} <= ${ridValue(last)} AND redaction_version >= ${lowest} AND redaction_version < ${version}`
        })
      )
      scanned += rows.length
      changed += updates.length
      after = last
      onBatch(rows.length)
    }
    return { scanned, changed, replaced }
  }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError("rescan the store")(e))))

/** Records the rule set the whole store is now cleaned with. */
export const markStoreRedaction = (sql: SqlClient.SqlClient, version: number) =>
  writeTransaction(sql, upsert(sql, "store_meta", { key: "redaction_version", value: String(version) }, ["key"])).pipe(
    Effect.asVoid,
    Effect.mapError(storeError("rescan the store"))
  )

/** The rule set the whole store was last cleaned with; 0 before the first rescan. */
export const storeRedactionVersion = (sql: SqlClient.SqlClient) =>
  sql`SELECT value FROM store_meta WHERE key = 'redaction_version'`.pipe(
    decodeFirst(Schema.Struct({ value: Schema.String }), "read the store's rule set version"),
    Effect.map((r) => Number(r?.value ?? 0))
  )

/** Rewrites every table holding free text, so no free page or WAL frame keeps a copy of what was replaced. */
export const rewriteTextTables = (sql: SqlClient.SqlClient) =>
  rewriteTables(
    sql,
    TEXT_COLUMNS.map((t) => t.table)
  ).pipe(Effect.mapError(storeError("rescan the store")))

/** The store's size on disk. */
export const storeSize = (sql: SqlClient.SqlClient) =>
  storeBytes(sql).pipe(Effect.mapError(storeError("rescan the store")))

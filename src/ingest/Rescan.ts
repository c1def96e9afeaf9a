/**
 * Re-cleans what is stored: every row of free text that an older rule set (or none) redacted is passed
 * through the current rules, in batches; then the WAL is checkpointed and the file vacuumed, so no old
 * page keeps a copy of what was replaced. Runs as `autotune redact --rescan`, and once by itself at the
 * start of a cycle after an upgrade that changed the rules.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Settings } from "../config/Config.js"
import { emptyFindings, type Findings, REDACTION_VERSION, redactDeep, redactEnvelope, redactText } from "../privacy/Redactor.js"
import { storeError, writeTransaction } from "../store/Db.js"
import { rewriteTables, storageOrder, storeBytes, upsert } from "../store/Dialect.js"

interface TableSpec {
  readonly table: string
  readonly text: ReadonlyArray<string>
  readonly json: ReadonlyArray<string>
}

/** Every stored column that holds free text; ids, times and versions are join keys and stay. */
const TABLES: ReadonlyArray<TableSpec> = [
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

export interface TableRescan {
  readonly scanned: number
  readonly changed: number
  readonly replaced: number
}

export interface RescanSummary {
  readonly fromVersions: ReadonlyArray<number>
  readonly toVersion: number
  readonly tables: Record<string, TableRescan>
  readonly byRule: Record<string, number>
  readonly vacuumed: boolean
  readonly bytesBefore: number
  readonly bytesAfter: number
}

const cleanJson = (raw: string, findings: Findings): string => {
  try {
    return JSON.stringify(redactDeep(JSON.parse(raw), findings))
  } catch {
    return redactText(raw, findings)
  }
}

/** Rows below the current rule set: all of them, or only those an older set cleaned (not AUTOTUNE_REDACT=0 rows). */
export interface RescanOptions {
  readonly includeUnredacted: boolean
  readonly onProgress?: (done: number, total: number) => void
}

export const rescan = Effect.fn("Rescan.rescan")(function* (options: RescanOptions) {
  const sql = yield* SqlClient.SqlClient
  const fail = storeError("rescan the store")
  const lowest = options.includeUnredacted ? 0 : 1
  const pageBytes = () => storeBytes(sql)
  // Rows are walked in storage order; a cleaned row's new redaction_version keeps it from being read twice.
  const { column: rid, start, at: ridValue } = storageOrder(sql)
  const bytesBefore = yield* pageBytes().pipe(Effect.mapError(fail))

  let total = 0
  const versions = new Set<number>()
  for (const spec of TABLES) {
    const rows = yield* sql<{ n: number; v: number | null }>`
      SELECT COUNT(*) AS n, redaction_version AS v FROM ${sql(spec.table)} WHERE redaction_version >= ${lowest} AND redaction_version < ${REDACTION_VERSION}
      GROUP BY redaction_version`.pipe(Effect.mapError(fail))
    for (const r of rows) {
      total += Number(r.n)
      if (r.v !== null) versions.add(Number(r.v))
    }
  }

  const byRule: Record<string, number> = {}
  const tables: Record<string, TableRescan> = {}
  let done = 0
  for (const spec of TABLES) {
    const columns = [...spec.text, ...spec.json]
    let after = start
    let scanned = 0
    let changed = 0
    let replaced = 0
    for (;;) {
      const rows = yield* sql<Record<string, string | null | number>>`
        SELECT ${rid} AS rid, ${sql.literal(columns.join(", "))} FROM ${sql(spec.table)}
        WHERE ${rid} > ${ridValue(after)} AND redaction_version >= ${lowest} AND redaction_version < ${REDACTION_VERSION} ORDER BY ${rid} LIMIT ${BATCH}`.pipe(
        Effect.mapError(fail)
      )
      if (rows.length === 0) break
      const updates: Array<{ rid: unknown; values: Array<string | null> }> = []
      for (const row of rows) {
        const findings = emptyFindings()
        const values = columns.map((c) => {
          const v = row[c]
          if (typeof v !== "string") return (v ?? null) as string | null
          if (spec.json.includes(c)) return cleanJson(v, findings)
          return c === "input_text" ? redactEnvelope(v, findings) : redactText(v, findings)
        })
        if (findings.count > 0) {
          updates.push({ rid: row["rid"], values })
          replaced += findings.count
          for (const [rule, n] of Object.entries(findings.byRule)) byRule[rule] = (byRule[rule] ?? 0) + n
        }
      }
      const first = after
      const last = rows[rows.length - 1]!["rid"]
      yield* writeTransaction(sql, Effect.gen(function* () {
        for (const u of updates) {
          // The version goes with the cleaned text: on PostgreSQL the updated row moves past this batch's range.
          const cleaned = Object.fromEntries([...columns.map((c, i) => [c, u.values[i]]), ["redaction_version", REDACTION_VERSION]])
          yield* sql`UPDATE ${sql(spec.table)} SET ${sql.update(cleaned)} WHERE ${rid} = ${ridValue(u.rid)}`
        }
        yield* sql`
          UPDATE ${sql(spec.table)} SET redaction_version = ${REDACTION_VERSION}
          WHERE ${rid} > ${ridValue(first)} AND ${rid} <= ${ridValue(last)} AND redaction_version >= ${lowest} AND redaction_version < ${REDACTION_VERSION}`
      })).pipe(Effect.mapError(fail))
      scanned += rows.length
      changed += updates.length
      done += rows.length
      after = last
      options.onProgress?.(done, total)
    }
    tables[spec.table] = { scanned, changed, replaced }
  }

  yield* writeTransaction(sql, upsert(sql, "store_meta", { key: "redaction_version", value: String(REDACTION_VERSION) }, ["key"])).pipe(
    Effect.mapError(fail)
  )
  // A replaced value still sits in free pages and in the WAL until both are rewritten.
  const anyChanged = Object.values(tables).some((t) => t.changed > 0)
  if (anyChanged || options.includeUnredacted) yield* rewriteTables(sql, TABLES.map((t) => t.table)).pipe(Effect.mapError(fail))
  const bytesAfter = yield* pageBytes().pipe(Effect.mapError(fail))
  return {
    fromVersions: [...versions].sort(),
    toVersion: REDACTION_VERSION,
    tables,
    byRule,
    vacuumed: anyChanged || options.includeUnredacted,
    bytesBefore,
    bytesAfter
  } satisfies RescanSummary
})

/** The rule set the whole store was last cleaned with; 0 before the first rescan. */
export const storeRedactionVersion = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ value: string }>`SELECT value FROM store_meta WHERE key = 'redaction_version'`.pipe(
    Effect.map((rows) => Number(rows[0]?.value ?? 0)),
    Effect.mapError(storeError("read the store's rule set version"))
  )
)

/**
 * After an upgrade that changed the rules, the first cycle re-cleans what older rules stored. Rows stored
 * with AUTOTUNE_REDACT=0 are left as the user chose; `redact --rescan` cleans those on request.
 */
export const rescanAfterUpgrade = Effect.gen(function* () {
  const { config } = yield* Settings
  if (!config.redact) return undefined
  if ((yield* storeRedactionVersion) >= REDACTION_VERSION) return undefined
  const summary = yield* rescan({ includeUnredacted: false })
  const changed = Object.values(summary.tables).reduce((n, t) => n + t.changed, 0)
  const replaced = Object.values(summary.tables).reduce((n, t) => n + t.replaced, 0)
  if (changed > 0) yield* Effect.logInfo(`redaction rules changed (now v${REDACTION_VERSION}): ${replaced} value(s) in ${changed} stored row(s) cleaned, store vacuumed`)
  return summary
})

/**
 * Re-cleans what is stored: every row of free text that an older rule set (or none) redacted is passed
 * through the current rules, in batches; then the WAL is checkpointed and the file vacuumed, so no old
 * page keeps a copy of what was replaced. Runs as `autotune redact --rescan`, and once by itself at the
 * start of a cycle after an upgrade that changed the rules.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Settings } from "../config/Config.js"
import {
  emptyFindings,
  type Findings,
  REDACTION_VERSION,
  redactDeep,
  redactEnvelope,
  redactText
} from "../privacy/Redactor.js"
import {
  markStoreRedaction,
  recleanTable,
  rewriteTextTables,
  rowsBelow,
  storeRedactionVersion as storedRedactionVersion,
  storeSize,
  TEXT_COLUMNS,
  type Cleaner
} from "../store/Redaction.js"

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

/** Rows below the current rule set: all of them, or only those an older set cleaned (not AUTOTUNE_REDACT=0 rows). */
export interface RescanOptions {
  readonly includeUnredacted: boolean
  readonly onProgress?: (done: number, total: number) => void
}

/** Stored values through the current rules, each replacement counted by rule in `byRule`. */
const cleaner = (byRule: Record<string, number>): Cleaner => {
  const counted = <A>(clean: (findings: Findings) => A) => {
    const findings = emptyFindings()
    const value = clean(findings)
    for (const [rule, n] of Object.entries(findings.byRule)) byRule[rule] = (byRule[rule] ?? 0) + n
    return { value, replaced: findings.count }
  }
  return {
    text: (column, text) => counted((f) => (column === "input_text" ? redactEnvelope(text, f) : redactText(text, f))),
    json: (value) => counted((f) => redactDeep(value, f))
  }
}

export const rescan = Effect.fn("Rescan.rescan")(function* (options: RescanOptions) {
  const sql = yield* SqlClient.SqlClient
  const range = { lowest: options.includeUnredacted ? 0 : 1, version: REDACTION_VERSION }
  const bytesBefore = yield* storeSize(sql)
  const { total, versions } = yield* rowsBelow(sql, range.lowest, range.version)

  const byRule: Record<string, number> = {}
  const clean = cleaner(byRule)
  const tables: Record<string, TableRescan> = {}
  let done = 0
  for (const spec of TEXT_COLUMNS) {
    tables[spec.table] = yield* recleanTable(sql, spec, range, clean, (n) => {
      done += n
      options.onProgress?.(done, total)
    })
  }
  yield* markStoreRedaction(sql, REDACTION_VERSION)
  // A replaced value still sits in free pages and in the WAL until both are rewritten.
  const anyChanged = Object.values(tables).some((t) => t.changed > 0)
  if (anyChanged || options.includeUnredacted) yield* rewriteTextTables(sql)
  const bytesAfter = yield* storeSize(sql)
  return {
    fromVersions: versions,
    toVersion: REDACTION_VERSION,
    tables,
    byRule,
    vacuumed: anyChanged || options.includeUnredacted,
    bytesBefore,
    bytesAfter
  } satisfies RescanSummary
})

/** The rule set the whole store was last cleaned with; 0 before the first rescan. */
export const storeRedactionVersion = Effect.flatMap(SqlClient.SqlClient, storedRedactionVersion)

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
  if (changed > 0)
    yield* Effect.logInfo(
      `redaction rules changed (now v${REDACTION_VERSION}): ${replaced} value(s) in ${changed} stored row(s) cleaned, store vacuumed`
    )
  return summary
})

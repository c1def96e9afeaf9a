/**
 * The store's schema: one numbered list of changes, each in both dialects (Migration.ts), handed to
 * @effect/sql's migrator. Add a change as the next file and the next line here; never edit one that shipped.
 *
 * Until autotune 2.1 each dialect kept its own list and numbered the same change differently (SQLite's
 * 0012_addressed_masked was PostgreSQL's 0003). The migrator runs every change numbered above the highest it
 * has recorded, so a store is first brought to this list's numbers (`renumberLegacy`), by the names it recorded.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect } from "effect"
import { StoreError } from "../../Domain/Errors.js"
import * as m0001 from "./0001_init.js"
import * as m0002 from "./0002_optimize_runs.js"
import * as m0003 from "./0003_llm_cost_known.js"
import * as m0004 from "./0004_feedback.js"
import * as m0005 from "./0005_redaction_version.js"
import * as m0006 from "./0006_trace_packs_by_version.js"
import * as m0007 from "./0007_llm_calls_created.js"
import * as m0008 from "./0008_report_rollups.js"
import * as m0009 from "./0009_sample_draw.js"
import * as m0010 from "./0010_batches.js"
import * as m0011 from "./0011_ingest_positions_host.js"
import * as m0012 from "./0012_fleet_hosts.js"
import * as m0013 from "./0013_addressed_masked.js"
import * as m0014 from "./0014_metric_totals.js"
import * as m0015 from "./0015_labels.js"
import * as m0016 from "./0016_rubrics.js"
import * as m0017 from "./0017_align.js"
import * as m0018 from "./0018_masked_verdicts.js"
import { type Migration, type MigrationEffect, NONE } from "./Migration.js"

export type Dialect = keyof Migration

/** Every change, in order: its number, its name (the file's, after the number) and its two forms. */
export const MIGRATIONS: ReadonlyArray<readonly [id: number, name: string, migration: Migration]> = [
  [1, "init", m0001],
  [2, "optimize_runs", m0002],
  [3, "llm_cost_known", m0003],
  [4, "feedback", m0004],
  [5, "redaction_version", m0005],
  [6, "trace_packs_by_version", m0006],
  [7, "llm_calls_created", m0007],
  [8, "report_rollups", m0008],
  [9, "sample_draw", m0009],
  [10, "batches", m0010],
  [11, "ingest_positions_host", m0011],
  [12, "fleet_hosts", m0012],
  [13, "addressed_masked", m0013],
  [14, "metric_totals", m0014],
  [15, "labels", m0015],
  [16, "rubrics", m0016],
  [17, "align", m0017],
  [18, "masked_verdicts", m0018]
]

/** The newest change's number: a store that records less has not been migrated yet. */
export const LATEST_MIGRATION = MIGRATIONS[MIGRATIONS.length - 1]![0]

/** The list as @effect/sql's `fromRecord` loader takes it, for one dialect. */
export const migrationsFor = (dialect: Dialect): Record<string, MigrationEffect> =>
  Object.fromEntries(MIGRATIONS.map(([id, name, m]) => [`${String(id).padStart(4, "0")}_${name}`, m[dialect]]))

/** The migrator's own table, where a store records the changes it has. */
export const MIGRATIONS_TABLE = "effect_sql_migrations"

/**
 * Which of the list's numbers a store has, from the (number, name) rows it recorded, or the reason it cannot
 * be placed on the list. A name is found on the list whatever number it was recorded under; a change this
 * dialect does not need (NONE) counts as had once a later change is; rows above the list's end (a newer
 * autotune's) are kept as they are.
 */
export const placeRecorded = (
  dialect: Dialect,
  recorded: ReadonlyArray<{ readonly id: number; readonly name: string }>
):
  | { readonly rows: ReadonlyArray<readonly [number, string]>; readonly changed: boolean }
  | { readonly error: string } => {
  const byName = new Map(MIGRATIONS.map(([id, name]) => [name, id]))
  const has = new Set<number>()
  const newer: Array<readonly [number, string]> = []
  for (const r of recorded) {
    const id = byName.get(r.name)
    if (id !== undefined) has.add(id)
    else if (r.id > LATEST_MIGRATION) newer.push([r.id, r.name])
    else return { error: `the store records migration ${r.id} "${r.name}", which this autotune does not know` }
  }
  const top = Math.max(0, ...has)
  const missing: Array<string> = []
  for (const [id, name, m] of MIGRATIONS) {
    if (id >= top || has.has(id)) continue
    if (m[dialect] === NONE) has.add(id)
    else missing.push(`${id} "${name}"`)
  }
  if (missing.length > 0)
    return { error: `the store records migration ${top} but not ${missing.join(", ")}: it cannot be upgraded in place` }
  const rows = [...MIGRATIONS.filter(([id]) => has.has(id)).map(([id, name]) => [id, name] as const), ...newer]
  const same =
    rows.length === recorded.length && rows.every(([id, name]) => recorded.some((r) => r.id === id && r.name === name))
  return { rows, changed: !same }
}

/**
 * Brings a store's record of its migrations to this list's numbers; runs under the caller's migration lock,
 * before the migrator. A store already on the list (every store after the first run of 2.1) is read, not written.
 */
export const renumberLegacy = (
  dialect: Dialect
): Effect.Effect<void, SqlError.SqlError | StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const present =
      dialect === "sqlite"
        ? yield* sql<{
            n: number
          }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${MIGRATIONS_TABLE}`
        : yield* sql<{
            n: number
          }>`SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = ${MIGRATIONS_TABLE} AND schemaname = current_schema()`
    if (Number(present[0]?.n ?? 0) === 0) return
    const recorded = yield* sql<{
      id: number
      name: string
    }>`SELECT migration_id AS id, name FROM ${sql(MIGRATIONS_TABLE)}`.withoutTransform
    const placed = placeRecorded(
      dialect,
      recorded.map((r) => ({ id: Number(r.id), name: r.name }))
    )
    if ("error" in placed)
      return yield* new StoreError({ operation: "upgrade the store's schema", detail: placed.error })
    if (!placed.changed) return
    yield* sql.withTransaction(
      Effect.zipRight(
        sql`DELETE FROM ${sql(MIGRATIONS_TABLE)}`,
        Effect.forEach(
          placed.rows,
          ([id, name]) => sql`INSERT INTO ${sql(MIGRATIONS_TABLE)} (migration_id, name) VALUES (${id}, ${name})`,
          { discard: true }
        )
      )
    )
    yield* Effect.logInfo(
      `store: migrations renumbered to the shared list (now at ${Math.max(...placed.rows.map(([id]) => id))})`
    )
  })

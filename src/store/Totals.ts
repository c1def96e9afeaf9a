/**
 * Running totals of what the cycles did (traces ingested, turns judged, decisions, optimizer runs, cycles),
 * kept in the store so that /metrics reports the fleet's sums across restarts and hosts. They are sums, not
 * counts of rows: retention deletes the rows, a total never goes down.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { StoreError } from "../Domain/Errors.js"
import { decodeRows } from "./Rows.js"

/** One series' increment: a metric's name, its labels, and how much to add. */
export interface TotalDelta {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface TotalRow {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Labels as one key: sorted, so the same labels in another order are the same series. */
export const labelsKey = (labels: Readonly<Record<string, string>>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))

/** Adds each delta to its series (zeros are left out); runs inside the caller's transaction when there is one. */
export const addTotals = (sql: SqlClient.SqlClient, deltas: ReadonlyArray<TotalDelta>) =>
  Effect.forEach(
    deltas.filter((d) => d.value !== 0 && Number.isFinite(d.value)),
    (d) => sql`
      INSERT INTO metric_totals (name, labels, value) VALUES (${d.name}, ${labelsKey(d.labels)}, ${d.value})
      ON CONFLICT (name, labels) DO UPDATE SET value = metric_totals.value + excluded.value`,
    { discard: true }
  )

export const readTotals = (sql: SqlClient.SqlClient): Effect.Effect<ReadonlyArray<TotalRow>, StoreError> =>
  sql`SELECT name, labels, value FROM metric_totals ORDER BY name, labels`.pipe(
    decodeRows(
      Schema.Struct({
        name: Schema.String,
        labels: Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.String })),
        value: Schema.Number
      }),
      "read the running totals"
    )
  )

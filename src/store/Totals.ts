/**
 * Tables of the store's own bookkeeping that SQLite and PostgreSQL spell alike.
 *
 * Running totals of what the cycles did (traces ingested, turns judged, decisions, optimizer runs, cycles),
 * kept in the store so that /metrics reports the fleet's sums across restarts and hosts. They are sums, not
 * counts of rows: retention deletes the rows, a total never goes down.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"

// The same text in SQLite and PostgreSQL: DOUBLE PRECISION is REAL's name in both.
export const METRIC_TOTALS_TABLE = `CREATE TABLE metric_totals (
  name TEXT NOT NULL,
  labels TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (name, labels)
)`

/**
 * A person's grades (1-5) of judged turns, per behavior and rubric version (`autotune label`); the same text in
 * SQLite and PostgreSQL. They go with their turn when retention prunes it: a grade of text no longer kept cannot
 * be checked against the judge again.
 */
export const LABELS_TABLES = [
  `CREATE TABLE labels (
    trace_id TEXT NOT NULL,
    behavior TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    grade INTEGER NOT NULL,
    source TEXT NOT NULL,
    labeled_at BIGINT NOT NULL,
    PRIMARY KEY (trace_id, behavior, rubric_version)
  )`,
  `CREATE INDEX labels_behavior ON labels (behavior, rubric_version, labeled_at)`
]

/**
 * The judge's rubrics as data: every version of a behavior's criteria, where it came from (a file of the
 * operator's, or a rollback), and which one is active. The built-in rubric is the version no row stands for.
 */
export const RUBRICS_TABLE = `CREATE TABLE rubrics (
  behavior TEXT NOT NULL,
  version TEXT NOT NULL,
  title TEXT NOT NULL,
  criteria TEXT NOT NULL,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (behavior, version)
)`

/**
 * Alignment's attempts (align/Align.ts), the same text in SQLite and PostgreSQL, and who reacted to a turn
 * (DotClaw's user_feedback.user_id): no single person's reactions may carry a rubric change. `tested` marks an
 * attempt that spent part of the rubric's error budget on the held-out turns.
 */
export const ALIGN_TABLES = [
  `ALTER TABLE feedback ADD COLUMN user_id TEXT`,
  `CREATE TABLE align_attempts (
    id TEXT PRIMARY KEY,
    behavior TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    at BIGINT NOT NULL,
    signal_turns INTEGER NOT NULL,
    tested INTEGER NOT NULL,
    alpha DOUBLE PRECISION,
    outcome TEXT NOT NULL,
    candidate_version TEXT,
    detail_json TEXT NOT NULL
  )`,
  `CREATE INDEX align_attempts_behavior ON align_attempts (behavior, rubric_version, at)`
]

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

export const readTotals = (sql: SqlClient.SqlClient) =>
  sql<{ name: string; labels: string; value: number }>`SELECT name, labels, value FROM metric_totals ORDER BY name, labels`.pipe(
    Effect.map((rows): ReadonlyArray<TotalRow> => rows.map((r) => ({ name: r.name, labels: JSON.parse(r.labels) as Record<string, string>, value: Number(r.value) })))
  )

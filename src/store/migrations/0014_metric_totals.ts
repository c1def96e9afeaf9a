/**
 * Running totals of what the cycles did (traces ingested, turns judged, decisions, optimizer runs, cycles), kept
 * in the store so that /metrics reports the fleet's sums across restarts and hosts. They are sums, not counts of
 * rows: retention deletes the rows, a total never goes down. DOUBLE PRECISION is REAL's name in both dialects.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(`CREATE TABLE metric_totals (
  name TEXT NOT NULL,
  labels TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (name, labels)
)`)

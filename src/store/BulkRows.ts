/**
 * What the ingest row writer runs, the same on this thread and in the writer thread: no Effect and no other
 * module, so the writer thread's bundle stays small.
 */

/** A row: which statement, its values, and the rows to write only when this one was new (a trace's packs). */
export type Row = readonly [
  statement: number,
  values: ReadonlyArray<unknown>,
  then?: ReadonlyArray<readonly [number, ReadonlyArray<unknown>]>
]

interface Runnable {
  run(...values: ReadonlyArray<unknown>): { readonly changes: number }
}

/** Runs a row and, when it changed the store, its dependent rows; counts it under its statement. */
export const runRow = (
  statements: ReadonlyArray<Runnable>,
  [statement, values, then]: Row,
  changed: Array<number>
): void => {
  if (statements[statement]!.run(...values).changes === 0) return
  changed[statement]!++
  for (const [next, nextValues] of then ?? []) statements[next]!.run(...nextValues)
}

/** SQLite's codes for "another connection holds the lock": wait and try again. */
export const isBusyCode = (code: unknown): boolean =>
  code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "SQLITE_BUSY_SNAPSHOT"

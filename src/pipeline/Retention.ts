/**
 * Bounded growth: traces older than AUTOTUNE_RETENTION_DAYS go, with what was derived from them (scores,
 * pack attributions, reactions, malformed-line records), in short batches. What a live canary decision reads
 * stays: nothing newer than six hours before the oldest canary still out is touched (the active arm's pairs
 * start there). Deployments, decisions, packs, optimizer runs and the LLM bill are history and are kept.
 * Freed pages go back to the file system through incremental vacuum.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import { canaryPath, readPack } from "../Domain/Pack.js"
import { pruneBefore } from "../store/Pruning.js"
import { Deployer } from "../canary/Deployer.js"

const DAY_MS = 86_400_000
const PAIRING_MARGIN_MS = 6 * 3_600_000

export interface PruneSummary {
  readonly retentionDays: number
  /** Everything older than this was pruned (ISO time), or null when retention is off. */
  readonly cutoff: string | null
  /** Set when a live canary held the cutoff back: its behavior and version. */
  readonly heldBy: string | null
  readonly traces: number
  readonly derivedRows: number
  readonly bytesFreed: number
}

/** The cutoff the settings ask for, held back so that no live canary loses its turns or their pairs. */
export const pruneCutoff = (
  now: number,
  retentionDays: number,
  canaryStarts: ReadonlyArray<{ readonly label: string; readonly startedAt: number }>
) => {
  let cutoff = now - retentionDays * DAY_MS
  let heldBy: string | null = null
  for (const c of canaryStarts) {
    const keepFrom = c.startedAt - PAIRING_MARGIN_MS
    if (keepFrom < cutoff) {
      cutoff = keepFrom
      heldBy = c.label
    }
  }
  return { cutoff, heldBy }
}

export const prune = Effect.fn("Retention.prune")(function* (at?: number) {
  const now = at ?? (yield* Clock.currentTimeMillis)
  const sql = yield* SqlClient.SqlClient
  const { config } = yield* Settings
  const deployer = yield* Deployer
  if (config.retentionDays === 0) {
    return {
      retentionDays: 0,
      cutoff: null,
      heldBy: null,
      traces: 0,
      derivedRows: 0,
      bytesFreed: 0
    } satisfies PruneSummary
  }
  const starts: Array<{ label: string; startedAt: number }> = []
  for (const behavior of config.behaviors) {
    const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
    if (canary._tag === "Valid")
      starts.push({
        label: `${behavior} canary ${canary.pack.version}`,
        startedAt: yield* deployer.canaryStartedAt(behavior, canary.pack.version)
      })
  }
  const { cutoff, heldBy } = pruneCutoff(now, config.retentionDays, starts)
  const { traces, derivedRows, bytesFreed } = yield* pruneBefore(sql, cutoff)
  if (traces > 0)
    yield* Effect.logInfo(
      `retention: ${traces} trace(s) older than ${config.retentionDays} day(s) pruned with ${derivedRows} derived row(s)${heldBy === null ? "" : `; held back by the ${heldBy}`}`
    )
  return {
    retentionDays: config.retentionDays,
    cutoff: new Date(cutoff).toISOString(),
    heldBy,
    traces,
    derivedRows,
    bytesFreed
  } satisfies PruneSummary
})

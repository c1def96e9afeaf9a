/**
 * The daemon's two health answers, pure. Liveness asks only "is the loop alive and not stuck": a provider
 * outage or a failing store makes cycles fail, not the loop, and restarting the daemon would not help, so
 * they never fail it. Readiness (/healthz) asks "is it doing its job": the last cycle ended well, recently.
 */

export interface LoopState {
  /** When the cycle now running started; null between cycles. */
  readonly cycleStartedAt: number | null
  readonly lastEnd: { readonly at: number; readonly ok: boolean; readonly reason: string } | null
  readonly intervalMs: number
  readonly startedAt: number
  readonly loopEnded: boolean
}

export interface Answer {
  readonly ok: boolean
  readonly status: "ok" | "starting" | "failing" | "stale" | "stuck" | "stopped"
  readonly reason: string
}

const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`

/** A cycle running longer than this is stuck: three intervals, and never less than two hours (a first ingest of a long history). */
export const stuckAfterMs = (intervalMs: number) => Math.max(3 * intervalMs, 2 * 3_600_000)

export const liveness = (s: LoopState, now: number): Answer => {
  if (s.loopEnded) return { ok: false, status: "stopped", reason: "the daemon's loop has ended" }
  const stuck = stuckAfterMs(s.intervalMs)
  if (s.cycleStartedAt !== null && now - s.cycleStartedAt > stuck) {
    return {
      ok: false,
      status: "stuck",
      reason: `a cycle has run for ${minutes(now - s.cycleStartedAt)} (stuck after ${minutes(stuck)})`
    }
  }
  const idleSince = s.lastEnd?.at ?? s.startedAt
  if (s.cycleStartedAt === null && now - idleSince > s.intervalMs + stuck) {
    return {
      ok: false,
      status: "stuck",
      reason: `no cycle has started for ${minutes(now - idleSince)} (interval ${minutes(s.intervalMs)})`
    }
  }
  return { ok: true, status: "ok", reason: s.cycleStartedAt === null ? "waiting for the next cycle" : "in a cycle" }
}

export const readiness = (s: LoopState, now: number): Answer => {
  const live = liveness(s, now)
  if (!live.ok) return live
  if (s.lastEnd === null) return { ok: false, status: "starting", reason: "the first cycle has not ended yet" }
  if (!s.lastEnd.ok) return { ok: false, status: "failing", reason: s.lastEnd.reason }
  const age = now - s.lastEnd.at
  if (age > 2 * s.intervalMs)
    return {
      ok: false,
      status: "stale",
      reason: `the last cycle ended ${minutes(age)} ago (more than twice the ${minutes(s.intervalMs)} interval)`
    }
  return { ok: true, status: "ok", reason: `the last cycle ended well ${minutes(age)} ago` }
}

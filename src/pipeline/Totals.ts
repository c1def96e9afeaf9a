/**
 * What one cycle adds to the store's running totals (store/Totals.ts), read off its result: pure, so what
 * /metrics counts is what the cycle's own summary says.
 */
import type { TotalDelta } from "../store/Totals.js"

interface StageLike<A> {
  readonly status: "ok" | "skipped" | "failed"
  readonly summary?: A
}

export interface CycleLike {
  readonly failed: ReadonlyArray<string>
  readonly behaviorFaults?: ReadonlyArray<{ readonly stage: string; readonly behavior: string }>
  readonly stages: {
    readonly ingest: StageLike<{ readonly ingested: number; readonly malformed: number }>
    readonly eval: StageLike<{
      readonly behaviors: Readonly<
        Record<
          string,
          {
            readonly canaryTraces: number
            readonly pairTraces: number
            readonly trendTraces: number
            readonly humanTraces: number
            readonly unscored: number
          }
        >
      >
    }>
    readonly optimize: StageLike<{ readonly behaviors: Readonly<Record<string, { readonly outcome: string }>> }>
    readonly deploy: StageLike<{ readonly decisions: Readonly<Record<string, { readonly action: string }>> }>
    readonly align?: StageLike<{
      readonly behaviors: Readonly<
        Record<
          string,
          {
            readonly status: string
            readonly adopted?: string | null
            readonly pending?: boolean
            readonly attempt?: number | null
          }
        >
      >
    }>
  }
}

const ok = <A>(stage: StageLike<A>): A | undefined => (stage.status === "ok" ? stage.summary : undefined)

export const cycleTotals = (cycle: CycleLike): ReadonlyArray<TotalDelta> => {
  const deltas: Array<TotalDelta> = [
    { name: "autotune_cycles_total", labels: { outcome: cycle.failed.length === 0 ? "ok" : "failed" }, value: 1 }
  ]
  for (const f of cycle.behaviorFaults ?? [])
    deltas.push({ name: "autotune_behavior_faults_total", labels: { behavior: f.behavior, stage: f.stage }, value: 1 })
  const ingest = ok(cycle.stages.ingest)
  if (ingest !== undefined) {
    deltas.push({ name: "autotune_traces_ingested_total", labels: {}, value: ingest.ingested })
    deltas.push({ name: "autotune_traces_malformed_total", labels: {}, value: ingest.malformed })
  }
  for (const [behavior, b] of Object.entries(ok(cycle.stages.eval)?.behaviors ?? {})) {
    deltas.push({ name: "autotune_judged_turns_total", labels: { behavior, reason: "canary" }, value: b.canaryTraces })
    deltas.push({ name: "autotune_judged_turns_total", labels: { behavior, reason: "pair" }, value: b.pairTraces })
    deltas.push({ name: "autotune_judged_turns_total", labels: { behavior, reason: "trend" }, value: b.trendTraces })
    deltas.push({ name: "autotune_judged_turns_total", labels: { behavior, reason: "human" }, value: b.humanTraces })
    deltas.push({ name: "autotune_unscored_turns_total", labels: { behavior }, value: b.unscored })
  }
  for (const [behavior, o] of Object.entries(ok(cycle.stages.optimize)?.behaviors ?? {})) {
    deltas.push({ name: "autotune_optimizer_runs_total", labels: { behavior, outcome: o.outcome }, value: 1 })
  }
  for (const [behavior, d] of Object.entries(ok(cycle.stages.deploy)?.decisions ?? {})) {
    // "none": there was no canary to decide on.
    if (d.action !== "none")
      deltas.push({ name: "autotune_canary_decisions_total", labels: { behavior, action: d.action }, value: 1 })
  }
  for (const [behavior, a] of Object.entries(ok(cycle.stages.align ?? { status: "skipped" })?.behaviors ?? {})) {
    if (a.status !== "tried") continue
    const outcome =
      a.adopted == null
        ? a.attempt == null
          ? "no_candidate"
          : "not_adopted"
        : a.pending === true
          ? "pending"
          : "adopted"
    deltas.push({ name: "autotune_align_attempts_total", labels: { behavior, outcome }, value: 1 })
  }
  return deltas
}

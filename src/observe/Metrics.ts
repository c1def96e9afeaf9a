/**
 * The series /metrics shows, as Effect metrics (exported through @effect/opentelemetry and OpenTelemetry's
 * Prometheus exporter). Names follow Prometheus' conventions: base units in the name (`_seconds`, `_bytes`,
 * `_dollars`), counters end in `_total` (the exporter adds it to a monotonic sum), labels of bounded
 * cardinality (behavior, stage, model, outcome, action, version). docs/observability.md lists them.
 */
import { Clock, Effect, Metric, MetricBoundaries, MetricLabel } from "effect"
import { labelsKey } from "../store/Totals.js"
import type { Snapshot } from "./Snapshot.js"

type Labels = Readonly<Record<string, string>>

const HELP: Readonly<Record<string, string>> = {
  autotune_cycles: "Cycles (daemon and once) by outcome, fleet-wide, kept in the store",
  autotune_traces_ingested: "Trace lines stored by cycles, fleet-wide",
  autotune_traces_malformed: "Trace lines that could not be read, fleet-wide",
  autotune_judged_turns:
    "Turns the judge was asked to score, by behavior and why they were chosen (canary, pair, human, trend)",
  autotune_align_attempts:
    "Alignment attempts at a behavior's rubric by outcome (adopted, pending, not_adopted, no_candidate)",
  autotune_unscored_turns: "Judged turns whose answer could not be used (unscored, never counted as 0)",
  autotune_behavior_faults:
    "A behavior's own faults in a cycle's stage (eval, optimize, deploy): the other behaviors went on",
  autotune_optimizer_runs: "Optimizer runs by behavior and outcome (selected, no_gain, skipped, ...)",
  autotune_canary_decisions: "Canary looks by behavior and action (promoted, rolled_back, waiting, expired)",
  autotune_llm_calls: "LLM calls by stage, model and outcome (ok, failed)",
  autotune_llm_tokens: "LLM tokens by stage, model and direction (input, output)",
  autotune_llm_cost_dollars: "LLM spend in US dollars by stage and model (models without a price count 0)",
  autotune_egress_replacements: "Values the egress guard replaced in outgoing requests, by stage",
  autotune_build_info: "The running autotune's version",
  autotune_cycle_duration_seconds: "How long this daemon's cycles took",
  autotune_ingest_lag_seconds: "Age of the newest trace in the store",
  autotune_last_success_timestamp_seconds: "When a cycle last ended without a failed stage (any host of the store)",
  autotune_interval_seconds: "The daemon's cycle interval",
  autotune_llm_circuit_open: "1 when the last cycle's LLM work was stopped by the circuit breaker (a failing provider)",
  autotune_budget_spent_24h_dollars: "LLM spend of the last 24 hours",
  autotune_budget_daily_dollars: "AUTOTUNE_DAILY_BUDGET_USD (0 = no daily budget)",
  autotune_window_spend_dollars: "autotune's LLM spend over the window (the last 24 hours, 7 or 30 UTC days)",
  autotune_agent_spend_dollars:
    "The agent's own spend over the window, from its traces' cost_total_usd (NaN when no turn carries a cost)",
  autotune_agent_spend_share_ratio:
    "autotune's spend as a fraction of the agent's over the window (NaN when the agent's cost is unknown or $0)",
  autotune_store_size_bytes: "The store's size (SQLite pages or the PostgreSQL database)",
  autotune_pack_info: "1 for the version each behavior serves as active and as canary; 0 for versions it served before",
  autotune_canary_share_ratio: "The canary's share of requests (0..1); 0 without a canary",
  autotune_canary_samples: "Judged turns (and errors) of each arm since the canary started",
  autotune_canary_score_mean: "Mean judge score of each arm since the canary started",
  autotune_canary_evidence: "Anytime-valid evidence (e-value) toward promote and rollback at the canary's last look",
  autotune_canary_evidence_threshold: "The evidence at which the canary is promoted or rolled back",
  autotune_score_mean: "Mean judge score per pack version over the last 7 UTC days",
  autotune_judge_agreement_auc:
    "How well the judge's scores separate users' thumbs-up from thumbs-down turns (0.5 = chance)",
  autotune_judge_grade_spearman:
    "Spearman's correlation of the judge's scores with a person's grades (autotune label); NaN before any"
}

const labelled = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, labels: Labels): Metric.Metric<Type, In, Out> =>
  // Sorted: Effect keys a series by its labels in order, and one Prometheus series must be one Effect series.
  Metric.taggedWithLabels(
    metric,
    Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => MetricLabel.make(k, v))
  )

const counter = (name: string) => Metric.counter(name, { description: HELP[name] ?? name, incremental: true })
const gauge = (name: string) => Metric.gauge(name, { description: HELP[name] ?? name })

const cycleDuration = Metric.histogram(
  "autotune_cycle_duration_seconds",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }),
  HELP["autotune_cycle_duration_seconds"]
)

/** Records one of this daemon's cycles (how long it took); the counts by outcome are the store's. */
export const recordCycleDuration = (seconds: number) => Metric.update(cycleDuration, seconds)

/**
 * Publishes a snapshot. Counters follow the store's totals: each series is raised by what the store gained
 * since the last snapshot, so after a restart it starts at the fleet's total, never at zero.
 */
export const makePublisher = (version: string) => {
  const exported = new Map<string, number>()
  const infoSeries = new Set<string>()
  let newestTraceAt: number | null = null

  const raiseTo = (name: string, labels: Labels, total: number) => {
    const key = `${name}${labelsKey(labels)}`
    const delta = total - (exported.get(key) ?? 0)
    if (delta <= 0 && exported.has(key)) return Effect.void
    exported.set(key, total)
    return Metric.incrementBy(labelled(counter(name), labels), Math.max(delta, 0))
  }
  const set = (name: string, labels: Labels, value: number) => Metric.set(labelled(gauge(name), labels), value)

  const publish = (s: Snapshot) =>
    Effect.gen(function* () {
      newestTraceAt = s.newestTraceAt
      yield* set("autotune_build_info", { version }, 1)
      // Every series an alert counts the increase of exists from the start at its total (0 before the first
      // event): Prometheus cannot see the increase of a series whose first sample is already 1.
      const totals = new Map(s.totals.map((t) => [`${t.name}${labelsKey(t.labels)}`, t.value]))
      const known = [
        ...["ok", "failed"].map((outcome) => ({ name: "autotune_cycles_total", labels: { outcome } })),
        { name: "autotune_traces_ingested_total", labels: {} },
        { name: "autotune_traces_malformed_total", labels: {} },
        ...s.behaviors.flatMap(({ behavior }) => [
          ...["promoted", "rolled_back", "expired"].map((action) => ({
            name: "autotune_canary_decisions_total",
            labels: { behavior, action }
          })),
          ...["canary", "pair", "human", "trend"].map((reason) => ({
            name: "autotune_judged_turns_total",
            labels: { behavior, reason }
          })),
          { name: "autotune_unscored_turns_total", labels: { behavior } },
          ...["eval", "optimize", "deploy"].map((stage) => ({
            name: "autotune_behavior_faults_total",
            labels: { behavior, stage }
          })),
          { name: "autotune_align_attempts_total", labels: { behavior, outcome: "adopted" } }
        ])
      ]
      for (const k of known)
        if (!totals.has(`${k.name}${labelsKey(k.labels)}`)) yield* raiseTo(k.name.replace(/_total$/, ""), k.labels, 0)
      for (const t of s.totals) yield* raiseTo(t.name.replace(/_total$/, ""), t.labels, t.value)
      for (const l of s.llm) {
        yield* raiseTo("autotune_llm_calls", { stage: l.stage, model: l.model, outcome: "ok" }, l.calls - l.failed)
        yield* raiseTo("autotune_llm_calls", { stage: l.stage, model: l.model, outcome: "failed" }, l.failed)
        yield* raiseTo("autotune_llm_tokens", { stage: l.stage, model: l.model, direction: "input" }, l.tokensIn)
        yield* raiseTo("autotune_llm_tokens", { stage: l.stage, model: l.model, direction: "output" }, l.tokensOut)
        yield* raiseTo("autotune_llm_cost_dollars", { stage: l.stage, model: l.model }, l.costUsd)
        yield* raiseTo("autotune_egress_replacements", { stage: l.stage }, l.egressRedactions)
      }
      if (s.lastSuccessAt !== null) yield* set("autotune_last_success_timestamp_seconds", {}, s.lastSuccessAt / 1000)
      yield* set("autotune_interval_seconds", {}, s.intervalSeconds)
      yield* set("autotune_llm_circuit_open", {}, s.breakerOpen ? 1 : 0)
      yield* set("autotune_budget_spent_24h_dollars", {}, s.spent24hUsd)
      yield* set("autotune_budget_daily_dollars", {}, s.dailyBudgetUsd)
      yield* set("autotune_store_size_bytes", {}, s.storeBytes)
      for (const c of s.cost) {
        const window = `${c.days}d`
        yield* set("autotune_window_spend_dollars", { window }, c.autotuneUsd)
        // NaN, not 0, where the agent's cost is not known: "unknown" must not read as "free".
        yield* set("autotune_agent_spend_dollars", { window }, c.agentUsd ?? Number.NaN)
        yield* set("autotune_agent_spend_share_ratio", { window }, c.share ?? Number.NaN)
      }
      yield* set("autotune_canary_evidence_threshold", { direction: "promote" }, s.thresholds.promote)
      yield* set("autotune_canary_evidence_threshold", { direction: "rollback" }, s.thresholds.rollback)
      const serving = new Set<string>()
      for (const b of s.behaviors) {
        const { behavior } = b
        for (const [role, v] of [
          ["active", b.active],
          ["canary", b.canary]
        ] as const) {
          if (v !== null) serving.add(labelsKey({ behavior, role, version: v }))
        }
        yield* set("autotune_canary_share_ratio", { behavior }, b.canaryShare ?? 0)
        yield* set("autotune_canary_samples", { behavior, arm: "canary" }, b.samples.canary)
        yield* set("autotune_canary_samples", { behavior, arm: "active" }, b.samples.active)
        for (const arm of ["canary", "active"] as const) {
          const mean = b.mean[arm]
          if (mean !== null) yield* set("autotune_canary_score_mean", { behavior, arm }, mean)
        }
        yield* set("autotune_canary_evidence", { behavior, direction: "promote" }, b.evidence?.promote ?? 0)
        yield* set("autotune_canary_evidence", { behavior, direction: "rollback" }, b.evidence?.rollback ?? 0)
        for (const v of b.scoreByVersion) yield* set("autotune_score_mean", { behavior, version: v.version }, v.mean)
        // NaN until users' reactions make it measurable: the series is there, its value is "unknown".
        yield* set("autotune_judge_agreement_auc", { behavior }, b.auc ?? Number.NaN)
        yield* set("autotune_judge_grade_spearman", { behavior }, b.gradeSpearman ?? Number.NaN)
      }
      // An info series stays in the registry once set: a version no longer served reads 0.
      for (const key of new Set([...infoSeries, ...serving])) {
        infoSeries.add(key)
        yield* set("autotune_pack_info", JSON.parse(key) as Labels, serving.has(key) ? 1 : 0)
      }
      yield* refreshClock
    })

  /** What depends on the time of the scrape, set just before each one. */
  const refreshClock = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    newestTraceAt === null
      ? Effect.void
      : set("autotune_ingest_lag_seconds", {}, Math.max(0, (now - newestTraceAt) / 1000))
  )

  return { publish, refreshClock } as const
}

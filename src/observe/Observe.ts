/**
 * observe/: the daemon in the operator's own tools. Prometheus metrics and the health checks on
 * AUTOTUNE_METRICS_PORT, OpenTelemetry traces of every cycle, and `status`'s figures.
 * May import: Domain, config, privacy, store, llm, ingest, judge, canary, optimize, align, behavior, report, pipeline
 */
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Clock, Effect, Either } from "effect"
import { type ConfigInput, loadSettings, resolveConfig } from "../config/Config.js"
import type { AppConfig } from "../config/Table.js"
import { makeAppLayer } from "../pipeline/App.js"
import { type CycleObserver, daemon } from "../pipeline/Runner.js"
import { type LoopState, liveness, readiness } from "./Health.js"
import { makePublisher, recordCycleDuration } from "./Metrics.js"
import { serve } from "./Server.js"
import { readSnapshot } from "./Snapshot.js"
import { telemetryLayer } from "./Telemetry.js"

/** The one line /healthz gives for a cycle that did not end well. */
const failureReason = (outcome: Parameters<CycleObserver<never>["ended"]>[1], breakerOpen: boolean): string | null => {
  if (Either.isLeft(outcome)) {
    const e = outcome.left
    if (e._tag === "StoreError") return `store unreachable: ${e.message}`
    return `the last cycle did not run: ${e.message}`
  }
  const { failed, errors } = outcome.right
  if (failed.length === 0) return null
  return `${breakerOpen ? "provider failing" : "the last cycle failed"}: ${errors.join("; ").slice(0, 400)}`
}

/**
 * The daemon with its observer: the metrics port (when set) is bound before the first cycle, so a port
 * already taken stops it at once with one line; each cycle's end refreshes the series from the store. The whole
 * configuration is checked before the first cycle: a bad value stops it with exit 2, as `once` does (a broken edit
 * while it runs is logged each cycle and the last good interval kept).
 */
export const observedDaemon = (input: ConfigInput, version: string) =>
  Effect.flatMap(loadSettings(input), ({ config }) => observing(input, version, config))

const observing = (input: ConfigInput, version: string, config: AppConfig) => {
  // The port and the tracing are set at start: changing them takes a restart (the rest is re-read each cycle).
  const port = config.metricsPort
  const exporter = port > 0 ? new PrometheusExporter({ preventServerStart: true }) : undefined
  return Effect.gen(function* () {
    const publisher = makePublisher(version)
    let breakerOpen = false
    let state: LoopState = {
      cycleStartedAt: null,
      lastEnd: null,
      intervalMs: config.intervalMinutes * 60_000,
      startedAt: yield* Clock.currentTimeMillis,
      loopEnded: false
    }

    const refresh = readSnapshot.pipe(
      Effect.tap((s) => {
        breakerOpen = s.breakerOpen
        return publisher.publish(s)
      }),
      Effect.catchAll((e) => Effect.logWarning(`metrics not refreshed: ${e.message}`))
    )
    const observer: CycleObserver<Effect.Effect.Context<typeof readSnapshot>> = {
      started: () => Effect.map(Clock.currentTimeMillis, (now) => void (state = { ...state, cycleStartedAt: now })),
      after: () => (exporter === undefined ? Effect.void : refresh),
      ended: (_cycle, outcome, seconds, intervalMinutes) =>
        Effect.gen(function* () {
          // Another run holding the lock is not this daemon failing: the state stays as it was.
          const busy = Either.isLeft(outcome) && outcome.left._tag === "LockBusy"
          const reason = failureReason(outcome, Either.isRight(outcome) && breakerOpen)
          const now = yield* Clock.currentTimeMillis
          state = {
            ...state,
            cycleStartedAt: null,
            intervalMs: intervalMinutes * 60_000,
            lastEnd: busy ? state.lastEnd : { at: now, ok: reason === null, reason: reason ?? "ok" }
          }
          if (exporter !== undefined) yield* recordCycleDuration(seconds)
        })
    }

    if (exporter !== undefined) {
      yield* serve(config.metricsHost, port, {
        exporter,
        beforeScrape: () => Effect.runSync(publisher.refreshClock),
        livez: () => liveness(state, Effect.runSync(Clock.currentTimeMillis)),
        healthz: () => readiness(state, Effect.runSync(Clock.currentTimeMillis))
      })
      yield* Effect.logInfo(`metrics on http://${config.metricsHost}:${port}/metrics (health: /livez, /healthz)`)
      // Before the first cycle, the store's totals are what a scrape shows.
      yield* refresh.pipe(
        Effect.provide(makeAppLayer(input)),
        Effect.catchAll((e) => Effect.logWarning(`metrics not read at start: ${e.message}`))
      )
    }
    return yield* daemon(input, observer).pipe(
      Effect.ensuring(Effect.sync(() => void (state = { ...state, loopEnded: true })))
    )
  }).pipe(
    Effect.scoped,
    Effect.provide(telemetryLayer({ env: input.env ?? process.env, version, hostId: config.hostId, metrics: exporter }))
  )
}

const configAtStart = (input: ConfigInput) => {
  const resolved = resolveConfig(input)
  return Either.isRight(resolved) ? resolved.right.config : undefined
}

/** A command (`once`) with its cycle exported as a trace when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
export const withTracing =
  (input: ConfigInput, version: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provide(
        telemetryLayer({ env: input.env ?? process.env, version, hostId: configAtStart(input)?.hostId ?? "" })
      )
    )

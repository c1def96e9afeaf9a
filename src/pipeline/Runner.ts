/**
 * One full cycle under the run lock, with the configuration read now: one run at a time across processes;
 * a second one waits briefly, then fails with LockBusy.
 */
import { Clock, Duration, Effect, Either } from "effect"
import { logConfigWarnings, makeAppLayer } from "./App.js"
import { type ConfigInput, loadSettings, resolveConfig } from "../config/Config.js"
import { onceStages } from "./Pipeline.js"
import { lockPath, withRunLock } from "../store/RunLock.js"

export type OnceResult = Effect.Effect.Success<typeof onceStages>

export const onceLocked = <R = never>(
  input: ConfigInput,
  lockWait: Duration.DurationInput = "10 seconds",
  after?: AfterCycle<R>
) =>
  Effect.gen(function* () {
    const resolved = yield* loadSettings(input)
    const cycle = Effect.zipRight(logConfigWarnings, onceStages).pipe(
      Effect.tap((result) => after?.(result) ?? Effect.void)
    )
    return yield* withRunLock(
      lockPath(resolved.config.dbPath),
      cycle.pipe(Effect.provide(makeAppLayer(input))),
      lockWait
    )
  }).pipe(Effect.withSpan("autotune cycle", { root: true }))

/** Work a caller adds to the end of each cycle, with the cycle's services (the daemon reads its metrics there). */
export type AfterCycle<R> = (result: OnceResult) => Effect.Effect<void, never, R>

/** What the daemon tells its observer: a cycle started, and how it ended (or why it did not run). */
export interface CycleObserver<R> {
  readonly started: (cycle: number) => Effect.Effect<void>
  readonly after: AfterCycle<R>
  readonly ended: (
    cycle: number,
    outcome: Either.Either<OnceResult, { readonly _tag: string; readonly message: string }>,
    seconds: number,
    intervalMinutes: number
  ) => Effect.Effect<void>
}

const cycleLog = (result: OnceResult, seconds: number) => {
  const s = result.stages
  return Effect.logInfo("cycle finished").pipe(
    Effect.annotateLogs({
      seconds: Math.round(seconds * 10) / 10,
      ingested: s.ingest.status === "ok" ? s.ingest.summary.ingested : s.ingest.status,
      eval: s.eval.status === "ok" ? s.eval.summary.calls : s.eval.status,
      optimize: s.optimize.status,
      deploy:
        s.deploy.status === "ok"
          ? Object.fromEntries(Object.entries(s.deploy.summary.decisions).map(([b, d]) => [b, d.action]))
          : s.deploy.status,
      failed: result.failed.join(",") || "none"
    })
  )
}

/**
 * The daemon: `once` every AUTOTUNE_INTERVAL_MINUTES, re-reading the configuration each cycle so an edited
 * file takes effect. A failed cycle (a bad edit of the config included) is logged and never ends the loop.
 * Interruption (SIGTERM, SIGINT) stops it between or inside a cycle: in-flight HTTP requests are aborted,
 * the lock is released, files are only ever replaced atomically.
 */
export const daemon = <R = never>(input: ConfigInput, observer?: CycleObserver<R>) =>
  Effect.gen(function* () {
    yield* Effect.logInfo("daemon started")
    let interval = 60
    for (let cycle = 1; ; cycle++) {
      const started = yield* Clock.currentTimeMillis
      yield* observer?.started(cycle) ?? Effect.void
      const outcome = yield* Effect.either(onceLocked(input, "1 second", observer?.after))
      // The interval comes from the configuration as it is now; a broken file falls back to the last good one.
      interval = Either.match(resolveConfig(input), {
        onLeft: () => interval,
        onRight: (r) => r.config.intervalMinutes
      })
      const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
      yield* observer?.ended(cycle, outcome, seconds, interval) ?? Effect.void
      if (Either.isRight(outcome)) {
        yield* cycleLog(outcome.right, seconds)
        // One error line per cycle with each failed stage and its cause (a wrong key is not logged per call).
        if (outcome.right.failed.length > 0)
          yield* Effect.logError(`cycle ${cycle}: ${outcome.right.errors.join("; ")}`)
      } else yield* Effect.logError(`cycle ${cycle} did not run: ${outcome.left.message}`)
      yield* Effect.logInfo(`next cycle in ${interval} minute(s)`)
      yield* Effect.sleep(Duration.minutes(interval))
    }
  }).pipe(Effect.onInterrupt(() => Effect.logInfo("daemon stopped")))

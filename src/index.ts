/**
 * The library API. DotClaw's scripts/autotune.js sets AUTOTUNE_* variables and does
 * `import { runOnce } from '@dotsetlabs/autotune'; await runOnce()`.
 */
import { Cause, Effect, Either, Exit } from "effect"
import { type ConfigInput, resolveConfig, type ResolvedConfig } from "./config/Config.js"
import { ConfigError } from "./Domain/Errors.js"
import { LoggingLive } from "./cli/Output.js"
import { VERSION } from "./Domain/Version.js"
import { observedDaemon } from "./observe/Observe.js"
import { onceLocked, type OnceResult } from "./pipeline/Runner.js"

const input = (configPath?: string): ConfigInput => ({ configPath })

const logging = LoggingLive()

/** The resolved configuration (flags none, then environment, file, defaults). Throws ConfigError on a bad value. */
export const loadConfig = (configPath?: string): ResolvedConfig => {
  const result = resolveConfig(input(configPath))
  if (Either.isLeft(result)) throw result.left
  return result.right
}

/** An Error carrying the run's full result, for a run in which a stage failed. */
export class RunFailed extends Error {
  constructor(readonly result: OnceResult) {
    super(`autotune: ${result.errors.join("; ")}`)
    this.name = "RunFailed"
  }
}

/**
 * One full cycle (ingest, eval, optimize, deploy and canary decisions) under the run lock. Resolves with every
 * stage's result; rejects with RunFailed when a stage failed, ConfigError on a bad setting, LockBusy when
 * another run holds the lock.
 */
export const runOnce = (configPath?: string): Promise<OnceResult> =>
  Effect.runPromise(
    onceLocked(input(configPath)).pipe(
      Effect.flatMap((result) =>
        result.failed.length > 0 ? Effect.fail(new RunFailed(result)) : Effect.succeed(result)
      ),
      Effect.provide(logging)
    )
  )

/**
 * The daemon: `once` every AUTOTUNE_INTERVAL_MINUTES until the signal aborts. Resolves when stopped; rejects with
 * ConfigError at once when the configuration is bad (checked before the first cycle, as `autotune daemon` does).
 * Like `autotune daemon`, it serves /metrics, /livez and /healthz on AUTOTUNE_METRICS_PORT and exports traces over
 * OTLP when set.
 */
export const runDaemon = async (
  configPath?: string,
  options: { readonly signal?: AbortSignal } = {}
): Promise<void> => {
  const exit = await Effect.runPromiseExit(
    observedDaemon(input(configPath), VERSION).pipe(Effect.provide(logging), Effect.asVoid),
    options.signal === undefined ? undefined : { signal: options.signal }
  )
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return
  throw Cause.squash(exit.cause)
}

export { ConfigError }
export type { OnceResult, ResolvedConfig }
export { Settings, SettingsLive, settingsFrom, resolveConfig } from "./config/Config.js"
export { AppConfig, CONFIG_KEYS, SETTINGS } from "./config/Table.js"
export { makeAppLayer } from "./pipeline/App.js"
export { makeDbLayer, DbLive } from "./store/Db.js"
export { makePgLayer } from "./store/Postgres.js"
export { TraceSource } from "./ingest/Ingest.js"
export { Feedback } from "./ingest/Feedback.js"
export { discover } from "./config/DotClaw.js"
export { Llm, chooseProvider, UnavailableLlm } from "./llm/Llm.js"
export { AnthropicLlm } from "./llm/AnthropicLlm.js"
export { OpenAiCompatibleLlm } from "./llm/OpenAiCompatibleLlm.js"
export { LlmRunner } from "./llm/LlmRunner.js"
export { Judge } from "./judge/Judge.js"
export { Optimizer } from "./optimize/Optimize.js"
export { Aligner } from "./align/Align.js"
export { Rubrics } from "./judge/RubricBook.js"
export { Deployer } from "./canary/Deployer.js"
export { CanaryMonitor } from "./canary/Canary.js"
export { decide, CanaryProcess } from "./canary/Stats.js"
export { redactText, redactDeep } from "./privacy/Redactor.js"
export { parseTraceLine } from "./ingest/Parse.js"
export { PromptPack } from "./Domain/Pack.js"
export { LlmError } from "./Domain/Llm.js"

/**
 * What every command shares: the options each takes (--config, --json and the config flags), the configuration
 * they make, and running a command with the application's services.
 */
import { Args, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { logConfigWarnings, makeAppLayer } from "../pipeline/App.js"
import { type ConfigInput, storeLocation, resolveConfig } from "../config/Config.js"
import { BEHAVIORS } from "../Domain/Behavior.js"
import { LlmUnavailable, StageFailed, StoreError } from "../Domain/Errors.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { faultsOf } from "../pipeline/Pipeline.js"

export const configOption = Options.text("config").pipe(
  Options.withDescription("Config file (default: AUTOTUNE_CONFIG_PATH, else $AUTOTUNE_HOME/autotune.json)"),
  Options.optional
)
export const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("Print exactly one JSON object on stdout")
)
// The settings' flags are read by Argv.ts, before or after the command, typed and checked there; @effect/cli sees
// --config and --json (moved after the command) and each command's own options.
export const common = { config: configOption, json: jsonOption }

export interface Common {
  readonly config: Option.Option<string>
  readonly json: boolean
}

let givenFlags: Readonly<Record<string, string>> = {}
/** The settings' flags of this command line (Argv.ts), set once before the command runs. */
export const setGivenFlags = (flags: Readonly<Record<string, string>>) => void (givenFlags = flags)

export const configInput = (opts: Common): ConfigInput => ({
  configPath: Option.getOrUndefined(opts.config),
  flags: givenFlags
})

/** A store error names the database it is about, whichever service raised it. */
export const withStorePath =
  (input: ConfigInput) =>
  <E>(error: E): E => {
    if (!(error instanceof StoreError) || error.path !== undefined) return error
    const resolved = resolveConfig(input)
    if (Either.isLeft(resolved)) return error
    return new StoreError({
      operation: error.operation,
      detail: error.detail,
      path: storeLocation(resolved.right.config),
      ...(error.saved !== undefined ? { saved: error.saved } : {})
    }) as E
  }

/** Runs a command body with the application's services for the given options. */
export const withApp = <A, E, R>(opts: Common, body: Effect.Effect<A, E, R>) =>
  Effect.zipRight(logConfigWarnings, body).pipe(
    Effect.provide(makeAppLayer(configInput(opts))),
    Effect.mapError(withStorePath(configInput(opts)))
  )

/** Fails with the one line that says which variable enables the LLM stages. */
export const requireProvider = Effect.flatMap(LlmRunner, (runner) =>
  runner.provider.available ? Effect.void : Effect.fail(new LlmUnavailable({ detail: runner.provider.why }))
)

/** A stage that went on past some behaviors' own faults still exits 1, with one line naming each. */
export const failOnFaults = (stage: string, summary: unknown) => {
  const faults = faultsOf(stage, summary)
  return faults.length === 0
    ? Effect.void
    : Effect.fail(new StageFailed({ stage, detail: faults.map((f) => `${f.behavior}: ${f.fault}`).join("; ") }))
}

export const behaviorArg = Args.choice(
  BEHAVIORS.map((b) => [b, b] as const),
  { name: "behavior" }
)

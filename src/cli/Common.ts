/**
 * What every command shares: the options each takes (--config, --json and the config flags), the configuration
 * they make, and running a command with the application's services.
 */
import { Args, Options } from "@effect/cli"
import { Effect, Either, Option, Record } from "effect"
import { logConfigWarnings, makeAppLayer } from "../pipeline/App.js"
import { type ConfigInput, storeLocation, resolveConfig } from "../config/Config.js"
import { CONFIG_FLAGS } from "../config/Table.js"
import { BEHAVIORS } from "../Domain/Behavior.js"
import { LlmUnavailable, StageFailed, StoreError } from "../Domain/Errors.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { faultsOf } from "../pipeline/Pipeline.js"

export const configOption = Options.text("config").pipe(
  Options.withDescription("Config file (default: AUTOTUNE_CONFIG_PATH, else $AUTOTUNE_HOME/autotune.json)"),
  Options.optional
)
export const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print exactly one JSON object on stdout"))
// Numeric flags are typed as numbers in --help and parsing; the value then goes through the same schema and
// range check as the environment, as text, so every source is validated alike.
export const flagOption = (f: (typeof CONFIG_FLAGS)[number]): Options.Options<string> =>
  f.kind === "integer"
    ? Options.map(Options.integer(f.flag), String)
    : f.kind === "number"
      ? Options.map(Options.float(f.flag), String)
      : Options.text(f.flag)
// A boolean setting's flag is a switch: given, it sets the setting; absent, the other sources decide.
export const configFlags = Options.all(
  Object.fromEntries(CONFIG_FLAGS.map((f) => [f.flag, f.kind === "boolean"
    ? Options.boolean(f.flag).pipe(Options.withDescription(f.doc), Options.map((on) => (on ? Option.some("1") : Option.none())))
    : flagOption(f).pipe(Options.withDescription(f.doc), Options.optional)])) as Record<
    string,
    Options.Options<Option.Option<string>>
  >
)
export const common = { config: configOption, json: jsonOption, flags: configFlags }

export interface Common {
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly flags: Record<string, Option.Option<string>>
}

export const configInput = (opts: Common): ConfigInput => ({
  configPath: Option.getOrUndefined(opts.config),
  flags: Record.map(opts.flags, Option.getOrUndefined)
})

/** A store error names the database it is about, whichever service raised it. */
export const withStorePath = (input: ConfigInput) => <E>(error: E): E => {
  if (!(error instanceof StoreError) || error.path !== undefined) return error
  const resolved = resolveConfig(input)
  if (Either.isLeft(resolved)) return error
  return new StoreError({ operation: error.operation, detail: error.detail, path: storeLocation(resolved.right.config), ...(error.saved !== undefined ? { saved: error.saved } : {}) }) as E
}

/** Runs a command body with the application's services for the given options. */
export const withApp = <A, E, R>(opts: Common, body: Effect.Effect<A, E, R>) =>
  Effect.zipRight(logConfigWarnings, body).pipe(Effect.provide(makeAppLayer(configInput(opts))), Effect.mapError(withStorePath(configInput(opts))))

/** Fails with the one line that says which variable enables the LLM stages. */
export const requireProvider = Effect.flatMap(LlmRunner, (runner) =>
  runner.provider.available ? Effect.void : Effect.fail(new LlmUnavailable({ detail: runner.provider.why }))
)

/** A stage that went on past some behaviors' own faults still exits 1, with one line naming each. */
export const failOnFaults = (stage: string, summary: unknown) => {
  const faults = faultsOf(stage, summary)
  return faults.length === 0 ? Effect.void : Effect.fail(new StageFailed({ stage, detail: faults.map((f) => `${f.behavior}: ${f.fault}`).join("; ") }))
}

export const behaviorArg = Args.choice(BEHAVIORS.map((b) => [b, b] as const), { name: "behavior" })

/**
 * `autotune init`: the config file and the directories, from a wizard on a TTY or `--yes`.
 */
import { Command, Options, Prompt } from "@effect/cli"
import { Effect, Either, Record, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  configFilePath,
  loadSettings,
  maskSecret,
  storeLocation,
  resolveConfig,
  toConfigFile
} from "../config/Config.js"
import { type AppConfig, CONFIG_KEYS, type ConfigKey, SETTINGS } from "../config/Table.js"
import { BEHAVIORS } from "../Domain/Behavior.js"
import { FileError } from "../Domain/Errors.js"
import { ensureDir, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { printJson, printLine } from "./Output.js"
import { common, configInput } from "./Common.js"

export const initCommand = Command.make(
  "init",
  {
    ...common,
    yes: Options.boolean("yes").pipe(
      Options.withAlias("y"),
      Options.withDescription("Do not prompt: write what flags, env and defaults give")
    ),
    force: Options.boolean("force").pipe(Options.withDescription("Overwrite an existing config file"))
  },
  (opts) =>
    Effect.gen(function* () {
      const input = { ...configInput(opts), creatingConfig: true }
      const resolved = yield* loadSettings(input)
      const target = configFilePath(input, resolved.config.home).path
      if (fs.existsSync(target) && !opts.force) {
        return yield* new FileError({
          path: target,
          operation: "initialise",
          detail: "the file exists already; pass --force to overwrite it"
        })
      }
      const interactive = !opts.yes && process.stdin.isTTY === true && process.stdout.isTTY === true
      if (resolved.dotclawHome !== undefined && !opts.json) {
        yield* printLine(
          `found DotClaw at ${resolved.dotclawHome}: ${interactive ? "its paths and runtime.json settings are offered below" : "its paths and runtime.json settings are used, not written"}`
        )
      }
      const answered = interactive
        ? yield* wizard(resolved.config)
        : { config: resolved.config, typed: new Set<ConfigKey>() }
      const config = answered.config
      // The file holds what the person chose: what they typed (into the wizard, or as a flag of this command) and,
      // with --yes, the few settings people change, at their defaults. Never a value of the environment (a variable
      // set for one run stays temporary), never what DotClaw's own files give, never every default (a later
      // default change must reach the person).
      const chosen = (key: ConfigKey) => answered.typed.has(key) || resolved.origins[key].source === "flag"
      const values: Partial<Record<ConfigKey, unknown>> = {}
      for (const key of CONFIG_KEYS) if (chosen(key)) values[key] = config[key]
      if (!interactive) {
        for (const key of COMMON_SETTINGS) {
          if (key in values || resolved.origins[key].source === "dotclaw") continue
          values[key] = SETTINGS[key].default(config.home)
        }
      }
      const file = toConfigFile({ ...config, ...values } as AppConfig, (key) => !(key in values))
      yield* writeFileAtomic(target, JSON.stringify(file, null, 2) + "\n", MODES.private)
      // The store's and reports' directories are autotune's own; DotClaw's (traces, packs, behavior.json) are read
      // by DotClaw too, perhaps as another user.
      for (const dir of [path.dirname(config.dbPath), config.behaviorReportDir]) yield* ensureDir(dir, MODES.private)
      for (const dir of [config.traceDir, config.outputDir, path.dirname(config.behaviorConfigPath)])
        yield* ensureDir(dir, MODES.shared)
      const next = "autotune once"
      if (opts.json)
        return yield* printJson({
          configPath: target,
          created: true,
          dotclawHome: resolved.dotclawHome ?? null,
          keys: Object.keys(values),
          next
        })
      yield* printLine(`wrote ${target} (mode 0600): ${Object.keys(values).join(", ") || "nothing to pin"}`)
      yield* printLine(`traces from ${config.traceDir}; packs to ${config.outputDir}; store ${storeLocation(config)}`)
      yield* printLine(`next: \`${next}\` runs a first cycle (\`autotune config\` shows where each setting comes from)`)
    })
).pipe(
  Command.withDescription("Write a config file (interactive on a TTY; --yes for defaults) and create the directories")
)

/** The settings people change most (README's table): what `init --yes` writes, at their defaults. */
const COMMON_SETTINGS: ReadonlyArray<ConfigKey> = ["behaviors", "dailyBudgetUsd", "canaryFraction", "canarySteps"]

export const wizard = (base: AppConfig) =>
  Effect.gen(function* () {
    const answers = yield* Prompt.all({
      traceDir: Prompt.text({ message: "Trace directory (where DotClaw writes traces)", default: base.traceDir }),
      outputDir: Prompt.text({
        message: "Prompt pack directory (DotClaw's shared prompts dir)",
        default: base.outputDir
      }),
      dbPath: Prompt.text({ message: "Database path", default: base.dbPath }),
      provider: Prompt.select({
        message: "LLM provider",
        choices: [
          { title: "auto (by which key is set)", value: "auto" as const },
          { title: "Anthropic", value: "anthropic" as const },
          { title: "OpenRouter", value: "openrouter" as const },
          { title: "OpenAI-compatible server (Ollama, vLLM, LM Studio)", value: "openai-compatible" as const }
        ]
      }),
      // Keys are typed without echo, so they never stand on the screen or in a terminal recording.
      anthropicApiKey: Prompt.hidden({
        message: `Anthropic API key (empty keeps ${maskSecret(base.anthropicApiKey)})`
      }),
      openrouterApiKey: Prompt.hidden({
        message: `OpenRouter API key (empty keeps ${maskSecret(base.openrouterApiKey)})`
      }),
      behaviors: Prompt.text({
        message: `Behaviors (comma-separated; known: ${BEHAVIORS.join(", ")})`,
        default: base.behaviors.join(",")
      }),
      canaryFraction: Prompt.text({
        message: "Canary share of requests, (0, 1]",
        default: String(base.canaryFraction)
      }),
      behaviorEnabled: Prompt.confirm({ message: "Tune behavior.json too?", initial: base.behaviorEnabled }),
      redact: Prompt.confirm({ message: "Redact secrets and personal data (recommended)?", initial: base.redact })
    })
    const flags: Record<string, string> = {}
    const env: Record<string, string> = {
      AUTOTUNE_TRACE_DIR: answers.traceDir,
      AUTOTUNE_OUTPUT_DIR: answers.outputDir,
      AUTOTUNE_DB_PATH: answers.dbPath,
      AUTOTUNE_PROVIDER: answers.provider,
      AUTOTUNE_BEHAVIORS: answers.behaviors,
      AUTOTUNE_CANARY_FRACTION: answers.canaryFraction,
      AUTOTUNE_BEHAVIOR_ENABLED: answers.behaviorEnabled ? "1" : "0",
      AUTOTUNE_REDACT: answers.redact ? "1" : "0",
      AUTOTUNE_HOME: base.home
    }
    const anthropicKey = Redacted.value(answers.anthropicApiKey).trim()
    const openrouterKey = Redacted.value(answers.openrouterApiKey).trim()
    if (anthropicKey !== "") env["ANTHROPIC_API_KEY"] = anthropicKey
    if (openrouterKey !== "") env["OPENROUTER_API_KEY"] = openrouterKey
    // The answers go through the same validation as any other source.
    const checked = resolveConfig({ flags, env: { ...process.env, ...env } })
    if (Either.isLeft(checked)) return yield* Effect.fail(checked.left)
    // What the person typed: an answer that is not the value offered (Enter on the offer types nothing).
    const typed = new Set<ConfigKey>()
    const offered: ReadonlyArray<[ConfigKey, boolean]> = [
      ["traceDir", answers.traceDir !== base.traceDir],
      ["outputDir", answers.outputDir !== base.outputDir],
      ["dbPath", answers.dbPath !== base.dbPath],
      ["provider", answers.provider !== base.provider],
      ["anthropicApiKey", anthropicKey !== ""],
      ["openrouterApiKey", openrouterKey !== ""],
      ["behaviors", answers.behaviors !== base.behaviors.join(",")],
      ["canaryFraction", answers.canaryFraction !== String(base.canaryFraction)],
      ["behaviorEnabled", answers.behaviorEnabled !== base.behaviorEnabled],
      ["redact", answers.redact !== base.redact]
    ]
    for (const [key, changed] of offered) if (changed) typed.add(key)
    return { config: checked.right.config, typed }
  })

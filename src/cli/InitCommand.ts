/**
 * `autotune init`: the config file and the directories, from a wizard on a TTY or `--yes`.
 */
import { Command, Options, Prompt } from "@effect/cli"
import { Effect, Either, Record, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { configFilePath, loadSettings, maskSecret, storeLocation, resolveConfig, toConfigFile } from "../config/Config.js"
import { type AppConfig } from "../config/Table.js"
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
    yes: Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("Do not prompt: write what flags, env and defaults give")),
    force: Options.boolean("force").pipe(Options.withDescription("Overwrite an existing config file"))
  },
  (opts) =>
    Effect.gen(function* () {
      const input = { ...configInput(opts), creatingConfig: true }
      const resolved = yield* loadSettings(input)
      const target = configFilePath(input, resolved.config.home).path
      if (fs.existsSync(target) && !opts.force) {
        return yield* new FileError({ path: target, operation: "initialise", detail: "the file exists already; pass --force to overwrite it" })
      }
      const interactive = !opts.yes && process.stdin.isTTY === true && process.stdout.isTTY === true
      if (resolved.dotclawHome !== undefined && !opts.json) {
        yield* printLine(`found DotClaw at ${resolved.dotclawHome}: its paths and runtime.json settings are offered below`)
      }
      const config = interactive ? yield* wizard(resolved.config) : resolved.config
      // What DotClaw's own layout and runtime.json give stays theirs: not pinned in our file unless changed here.
      const fromDotClaw = (key: keyof AppConfig) => resolved.origins[key].source === "dotclaw" && config[key] === resolved.config[key]
      yield* writeFileAtomic(target, JSON.stringify(toConfigFile(config, fromDotClaw), null, 2) + "\n", MODES.private)
      // The store's and reports' directories are autotune's own; DotClaw's (traces, packs, behavior.json) are read
      // by DotClaw too, perhaps as another user.
      for (const dir of [path.dirname(config.dbPath), config.behaviorReportDir]) yield* ensureDir(dir, MODES.private)
      for (const dir of [config.traceDir, config.outputDir, path.dirname(config.behaviorConfigPath)]) yield* ensureDir(dir, MODES.shared)
      if (opts.json) return yield* printJson({ configPath: target, created: true, dotclawHome: resolved.dotclawHome ?? null })
      yield* printLine(`wrote ${target} (mode 0600)`)
      yield* printLine(`traces from ${config.traceDir}; packs to ${config.outputDir}; store ${storeLocation(config)}`)
    })
).pipe(Command.withDescription("Write a config file (interactive on a TTY; --yes for defaults) and create the directories"))

export const wizard = (base: AppConfig) =>
  Effect.gen(function* () {
    const answers = yield* Prompt.all({
      traceDir: Prompt.text({ message: "Trace directory (where DotClaw writes traces)", default: base.traceDir }),
      outputDir: Prompt.text({ message: "Prompt pack directory (DotClaw's shared prompts dir)", default: base.outputDir }),
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
      anthropicApiKey: Prompt.hidden({ message: `Anthropic API key (empty keeps ${maskSecret(base.anthropicApiKey)})` }),
      openrouterApiKey: Prompt.hidden({ message: `OpenRouter API key (empty keeps ${maskSecret(base.openrouterApiKey)})` }),
      behaviors: Prompt.text({ message: `Behaviors (comma-separated; known: ${BEHAVIORS.join(", ")})`, default: base.behaviors.join(",") }),
      canaryFraction: Prompt.text({ message: "Canary share of requests, (0, 1]", default: String(base.canaryFraction) }),
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
    return checked.right.config
  })

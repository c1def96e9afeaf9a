/**
 * The command line as a person types it, read before @effect/cli sees it, so that nothing typed is ignored: the
 * global options (--config, --json and every setting's flag) work before or after the command; an unknown command,
 * option or behavior, or a value of the wrong type, is one line naming it with a "did you mean" where one is close;
 * and --help is ours, a screen per command, with the settings' own words (config/Table.ts). @effect/cli then parses
 * the command and its own options from what this hands it.
 */
import * as fs from "node:fs"
import { BEHAVIORS } from "../Domain/Behavior.js"
import { didYouMean } from "../Domain/Words.js"
import { UsageError } from "../Domain/Errors.js"
import { CONFIG_FLAGS } from "../config/Table.js"
import { VERSION } from "../Domain/Version.js"

export interface OptionSpec {
  readonly name: string
  /** What the value is called in help; none for a switch. */
  readonly value?: string
  readonly kind?: "integer" | "number"
  /** A file to write (it may not be a directory) or to read (it must be a regular file). */
  readonly file?: "write" | "read"
  readonly alias?: string
  readonly doc: string
}

export interface CommandSpec {
  readonly doc: string
  /** The behavior argument: required, optional, or none. */
  readonly behavior?: "required" | "optional"
  readonly options?: ReadonlyArray<OptionSpec>
  readonly sub?: Readonly<Record<string, CommandSpec>>
}

/** Every command and its own options: the single source of help and of what is accepted. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  init: {
    doc: "Write a config file (a wizard on a TTY; --yes for the settings people change) and create the directories",
    options: [
      {
        name: "yes",
        alias: "y",
        doc: "Do not prompt: write a short file of the settings people change, at their defaults"
      },
      { name: "force", doc: "Overwrite an existing config file" }
    ]
  },
  ingest: { doc: "Read new DotClaw trace lines and reactions into the store (incremental, redacted, crash-safe)" },
  eval: {
    doc: "Score what decisions need with the two-stage LLM judge: canary turns, their pairs, a daily trend sample"
  },
  optimize: {
    doc: "Propose better instructions per behavior and keep only measured, held-out gains",
    options: [
      { name: "dry-run", doc: "Print the plan (behaviors, turns, calls, estimated cost per model) and make no call" }
    ]
  },
  deploy: {
    doc: "Ship what optimize selected as canary packs, then promote, roll back, expire or keep waiting on every canary"
  },
  approve: {
    doc: "Ship the pack optimize selected for a behavior as a canary (AUTOTUNE_DEPLOY_APPROVAL=manual)",
    behavior: "required"
  },
  reject: {
    doc: "Discard the pack optimize selected for a behavior, for good",
    behavior: "required",
    options: [{ name: "reason", value: "TEXT", doc: "Why, for the record" }]
  },
  behavior: { doc: "Tune behavior.json from the last AUTOTUNE_BEHAVIOR_DAYS of traces and write the daily report" },
  once: { doc: "One full cycle: ingest, behavior, eval, optimize, deploy and canary decisions, alignment, the report" },
  daemon: {
    doc: "Run `once` every AUTOTUNE_INTERVAL_MINUTES until SIGTERM; --metrics-port serves /metrics, /livez, /healthz"
  },
  rollback: {
    doc: "Remove a behavior's canary, or restore an earlier version with --to VERSION",
    behavior: "required",
    options: [{ name: "to", value: "VERSION", doc: "Restore this earlier version as the active pack" }]
  },
  packs: {
    doc: "The deployment history of prompt packs (newest first)",
    behavior: "optional",
    options: [
      { name: "diff", value: "VERSION", doc: "Show this version's word diff against the instructions it replaced" }
    ]
  },
  label: {
    doc: "Grade judged turns 1-5 in the terminal, or --export/--import them, so the judge is measured against you",
    behavior: "optional",
    options: [
      { name: "import", value: "FILE", file: "read", doc: "Store the grades (1-5) of a JSONL file made by --export" },
      {
        name: "export",
        value: "FILE",
        file: "write",
        doc: "Write the judged turns to grade as JSONL (mode 0600), graded ones included"
      },
      { name: "limit", value: "N", kind: "integer", doc: "Turns per behavior in --export" }
    ]
  },
  rubric: {
    doc: "The judge's rubrics: show their versions, roll one back, approve or reject an aligned one",
    sub: {
      show: {
        doc: "The judge's rubric of each behavior and its versions",
        behavior: "optional",
        options: [{ name: "diff", doc: "Show each version as a word diff against the one before it" }]
      },
      rollback: { doc: "Go back to the previous version of a behavior's rubric", behavior: "required" },
      approve: {
        doc: "Make the rubric alignment adopted (and that waits for you) the judge's rubric",
        behavior: "required"
      },
      reject: { doc: "Refuse the rubric alignment adopted; the current one stays", behavior: "required" }
    }
  },
  status: { doc: "Per behavior: active and canary packs, samples and scores per arm, evidence, last decision, spend" },
  report: {
    doc: "Write one self-contained HTML page: scores, canaries, optimizer runs, spend, judge health",
    options: [
      {
        name: "out",
        value: "FILE",
        file: "write",
        doc: "Where to write the page (default AUTOTUNE_REPORT_PATH, $AUTOTUNE_HOME/report.html)"
      },
      { name: "days", value: "N", kind: "integer", doc: "Days the page covers (default AUTOTUNE_REPORT_DAYS, 30)" }
    ]
  },
  redact: {
    doc: "Clean the store: re-apply the current redaction rules to all stored text, checkpoint the WAL and vacuum",
    options: [{ name: "rescan", doc: "Re-apply the current rules to everything stored, then vacuum" }]
  },
  config: { doc: "Print the resolved configuration and where each value came from (secrets masked)" },
  "accept-store": {
    doc: "Make the store configured now autotune's store, after the one it had was removed or replaced on purpose"
  }
}

/** The options every command takes: --config, --json and each setting that has a flag, in the settings' words. */
export const GLOBAL_OPTIONS: ReadonlyArray<OptionSpec> = [
  {
    name: "config",
    value: "PATH",
    doc: "Config file (default: AUTOTUNE_CONFIG_PATH, else $AUTOTUNE_HOME/autotune.json)"
  },
  { name: "json", doc: "Print exactly one JSON object on stdout (logs stay on stderr)" },
  ...CONFIG_FLAGS.map((f): OptionSpec => ({
    name: f.flag,
    doc: f.doc,
    ...(f.kind === "boolean"
      ? {}
      : { value: f.kind === "integer" || f.kind === "number" ? "N" : f.kind === "path" ? "PATH" : "TEXT" }),
    ...(f.kind === "integer" || f.kind === "number" ? { kind: f.kind } : {})
  }))
]

// @effect/cli's own options, left where they are.
const BUILT_IN = new Set(["help", "h", "version", "wizard", "completions", "log-level"])
const BUILT_IN_VALUE = new Set(["completions", "log-level"])

const usage = (detail: string) => new UsageError({ detail })

export interface Prepared {
  /** What @effect/cli parses: the command path, --config and --json after it, then the command's own options. */
  readonly argv: ReadonlyArray<string>
  /** Values of the settings' flags, keyed by flag name. */
  readonly flags: Readonly<Record<string, string>>
  readonly json: boolean
  /** Help asked for: the text to print instead of running anything. */
  readonly help?: string
}

/** Why a path cannot be the file an option names, if it cannot. */
const fileProblem = (file: string, use: "write" | "read"): string | undefined => {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(file)
  } catch {
    stat = undefined
  }
  if (use === "read") return stat === undefined ? "does not exist" : stat.isFile() ? undefined : "is not a regular file"
  return stat?.isDirectory() === true ? "is a directory; give the file's path" : undefined
}

const isNumber = (kind: "integer" | "number", text: string) =>
  kind === "integer" ? /^-?\d+$/.test(text) : text.trim() !== "" && Number.isFinite(Number(text))

/** Reads the arguments after `autotune`; throws UsageError with the one line to print. */
export const prepareArgv = (args: ReadonlyArray<string>): Prepared => {
  const flags: Record<string, string> = {}
  let json = false
  let configPath: string | undefined
  const path: Array<string> = []
  let spec: CommandSpec | undefined
  const own: Array<string> = []
  const builtIns: Array<string> = []
  let help = false
  const globalByName = new Map(GLOBAL_OPTIONS.map((o) => [o.name, o]))
  const hasBehavior = () => own.some((t) => (BEHAVIORS as ReadonlyArray<string>).includes(t))
  const where = () => (path.length === 0 ? "autotune" : `autotune ${path.join(" ")}`)
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!
    if (token === "--") {
      own.push(...args.slice(i))
      break
    }
    if (token.startsWith("-") && token !== "-") {
      const eq = token.indexOf("=")
      const name = token.replace(/^--?/, "").slice(0, eq < 0 ? undefined : eq - (token.startsWith("--") ? 2 : 1))
      const inline = eq < 0 ? undefined : token.slice(eq + 1)
      const takeValue = (label: string): string => {
        if (inline !== undefined) return inline
        const next = args[i + 1]
        if (next === undefined || next.startsWith("--")) throw usage(`${label} needs a value`)
        i++
        return next
      }
      if (name === "help" || name === "h") {
        help = true
        continue
      }
      if (BUILT_IN.has(name)) {
        builtIns.push(token)
        if (BUILT_IN_VALUE.has(name) && inline === undefined && args[i + 1] !== undefined) builtIns.push(args[++i]!)
        continue
      }
      const global = globalByName.get(name)
      if (global !== undefined) {
        if (name === "json") json = true
        else if (name === "config") configPath = takeValue("--config")
        else if (global.value === undefined) flags[name] = "1"
        else {
          const value = takeValue(`--${name}`)
          if (global.kind !== undefined && !isNumber(global.kind, value)) {
            throw usage(
              `--${name}: ${JSON.stringify(value)} is not ${global.kind === "integer" ? "a whole number" : "a number"}`
            )
          }
          flags[name] = value
        }
        continue
      }
      const mine = spec?.options?.find((o) => o.name === name || o.alias === name)
      if (mine === undefined) {
        const known = [...GLOBAL_OPTIONS, ...(spec?.options ?? [])].map((o) => o.name)
        throw usage(
          `unknown option ${token.split("=")[0]} for ${where()}${didYouMean(name, known, (c) => `--${c}`)}; see \`${where()} --help\``
        )
      }
      own.push(`--${mine.name}`)
      if (mine.value !== undefined) {
        const value = takeValue(`--${mine.name}`)
        if (mine.kind !== undefined && !isNumber(mine.kind, value))
          throw usage(`--${mine.name}: ${JSON.stringify(value)} is not a whole number`)
        const problem = mine.file === undefined ? undefined : fileProblem(value, mine.file)
        if (problem !== undefined) throw usage(`--${mine.name} ${value}: ${problem}`)
        own.push(value)
      }
      continue
    }
    // A word: the command (and a subcommand), then the behavior argument.
    const commands = path.length === 0 ? COMMANDS : spec?.sub
    if (commands !== undefined) {
      const next = commands[token]
      if (next === undefined) {
        const names = Object.keys(commands)
        throw usage(
          `unknown command ${JSON.stringify(path.length === 0 ? token : `${path.join(" ")} ${token}`)}${didYouMean(token, names)}; the commands: ${names.join(", ")}`
        )
      }
      path.push(token)
      spec = next
      continue
    }
    if (spec?.behavior !== undefined && !hasBehavior()) {
      if (!(BEHAVIORS as ReadonlyArray<string>).includes(token)) {
        throw usage(
          `unknown behavior ${JSON.stringify(token)} for ${where()}${didYouMean(token, BEHAVIORS)}; the behaviors: ${BEHAVIORS.join(", ")}`
        )
      }
      own.push(token)
      continue
    }
    throw usage(`unexpected argument ${JSON.stringify(token)} for ${where()}; see \`${where()} --help\``)
  }
  if (spec?.sub !== undefined && !help) {
    throw usage(`${where()} needs a command: ${Object.keys(spec.sub).join(", ")}`)
  }
  if (spec?.behavior === "required" && !help && !hasBehavior()) {
    throw usage(`${where()} needs a behavior: ${BEHAVIORS.join(", ")}`)
  }
  const argv = [
    ...path,
    ...(configPath === undefined ? [] : ["--config", configPath]),
    ...(json ? ["--json"] : []),
    ...own,
    ...builtIns
  ]
  return { argv, flags, json, ...(help ? { help: helpText(path, spec) } : {}) }
}

const optionLines = (options: ReadonlyArray<OptionSpec>) => {
  const left = (o: OptionSpec) =>
    `--${o.name}${o.alias === undefined ? "" : `, -${o.alias}`}${o.value === undefined ? "" : ` ${o.value}`}`
  const width = Math.max(...options.map((o) => left(o).length))
  return options.map((o) => `  ${left(o).padEnd(width)}  ${o.doc}`)
}

/** `autotune --help` and `autotune <command> --help`: a screen each; the global options are listed once, on the first. */
export const helpText = (path: ReadonlyArray<string>, spec: CommandSpec | undefined): string => {
  if (spec === undefined) {
    const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length))
    return [
      `autotune ${VERSION}: the self-improvement loop for DotClaw agents`,
      "",
      "USAGE",
      "  autotune [COMMAND] [OPTIONS]        with no command: once",
      "",
      "COMMANDS",
      ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.doc}`),
      "",
      "OPTIONS (every command, before or after it)",
      ...optionLines(GLOBAL_OPTIONS),
      "",
      "Every setting also has an environment variable and a config-file key: `autotune config` shows where each value",
      "came from; docs/configuration.md lists them. `autotune COMMAND --help` for a command's own options."
    ].join("\n")
  }
  const usage = `autotune ${path.join(" ")}${spec.sub !== undefined ? " COMMAND" : ""}${spec.behavior === "required" ? " <behavior>" : spec.behavior === "optional" ? " [behavior]" : ""} [OPTIONS]`
  return [
    `${usage}`,
    "",
    spec.doc,
    ...(spec.sub === undefined
      ? []
      : ["", "COMMANDS", ...Object.entries(spec.sub).map(([n, c]) => `  ${n.padEnd(8)}  ${c.doc}`)]),
    ...(spec.behavior === undefined ? [] : ["", `<behavior>: one of ${BEHAVIORS.join(", ")}`]),
    ...(spec.options === undefined || spec.options.length === 0 ? [] : ["", "OPTIONS", ...optionLines(spec.options)]),
    "",
    "Global options (--config PATH, --json and the settings' flags): `autotune --help`."
  ].join("\n")
}

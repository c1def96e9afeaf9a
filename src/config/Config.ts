/**
 * config/: the settings and where they come from. Config.ts resolves every setting, flag > environment > JSON
 * file > DotClaw's own files > default, key by key, and provides them as the Settings service; Table.ts is the
 * one table of settings, DotClaw.ts finds a DotClaw install, Prices.ts holds model prices, Reference.ts
 * renders docs/configuration.md from the table.
 */
import { Context, Effect, Either, Layer, ParseResult, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { BEHAVIORS } from "../Domain/Behavior.js"
import { ConfigError } from "../Domain/Errors.js"
import { discover, expandHome } from "./DotClaw.js"
import { AppConfig, CONFIG_KEYS, type ConfigKey, type Kind, SETTINGS } from "./Table.js"
import { didYouMean } from "../Domain/Words.js"

// ---------------------------------------------------------------------------
// Resolution: flag > env > file > default, key by key.
// ---------------------------------------------------------------------------

export interface Origin {
  readonly source: "flag" | "env" | "file" | "dotclaw" | "default"
  /** The flag, variable or file path the value came from. */
  readonly name: string
}

export interface ResolvedConfig {
  readonly config: AppConfig
  readonly origins: { readonly [K in ConfigKey]: Origin }
  /** The config file that was read, if any. */
  readonly configPath: string | undefined
  readonly warnings: ReadonlyArray<string>
  /** Lines for a person at info level: which DotClaw layout was picked and why. */
  readonly notes: ReadonlyArray<string>
  /** The current DotClaw home that was found, if any. */
  readonly dotclawHome: string | undefined
}

export interface ConfigInput {
  /** Values of the command-line flags that were given, keyed by flag name. */
  readonly flags?: Readonly<Record<string, string | undefined>>
  /** `--config`; overrides AUTOTUNE_CONFIG_PATH. */
  readonly configPath?: string | undefined
  /** `init`: the named config file is about to be written, so its absence is no error. */
  readonly creatingConfig?: boolean
  readonly env?: Readonly<Record<string, string | undefined>>
}

const fail = (key: string, source: string, detail: string) => new ConfigError({ key, source, detail })

const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/
const TRUE_WORDS = new Set(["1", "true", "yes", "on"])
const FALSE_WORDS = new Set(["0", "false", "no", "off"])

/** Turns a raw value (a string from a flag or env, any JSON from the file) into the kind a setting holds. */
const coerce = (kind: Kind, raw: unknown): Either.Either<unknown, string> => {
  switch (kind) {
    case "number":
    case "integer":
      if (typeof raw === "number") return Either.right(raw)
      if (typeof raw === "string" && NUMBER_TEXT.test(raw.trim())) return Either.right(Number(raw.trim()))
      return Either.left(`expected a number, got ${JSON.stringify(raw)}`)
    case "numbers": {
      const items = Array.isArray(raw)
        ? raw
        : typeof raw === "string"
          ? raw
              .split(",")
              .map((x) => x.trim())
              .filter((x) => x.length > 0)
          : undefined
      if (items === undefined) return Either.left(`expected comma-separated numbers, got ${JSON.stringify(raw)}`)
      const numbers = items.map((item) =>
        typeof item === "number" ? item : typeof item === "string" && NUMBER_TEXT.test(item) ? Number(item) : NaN
      )
      const bad = numbers.findIndex((n) => Number.isNaN(n))
      return bad >= 0
        ? Either.left(`expected comma-separated numbers, got ${JSON.stringify(items[bad])}`)
        : Either.right(numbers)
    }
    case "boolean": {
      if (typeof raw === "boolean") return Either.right(raw)
      const word = String(raw).trim().toLowerCase()
      if (TRUE_WORDS.has(word)) return Either.right(true)
      if (FALSE_WORDS.has(word)) return Either.right(false)
      return Either.left(`expected 1/0, true/false, yes/no or on/off, got ${JSON.stringify(raw)}`)
    }
    case "list":
      if (Array.isArray(raw)) return Either.right(raw.map((item) => String(item).trim()).filter((s) => s.length > 0))
      if (typeof raw === "string")
        return Either.right(
          raw
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s.length > 0)
        )
      return Either.left(`expected a comma-separated list, got ${JSON.stringify(raw)}`)
    case "path":
      return typeof raw === "string"
        ? Either.right(expandHome(raw.trim()))
        : Either.left(`expected a path, got ${JSON.stringify(raw)}`)
    case "string":
      return typeof raw === "string"
        ? Either.right(raw.trim())
        : Either.left(`expected text, got ${JSON.stringify(raw)}`)
    case "prices":
      return typeof raw === "string" || (raw !== null && typeof raw === "object" && !Array.isArray(raw))
        ? Either.right(raw)
        : Either.left(`expected model=in:out entries or a JSON object, got ${JSON.stringify(raw)}`)
  }
}

const fieldSchemas = AppConfig.fields as unknown as { readonly [K in ConfigKey]: Schema.Schema<AppConfig[K], unknown> }

const firstIssue = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const issue = issues[0]
  if (issue === undefined) return error.message
  return issue.path.length > 0 ? `item ${issue.path.join(".")}: ${issue.message}` : issue.message
}

const validate = (key: ConfigKey, value: unknown, origin: Origin): Either.Either<unknown, ConfigError> => {
  const where = origin.source === "default" ? "default" : `${origin.source} ${origin.name}`
  const coerced = coerce(SETTINGS[key].kind, value)
  if (Either.isLeft(coerced)) return Either.left(fail(key, where, coerced.left))
  const decoded = Schema.decodeUnknownEither(fieldSchemas[key] as Schema.Schema<unknown>)(coerced.right)
  if (Either.isLeft(decoded)) {
    const detail = key === "behaviors" ? behaviorsDetail(coerced.right) : firstIssue(decoded.left)
    return Either.left(fail(key, where, detail))
  }
  return Either.right(decoded.right)
}

const behaviorsDetail = (list: unknown): string => {
  const unknown = Array.isArray(list) ? list.filter((b) => !(BEHAVIORS as ReadonlyArray<unknown>).includes(b)) : []
  return unknown.length > 0
    ? `unknown behavior ${unknown.map((b) => JSON.stringify(b)).join(", ")} (known: ${BEHAVIORS.join(", ")})`
    : `must name at least one of: ${BEHAVIORS.join(", ")}`
}

const getPath = (obj: unknown, segments: ReadonlyArray<string>): unknown => {
  let cur: unknown = obj
  for (const segment of segments) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined
    cur = (cur as Record<string, unknown>)[segment]
  }
  return cur
}

/** Where the config file is: --config, else AUTOTUNE_CONFIG_PATH, else $AUTOTUNE_HOME/autotune.json when present. */
export const configFilePath = (
  input: ConfigInput,
  home: string
): { readonly path: string; readonly explicit: boolean; readonly origin: string } => {
  const env = input.env ?? process.env
  if (input.configPath !== undefined && input.configPath !== "") {
    return { path: expandHome(input.configPath), explicit: true, origin: "--config" }
  }
  const fromEnv = env["AUTOTUNE_CONFIG_PATH"]
  if (fromEnv !== undefined && fromEnv !== "") {
    return { path: expandHome(fromEnv), explicit: true, origin: "AUTOTUNE_CONFIG_PATH" }
  }
  return { path: path.join(home, "autotune.json"), explicit: false, origin: "default" }
}

/** Line and column (from 1) of a character offset, for a JSON error a person can find. */
const lineColumn = (text: string, offset: number) => {
  const before = text.slice(0, offset).split("\n")
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`
}

/**
 * Where JSON text first goes wrong (a character offset), found by reading it as the grammar says: Node's own
 * messages give a position for some mistakes and none for others.
 */
const jsonErrorOffset = (text: string): number => {
  let i = 0
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++
  }
  const fail = (): never => {
    throw i
  }
  const literal = (word: string) => (text.startsWith(word, i) ? void (i += word.length) : fail())
  const string = () => {
    i++
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail()
      i += text[i] === "\\" ? 2 : 1
    }
    if (i >= text.length) fail()
    i++
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === "{") {
      i++
      ws()
      if (text[i] === "}") return void i++
      for (;;) {
        ws()
        if (text[i] !== '"') fail()
        string()
        ws()
        if (text[i] !== ":") fail()
        i++
        value()
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "}") return void i++
        else fail()
      }
    }
    if (c === "[") {
      i++
      ws()
      if (text[i] === "]") return void i++
      for (;;) {
        value()
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "]") return void i++
        else fail()
      }
    }
    if (c === '"') return string()
    if (c === "t") return literal("true")
    if (c === "f") return literal("false")
    if (c === "n") return literal("null")
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i))
    if (m === null) fail()
    i += m![0].length
  }
  try {
    value()
    ws()
    return i < text.length ? i : -1
  } catch (at) {
    return at as number
  }
}

const jsonError = (text: string, error: Error): string => {
  const offset = jsonErrorOffset(text)
  const what = error.message
    .replace(/ in JSON at position \d+.*$/, "")
    .replace(/^(Unexpected token '.+?'),.*$/s, "$1")
    .replace(/,\s*".*$/s, "")
    .replace(/\s*\(line \d+ column \d+\)/, "")
  if (offset < 0) return `not valid JSON: ${what}`
  return offset >= text.length
    ? `not valid JSON: it ends at ${lineColumn(text, text.length)} before the JSON does`
    : `not valid JSON at ${lineColumn(text, offset)}: ${what}`
}

// The file's keys: every setting's (autotune 1.1's `init` wrote the same nested keys) and the objects holding them.
const FILE_LEAVES = new Set(
  CONFIG_KEYS.flatMap((k) => (SETTINGS[k].file === undefined ? [] : [SETTINGS[k].file!.join(".")]))
)
const FILE_OBJECTS = new Set(
  [...FILE_LEAVES].flatMap((leaf) =>
    leaf
      .split(".")
      .slice(0, -1)
      .map((_, i, all) => all.slice(0, i + 1).join("."))
  )
)

/** The first key of the file that is no setting, with the closest one: a typo is an error, never ignored. */
const unknownKey = (
  value: Record<string, unknown>,
  prefix = ""
): { readonly key: string; readonly hint: string } | undefined => {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix === "" ? k : `${prefix}.${k}`
    if (key === "$schema" || FILE_LEAVES.has(key)) continue
    if (FILE_OBJECTS.has(key) && v !== null && typeof v === "object" && !Array.isArray(v)) {
      const inner = unknownKey(v as Record<string, unknown>, key)
      if (inner !== undefined) return inner
      continue
    }
    const siblings = [...FILE_LEAVES, ...FILE_OBJECTS].filter(
      (c) => c.split(".").length === key.split(".").length && c.startsWith(prefix)
    )
    return { key, hint: didYouMean(key, siblings) }
  }
  return undefined
}

const readConfigFile = (file: string, origin: string, warnings: Array<string>): Either.Either<unknown, ConfigError> => {
  let text: string
  try {
    // Only a regular file: a FIFO would block the read for good (and SIGTERM with it), a directory cannot be read.
    const stat = fs.statSync(file)
    if (!stat.isFile()) {
      return Either.left(
        fail(
          "config file",
          `${origin} ${file}`,
          stat.isDirectory()
            ? "is a directory, not a file"
            : "is not a regular file (a FIFO, socket or device); give a JSON file"
        )
      )
    }
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    return Either.left(fail("config file", `${origin} ${file}`, (error as Error).message))
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left(fail("config file", `${origin} ${file}`, jsonError(text, error as Error)))
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return Either.left(fail("config file", `${origin} ${file}`, "must hold a JSON object"))
  }
  const unknown = unknownKey(parsed as Record<string, unknown>)
  if (unknown !== undefined) {
    return Either.left(
      fail(unknown.key, `${origin} ${file}`, `no such setting${unknown.hint}; docs/configuration.md lists the keys`)
    )
  }
  const holdsKey = CONFIG_KEYS.some((key) => {
    const s = SETTINGS[key]
    return (
      s.secret === true &&
      s.file !== undefined &&
      typeof getPath(parsed, s.file) === "string" &&
      getPath(parsed, s.file) !== ""
    )
  })
  if (holdsKey) {
    try {
      const mode = fs.statSync(file).mode & 0o777
      if ((mode & 0o077) !== 0) {
        warnings.push(
          `config file ${file} holds an API key but is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`
        )
      }
    } catch {
      // stat failing right after a successful read is not worth failing the run over
    }
  }
  return Either.right(parsed)
}

/** Resolves every setting, first source that has it wins; any bad value is a ConfigError naming key and source. */
export const resolveConfig = (input: ConfigInput = {}): Either.Either<ResolvedConfig, ConfigError> => {
  const env = input.env ?? process.env
  const flags = input.flags ?? {}
  const warnings: Array<string> = []
  const values: Record<string, unknown> = {}
  const origins: Record<string, Origin> = {}
  let fileLabel = ""

  const explicitHome = flags["home"] !== undefined || (env["AUTOTUNE_HOME"] ?? "") !== ""
  const discovery = discover(env, explicitHome)
  warnings.push(...discovery.warnings)

  const pick = (key: ConfigKey, file: unknown, home: string): Either.Either<unknown, ConfigError> => {
    const setting = SETTINGS[key]
    const flagValue = setting.flag === undefined ? undefined : flags[setting.flag]
    if (flagValue !== undefined) return settle(key, flagValue, { source: "flag", name: `--${setting.flag}` })
    for (const name of setting.env) {
      const value = env[name]
      // An empty variable counts as unset, as in systemd env files and the original autotune.
      if (value !== undefined && value !== "") return settle(key, value, { source: "env", name })
    }
    if (setting.file !== undefined) {
      const value = getPath(file, setting.file)
      if (value !== undefined && value !== null) {
        return settle(key, value, { source: "file", name: `${fileLabel}: ${setting.file.join(".")}` })
      }
    }
    const fromDotClaw = discovery.values[key]
    if (fromDotClaw !== undefined) {
      const settled = settle(key, fromDotClaw.value, { source: "dotclaw", name: fromDotClaw.from })
      if (Either.isRight(settled)) return settled
      // DotClaw's own file is not ours to refuse: a value it would not use either is named and skipped.
      warnings.push(`${settled.left.message}; ignored`)
    }
    if (key === "home")
      return settle(key, discovery.autotuneHome, {
        source: discovery.dotclawHome === undefined ? "default" : "dotclaw",
        name: discovery.dotclawHome === undefined ? "default" : `DotClaw layout at ${discovery.dotclawHome}`
      })
    return settle(key, setting.default(home), { source: "default", name: "default" })
  }
  const settle = (key: ConfigKey, raw: unknown, origin: Origin) =>
    Either.map(validate(key, raw, origin), (value) => {
      values[key] = value
      origins[key] = origin
      return value
    })

  const home = pick("home", undefined, "")
  if (Either.isLeft(home)) return Either.left(home.left)
  const where = configFilePath(input, home.right as string)
  let file: unknown = undefined
  let configPath: string | undefined = undefined
  if (fs.existsSync(where.path)) {
    const read = readConfigFile(where.path, where.origin, warnings)
    if (Either.isLeft(read)) return Either.left(read.left)
    file = read.right
    configPath = where.path
    fileLabel = where.path
  } else if (where.explicit && input.creatingConfig !== true) {
    // A typo in a unit file must not run against the default home and prompts: a named file that is missing stops.
    return Either.left(
      fail("config file", `${where.origin} ${where.path}`, "does not exist (`autotune init --config PATH` writes one)")
    )
  }
  for (const key of CONFIG_KEYS) {
    if (key === "home") continue
    const result = pick(key, file, home.right as string)
    if (Either.isLeft(result)) return Either.left(result.left)
  }
  // 1.1's AUTOTUNE_CANARY_FRACTION was the canary's whole share: a user who set it and no steps keeps it fixed.
  if (
    origins["canarySteps"]!.source === "default" &&
    ["flag", "env", "file"].includes(origins["canaryFraction"]!.source)
  ) {
    values["canarySteps"] = []
    origins["canarySteps"] = { source: "default", name: `none: ${origins["canaryFraction"]!.name} set, a fixed share` }
  }
  const config = values as AppConfig
  if (config.judgeUnsureLow > config.judgeUnsureHigh) {
    return Either.left(fail("judgeUnsureLow", origins.judgeUnsureLow!.name, "must not exceed judgeUnsureHigh"))
  }
  return Either.right({
    config,
    origins: origins as ResolvedConfig["origins"],
    configPath,
    warnings,
    notes: discovery.notes,
    dotclawHome: discovery.dotclawHome
  })
}

/** Masks a secret for display: enough to recognise which key it is, never enough to use it. */
export const maskSecret = (secret: string | Redacted.Redacted<string>): string => {
  const value = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
  if (value === "") return "(unset)"
  // A database URL stays readable (which server, which database); only its password is hidden.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && URL.canParse(value)) {
    const url = new URL(value)
    if (url.password !== "") url.password = "****"
    return url.toString()
  }
  return value.length <= 8 ? "****" : `${value.slice(0, 3)}****${value.slice(-2)}`
}

/** Where the store is, as a person reads it: the SQLite file, or the PostgreSQL URL without its password. */
export const storeLocation = (config: Pick<AppConfig, "databaseUrl" | "dbPath">) =>
  isSet(config.databaseUrl) ? maskSecret(config.databaseUrl) : config.dbPath

/** Whether a secret setting was given (an empty value means unset). */
export const isSet = (secret: Redacted.Redacted<string>): boolean => Redacted.value(secret) !== ""

/** The configuration as shown to a person or a script: secrets masked. */
export const describeConfig = (resolved: ResolvedConfig) =>
  CONFIG_KEYS.map((key) => {
    const value = resolved.config[key]
    const shown = Redacted.isRedacted(value)
      ? maskSecret(value as Redacted.Redacted<string>)
      : SETTINGS[key].secret === true
        ? maskSecret(String(value))
        : value
    return {
      key,
      env: SETTINGS[key].env[0] ?? "",
      value: shown,
      source: resolved.origins[key].source,
      from: resolved.origins[key].name
    }
  })

/** The nested JSON shape the original `autotune init` wrote, so files stay interchangeable. */
export const toConfigFile = (
  config: AppConfig,
  skip: (key: ConfigKey) => boolean = () => false
): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of CONFIG_KEYS) {
    const file = SETTINGS[key].file
    if (file === undefined || skip(key)) continue
    let node = out
    for (const segment of file.slice(0, -1)) {
      node = (node[segment] ??= {}) as Record<string, unknown>
    }
    // The file holds the secret itself (0600): it is where the operator keeps it.
    const value = config[key]
    node[file[file.length - 1]!] = Redacted.isRedacted(value) ? Redacted.value(value) : value
  }
  return out
}

// ---------------------------------------------------------------------------
// The service every stage reads its settings from.
// ---------------------------------------------------------------------------

export class Settings extends Context.Tag("autotune/Settings")<Settings, ResolvedConfig>() {}

export const loadSettings = (input: ConfigInput = {}): Effect.Effect<ResolvedConfig, ConfigError> =>
  Effect.suspend(() => Either.match(resolveConfig(input), { onLeft: Effect.fail, onRight: Effect.succeed }))

export const SettingsLive = (input: ConfigInput = {}) => Layer.effect(Settings, loadSettings(input))

/** Settings for tests and embedding: defaults, then the given overrides, validated like any other source. */
export const settingsFrom = (overrides: Partial<Record<ConfigKey, unknown>>, home = "/nonexistent-autotune-home") =>
  Layer.effect(
    Settings,
    loadSettings({
      // No config file: a home with none, and no path named (a named file that is missing is an error).
      env: { AUTOTUNE_HOME: home },
      flags: {}
    }).pipe(
      Effect.flatMap((base) => {
        const merged: Record<string, unknown> = { ...base.config }
        for (const key of Object.keys(overrides) as Array<ConfigKey>) {
          const checked = validate(key, overrides[key], { source: "flag", name: key })
          if (Either.isLeft(checked)) return Effect.fail(checked.left)
          merged[key] = checked.right
        }
        return Effect.succeed({ ...base, config: merged as AppConfig, warnings: [], notes: [] })
      })
    )
  )

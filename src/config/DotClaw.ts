/**
 * Finding DotClaw on this machine (docs/dotclaw-formats.md §4-5). Current DotClaw keeps everything under
 * DOTCLAW_HOME (default ~/.dotclaw): traces/, prompts/, config/runtime.json, config/behavior.json, data/ and
 * data/store/messages.db. The 1.1 layout under ~/.config/dotclaw stays autotune's default for existing users.
 * Pure file reads, no effects: the configuration loader calls it once per resolution.
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface DotClawValue {
  readonly value: unknown
  /** Where a person finds it: the runtime.json key, or the layout rule. */
  readonly from: string
}

export interface Discovery {
  /** The current DotClaw home found, if any. */
  readonly dotclawHome: string | undefined
  /** Default for AUTOTUNE_HOME when it is not set: where autotune's own config and store live. */
  readonly autotuneHome: string
  /** Values DotClaw's own layout and runtime.json give, keyed by autotune setting. */
  readonly values: Readonly<Record<string, DotClawValue>>
  /** Lines for a person: which layout was picked and why. */
  readonly notes: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

export const expandHome = (p: string) => (p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p)

export const LEGACY_HOME = () => path.join(os.homedir(), ".config", "dotclaw")

const get = (obj: unknown, keys: ReadonlyArray<string>): unknown =>
  keys.reduce<unknown>(
    (cur, key) =>
      cur !== null && typeof cur === "object" && !Array.isArray(cur)
        ? (cur as Record<string, unknown>)[key]
        : undefined,
    obj
  )

/** runtime.json, or why it is ignored. DotClaw falls back to its defaults on a file it cannot parse; so do we. */
const readRuntime = (file: string): { json?: unknown; warning?: string } => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    return (error as { code?: string }).code === "ENOENT"
      ? {}
      : { warning: `cannot read DotClaw's ${file} (${(error as Error).message}); using DotClaw's defaults` }
  }
  try {
    const json = JSON.parse(text) as unknown
    if (json === null || typeof json !== "object" || Array.isArray(json))
      return { warning: `DotClaw's ${file} is not a JSON object; ignored, as DotClaw does, and its defaults used` }
    return { json }
  } catch (error) {
    return {
      warning: `DotClaw's ${file} does not parse (${(error as Error).message}); ignored, as DotClaw does, and its defaults used`
    }
  }
}

/** A runtime.json key of the expected type, or a warning; DotClaw ignores overrides of the wrong type too. */
const runtimeValue = (
  json: unknown,
  file: string,
  keys: ReadonlyArray<string>,
  type: "string" | "number",
  warnings: Array<string>
): DotClawValue | undefined => {
  const value = get(json, keys)
  if (value === undefined || value === null) return undefined
  if (typeof value !== type || (type === "string" && value === "")) {
    warnings.push(`DotClaw's ${file}: ${keys.join(".")} is ${JSON.stringify(value)}, not a ${type}; ignored`)
    return undefined
  }
  return { value, from: `${file}: ${keys.join(".")}` }
}

/** The layout values for a DotClaw home: its paths, and what its runtime.json overrides. */
const layoutValues = (home: string, warnings: Array<string>): Record<string, DotClawValue> => {
  const runtimeFile = path.join(home, "config", "runtime.json")
  const runtime = readRuntime(runtimeFile)
  if (runtime.warning !== undefined) warnings.push(runtime.warning)
  const layout = (value: string): DotClawValue => ({ value, from: `DotClaw layout at ${home}` })
  const dir = (v: DotClawValue | undefined, fallback: string): DotClawValue =>
    v === undefined ? layout(fallback) : { ...v, value: path.resolve(home, expandHome(v.value as string)) }
  const values: Record<string, DotClawValue> = {
    traceDir: dir(
      runtimeValue(runtime.json, runtimeFile, ["host", "trace", "dir"], "string", warnings),
      path.join(home, "traces")
    ),
    outputDir: dir(
      runtimeValue(runtime.json, runtimeFile, ["host", "promptPacksDir"], "string", warnings),
      path.join(home, "prompts")
    ),
    behaviorConfigPath: layout(path.join(home, "config", "behavior.json")),
    behaviorReportDir: layout(path.join(home, "data")),
    feedbackDbPath: layout(path.join(home, "data", "store", "messages.db"))
  }
  const canaryRate = runtimeValue(runtime.json, runtimeFile, ["agent", "promptPacks", "canaryRate"], "number", warnings)
  if (canaryRate !== undefined) values["canaryFraction"] = canaryRate
  const maxChars = runtimeValue(runtime.json, runtimeFile, ["agent", "promptPacks", "maxChars"], "number", warnings)
  if (maxChars !== undefined) values["packMaxChars"] = maxChars
  return values
}

/** Whether a store holds any trace (read only, never created); false when there is none or it cannot be read. */
const storeHoldsTraces = (file: string): boolean => {
  if (!fs.existsSync(file)) return false
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true })
    try {
      return db.prepare("SELECT 1 FROM traces LIMIT 1").get() !== undefined
    } finally {
      db.close()
    }
  } catch {
    return false
  }
}

/**
 * An autotune 1.1 setup in the old layout: a config file a person wrote, or a store with traces in it. The empty
 * store a first run leaves on a machine without DotClaw is neither, so it never decides the layout once DotClaw
 * is installed.
 */
const holdsAutotune = (dir: string) =>
  fs.existsSync(path.join(dir, "autotune.json")) || storeHoldsTraces(path.join(dir, "autotune.db"))

/**
 * Which DotClaw this is. DOTCLAW_HOME when set, else ~/.dotclaw when it exists; else the 1.1 layout. An
 * explicit AUTOTUNE_HOME keeps the 1.1 layout rooted there (existing setups change in nothing) unless
 * DOTCLAW_HOME is set as well.
 */
export const discover = (
  env: Readonly<Record<string, string | undefined>>,
  explicitAutotuneHome: boolean
): Discovery => {
  const legacy = LEGACY_HOME()
  const fromEnv = env["DOTCLAW_HOME"]
  const candidate =
    fromEnv !== undefined && fromEnv !== "" ? path.resolve(expandHome(fromEnv)) : path.join(os.homedir(), ".dotclaw")
  const found =
    (fromEnv !== undefined && fromEnv !== "") || (!explicitAutotuneHome && fs.existsSync(candidate))
      ? candidate
      : undefined
  if (found === undefined) return { dotclawHome: undefined, autotuneHome: legacy, values: {}, notes: [], warnings: [] }
  const warnings: Array<string> = []
  const values = layoutValues(found, warnings)
  const notes: Array<string> = []
  // An existing 1.1 user keeps their store and config file; DotClaw's paths come from where it runs now.
  const keepLegacy = !explicitAutotuneHome && found !== legacy && holdsAutotune(legacy)
  if (!explicitAutotuneHome && found !== legacy && fs.existsSync(legacy)) {
    notes.push(
      `DotClaw found at ${found} (current layout) and ${legacy} (1.1 layout): traces, packs and behavior.json follow ${found}, ` +
        `where DotClaw ${fromEnv ? "runs (DOTCLAW_HOME)" : "runs now"}` +
        (keepLegacy ? `; autotune's own config and store stay in ${legacy}` : "")
    )
  }
  if (!explicitAutotuneHome && found !== legacy && !keepLegacy && fs.existsSync(path.join(legacy, "autotune.db"))) {
    notes.push(
      `the store at ${path.join(legacy, "autotune.db")} holds no traces (a run made it before DotClaw was found): it is ignored, autotune's home is now ${found}`
    )
  }
  return { dotclawHome: found, autotuneHome: keepLegacy ? legacy : found, values, notes, warnings }
}

/**
 * `autotune config`: the resolved configuration and where each value came from.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { describeConfig, loadSettings } from "../config/Config.js"
import { printJson, printLine, shown, table } from "./Output.js"
import { common, configInput } from "./Common.js"

export const configCommand = Command.make("config", common, (opts) =>
  Effect.gen(function* () {
    const resolved = yield* loadSettings(configInput(opts))
    for (const note of resolved.notes) yield* Effect.logInfo(note)
    for (const warning of resolved.warnings) yield* Effect.logWarning(warning)
    const rows = describeConfig(resolved)
    if (opts.json) {
      return yield* printJson({
        configPath: resolved.configPath ?? null,
        dotclawHome: resolved.dotclawHome ?? null,
        settings: Object.fromEntries(
          rows.map((r) => [r.key, { value: r.value, source: r.source, from: r.from, env: r.env }])
        )
      })
    }
    yield* printLine(`config file: ${shown(resolved.configPath ?? "(none)")}`)
    yield* printLine(
      `DotClaw: ${resolved.dotclawHome === undefined ? "no current install found (1.1 layout)" : shown(resolved.dotclawHome)}`
    )
    yield* printLine(
      table(
        ["KEY", "VALUE", "SOURCE", "ENV"],
        rows.map((r) => [
          r.key,
          Array.isArray(r.value) ? r.value.join(",") : String(r.value),
          r.source === "file" || r.source === "flag" || r.source === "dotclaw" ? `${r.source} (${r.from})` : r.source,
          r.env
        ])
      )
    )
  })
).pipe(Command.withDescription("Print the resolved configuration and where each value came from (secrets masked)"))

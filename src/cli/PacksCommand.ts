/**
 * `autotune packs`: the deployment history, and a version's word diff.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { printJson, printLine, shown, table } from "./Output.js"
import { Deployer } from "../canary/Deployer.js"
import { packDiff } from "../report/Packs.js"
import { behaviorArg, common, withApp } from "./Common.js"
import { diffText } from "./Text.js"

/** Where a pack came from, in a few words: the optimizer's chain of candidates from its baseline, or its source. */
export const lineageText = (lineage: Readonly<Record<string, unknown>> | null) => {
  const words = (v: unknown) => (Array.isArray(v) ? v.map(String) : undefined)
  const ancestry = words(lineage?.["ancestry"])
  const parents = words(lineage?.["parents"])
  if (ancestry !== undefined)
    return `${ancestry.join(" > ")}${(parents?.length ?? 0) > 1 ? ` (merged with ${parents![1]})` : ""}, round ${String(lineage?.["round"])}`
  return typeof lineage?.["source"] === "string" ? lineage["source"] : "-"
}

export const packsCommand = Command.make(
  "packs",
  {
    ...common,
    behavior: Args.optional(behaviorArg),
    diff: Options.text("diff").pipe(
      Options.withDescription("Show this version's word diff against the instructions it replaced"),
      Options.optional
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        if (Option.isSome(opts.diff)) {
          const d = yield* packDiff(opts.diff.value)
          return yield* opts.json
            ? printJson(d)
            : printLine(
                `${shown(d.version)} (${d.behavior}, ${d.status}) against ${shown(d.against)}:\n${diffText(d.diff)}`
              )
        }
        const rows = yield* (yield* Deployer).history(Option.getOrUndefined(opts.behavior))
        if (opts.json) return yield* printJson({ history: rows })
        yield* printLine(
          rows.length === 0
            ? "no pack history yet"
            : table(
                ["WHEN", "BEHAVIOR", "VERSION", "ACTION", "STATUS", "LINEAGE"],
                rows.map((r) => [
                  new Date(r.createdAt).toISOString().slice(0, 19) + "Z",
                  r.behavior,
                  r.version,
                  r.action,
                  r.status ?? "-",
                  lineageText(r.lineage)
                ])
              )
        )
      })
    )
).pipe(Command.withDescription("The deployment history of prompt packs (newest first)"))

/**
 * `autotune redact --rescan`: the current redaction rules over everything stored.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { Settings } from "../config/Config.js"
import { ConfigError } from "../Domain/Errors.js"
import { makeProgress } from "../pipeline/Progress.js"
import { printJson, printLine, table } from "./Output.js"
import { rescan, type RescanSummary } from "../ingest/Rescan.js"
import { lockPath, withRunLock } from "../store/RunLock.js"
import { common, withApp } from "./Common.js"

export const rescanText = (s: RescanSummary) => {
  const rows = Object.entries(s.tables).map(([t, r]) => [t, String(r.scanned), String(r.changed), String(r.replaced)])
  const rules = Object.entries(s.byRule)
    .map(([rule, n]) => `${rule} ${n}`)
    .join(", ")
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`
  return (
    table(["TABLE", "ROWS SCANNED", "ROWS CHANGED", "VALUES REPLACED"], rows) +
    `\nredact: store cleaned with rule set v${s.toVersion}` +
    (rules === "" ? "; nothing to replace" : `; replaced: ${rules}`) +
    (s.vacuumed ? `; WAL checkpointed and file vacuumed (${mb(s.bytesBefore)} -> ${mb(s.bytesAfter)})` : "")
  )
}

export const redactCommand = Command.make(
  "redact",
  {
    ...common,
    rescan: Options.boolean("rescan").pipe(
      Options.withDescription("Re-apply the current rules to everything stored, then vacuum")
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        if (!opts.rescan)
          return yield* Effect.fail(
            new ConfigError({
              key: "--rescan",
              source: "flag",
              detail: "redact needs --rescan (re-apply the current rules to everything stored, then vacuum)"
            })
          )
        const { config } = yield* Settings
        const progress = makeProgress("redact")
        const summary = yield* withRunLock(
          lockPath(config.dbPath),
          rescan({
            includeUnredacted: true,
            onProgress: (done, total) => progress.update(done, total, `${done}/${total} rows`)
          }),
          "30 seconds"
        ).pipe(Effect.ensuring(Effect.sync(progress.done)))
        yield* opts.json ? printJson(summary) : printLine(rescanText(summary))
      })
    )
).pipe(
  Command.withDescription(
    "Clean the store: re-apply the current redaction rules to all stored text, checkpoint the WAL and vacuum"
  )
)

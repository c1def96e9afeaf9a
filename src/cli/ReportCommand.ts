/**
 * `autotune report`: the self-contained HTML page.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { Settings } from "../config/Config.js"
import { ConfigError } from "../Domain/Errors.js"
import { printJson, printLine } from "./Output.js"
import { writeReport } from "../report/Report.js"
import { common, withApp } from "./Common.js"

export const reportCommand = Command.make(
  "report",
  {
    ...common,
    out: Options.file("out").pipe(
      Options.optional,
      Options.withDescription("Where to write the page (default AUTOTUNE_REPORT_PATH, $AUTOTUNE_HOME/report.html)")
    ),
    days: Options.integer("days").pipe(
      Options.optional,
      Options.withDescription("Days the page covers (default AUTOTUNE_REPORT_DAYS, 30)")
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const { config } = yield* Settings
        const days = Option.getOrElse(opts.days, () => config.reportDays)
        if (days < 1 || days > 3650)
          return yield* Effect.fail(
            new ConfigError({
              key: "--days",
              source: "flag",
              detail: `must be a whole number of days from 1 to 3650, got ${days}`
            })
          )
        const written = yield* writeReport(
          Option.getOrElse(opts.out, () => config.reportPath),
          days
        )
        yield* opts.json
          ? printJson(written)
          : printLine(
              `report: ${written.path} (${(written.bytes / 1024).toFixed(0)} KB, ${written.behaviors.length} behaviors, last ${days} days)`
            )
      })
    )
).pipe(
  Command.withDescription(
    "Write one self-contained HTML page (charts included, no network needed): scores, canaries, optimizer runs, spend, judge health"
  )
)

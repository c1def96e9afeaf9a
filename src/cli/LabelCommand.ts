/**
 * `autotune label`: a person's grades of judged turns (the session itself is Label.ts).
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { Settings } from "../config/Config.js"
import { FileError } from "../Domain/Errors.js"
import { printJson, printLine } from "./Output.js"
import { exportTurns, importGrades, labelSession } from "./Label.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { behaviorArg, common, withApp } from "./Common.js"
import { agreementLines } from "./Text.js"

export const labelCommand = Command.make(
  "label",
  {
    ...common,
    behavior: Args.optional(behaviorArg),
    importFile: Options.file("import").pipe(
      Options.withDescription("Store the grades (1-5) of a JSONL file made by --export"),
      Options.optional
    ),
    exportFile: Options.text("export").pipe(
      Options.withDescription("Write the judged turns to grade as JSONL (mode 0600), graded ones included"),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(
      Options.withDescription("Turns per behavior in --export"),
      Options.withDefault(200)
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const { config } = yield* Settings
        const behaviors = Option.match(opts.behavior, { onNone: () => config.behaviors, onSome: (b) => [b] })
        if (Option.isSome(opts.importFile)) {
          const r = yield* importGrades(opts.importFile.value)
          for (const line of r.refused) yield* Effect.logWarning(`${r.file} ${line}`)
          yield* opts.json
            ? printJson(r)
            : printLine(
                `imported ${r.imported} grade(s) from ${r.file}; ${r.ungraded} line(s) without a grade skipped; ${r.refused.length} refused`
              )
          if (r.refused.length > 0)
            return yield* new FileError({
              path: r.file,
              operation: "import every line of",
              detail: `${r.refused.length} line(s) refused (each named above); the other grades are stored`
            })
          return
        }
        if (Option.isSome(opts.exportFile)) {
          const r = yield* exportTurns(behaviors, opts.exportFile.value, opts.limit)
          return yield* opts.json
            ? printJson(r)
            : printLine(
                `wrote ${r.turns} judged turn(s) (${r.graded} graded) to ${r.file}; set "grade" to 1-5 and run autotune label --import ${r.file}`
              )
        }
        const stored = yield* labelSession(behaviors)
        const agreements = yield* (yield* JudgeAgreement).labelAgreements()
        yield* opts.json
          ? printJson({ stored, agreement: agreements })
          : printLine(
              `stored ${Object.values(stored).reduce((a, b) => a + b, 0)} grade(s)${agreementLines({}, agreements)}`
            )
      })
    )
).pipe(
  Command.withDescription(
    "Grade judged turns 1-5 in the terminal (most useful first), or --export/--import them, so the judge is measured against you"
  )
)

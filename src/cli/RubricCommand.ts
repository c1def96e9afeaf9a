/**
 * `autotune rubric show|rollback|approve|reject`: the judge's rubrics and their versions.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { Settings } from "../config/Config.js"
import { printJson, printLine } from "./Output.js"
import { asLeader } from "../pipeline/Pipeline.js"
import { Rubrics } from "../judge/RubricBook.js"
import { wordDiff } from "../report/Diff.js"
import { behaviorArg, common, withApp } from "./Common.js"
import { diffText } from "./Text.js"

export const rubricShowCommand = Command.make(
  "show",
  {
    ...common,
    behavior: Args.optional(behaviorArg),
    diff: Options.boolean("diff").pipe(
      Options.withDescription("Show each version as a word diff against the one before it")
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const book = yield* Rubrics
        const { config } = yield* Settings
        const behaviors = Option.match(opts.behavior, { onNone: () => config.behaviors, onSome: (b) => [b] })
        const shown = behaviors.map((b) => {
          const history = book.history(b)
          return {
            behavior: b,
            current: book.current[b].version,
            versions: history.map((v, i) => ({
              ...v,
              createdAt: v.createdAt === null ? null : new Date(v.createdAt).toISOString(),
              ...(opts.diff && i > 0 ? { diff: wordDiff(history[i - 1]!.criteria, v.criteria) } : {})
            }))
          }
        })
        if (opts.json) return yield* printJson({ rubrics: shown })
        const text = shown.map((r) => {
          const lines = r.versions.map(
            (v) =>
              `  ${v.version} (${v.source}, ${v.status}${v.createdAt === null ? "" : `, ${v.createdAt.slice(0, 19)}Z`})` +
              ("diff" in v && v.diff !== undefined ? `\n    ${diffText(v.diff)}` : "")
          )
          const current = book.current[r.behavior]
          return `${r.behavior}: ${current.version}\n  "${current.criteria}"\n versions, oldest first:\n${lines.join("\n")}`
        })
        yield* printLine(text.join("\n\n"))
      })
    )
).pipe(
  Command.withDescription("The judge's rubric of each behavior and its versions (--diff: what each version changed)")
)

export const rubricRollbackCommand = Command.make("rollback", { ...common, behavior: behaviorArg }, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const r = yield* asLeader((yield* Rubrics).rollback(opts.behavior))
      yield* opts.json
        ? printJson(r)
        : printLine(
            `${r.behavior}: the judge uses ${r.to} again (${r.from} rolled back); turns are judged again under it as decisions need them`
          )
    })
  )
).pipe(Command.withDescription("Go back to the previous version of a behavior's rubric"))

/** The operator's word on a rubric alignment adopted under AUTOTUNE_DEPLOY_APPROVAL=manual. */
export const rubricDecideCommand = (name: "approve" | "reject") =>
  Command.make(name, { ...common, behavior: behaviorArg }, (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const r = yield* asLeader((yield* Rubrics).decidePending(opts.behavior, name === "approve"))
        yield* opts.json
          ? printJson(r)
          : printLine(
              r.approved
                ? `${r.behavior}: the judge uses ${r.version} from the next run`
                : `${r.behavior}: ${r.version} rejected; the current rubric stays`
            )
      })
    )
  ).pipe(
    Command.withDescription(
      name === "approve"
        ? "Make the rubric alignment adopted (and that waits for you) the judge's rubric"
        : "Refuse the rubric alignment adopted; the current one stays"
    )
  )

export const rubricCommand = Command.make("rubric").pipe(
  Command.withDescription(
    "The judge's rubrics as data: show their versions, roll one back, approve or reject an aligned one"
  ),
  Command.withSubcommands([
    rubricShowCommand,
    rubricRollbackCommand,
    rubricDecideCommand("approve"),
    rubricDecideCommand("reject")
  ])
)

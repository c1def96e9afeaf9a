/**
 * `autotune approve` / `autotune reject`: a person's word on a selection under manual approval.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { printJson, printLine } from "./Output.js"
import { asLeader } from "../pipeline/Pipeline.js"
import { approve, reject } from "../pipeline/Approval.js"
import { behaviorArg, common, withApp } from "./Common.js"

export const approveCommand = Command.make("approve", { ...common, behavior: behaviorArg }, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const result = yield* asLeader(approve(opts.behavior))
      yield* opts.json
        ? printJson(result)
        : printLine(`${opts.behavior}: ${result.approved} approved, out as ${result.as}`)
    })
  )
).pipe(
  Command.withDescription(
    "Ship the pack optimize selected for a behavior as a canary (AUTOTUNE_DEPLOY_APPROVAL=manual)"
  )
)

export const rejectCommand = Command.make(
  "reject",
  {
    ...common,
    behavior: behaviorArg,
    reason: Options.text("reason").pipe(Options.withDescription("Why, for the record"), Options.optional)
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const result = yield* asLeader(reject(opts.behavior, Option.getOrUndefined(opts.reason)))
        yield* opts.json
          ? printJson(result)
          : printLine(
              `${opts.behavior}: ${result.rejected} rejected; neither it nor a change adding the same sentences is proposed again`
            )
      })
    )
).pipe(Command.withDescription("Discard the pack optimize selected for a behavior, for good"))

/**
 * `autotune rollback`: removes a canary or restores an earlier active pack.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { printJson, printLine } from "./Output.js"
import { Deployer } from "../canary/Deployer.js"
import { asLeader } from "../pipeline/Pipeline.js"
import { behaviorArg, common, withApp } from "./Common.js"

export const rollbackCommand = Command.make(
  "rollback",
  {
    ...common,
    behavior: behaviorArg,
    to: Options.text("to").pipe(
      Options.withDescription("Restore this earlier version as the active pack"),
      Options.optional
    )
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const deployer = yield* Deployer
        const result = yield* asLeader(deployer.rollback(opts.behavior, Option.getOrUndefined(opts.to)))
        yield* opts.json
          ? printJson({ behavior: opts.behavior, ...result })
          : printLine(
              "restored" in result
                ? `${opts.behavior}: ${result.restored} restored as the active pack`
                : `${opts.behavior}: canary ${result.removedCanary} removed`
            )
      })
    )
).pipe(Command.withDescription("Remove a behavior's canary, or restore an earlier version with --to VERSION"))

#!/usr/bin/env -S node --max-old-space-size=256
/**
 * The `autotune` executable: the CLI (cli/Cli.ts) run on the process's arguments.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { cli, reportCause } from "./cli/Cli.js"
import { LoggingLive, PlainConsoleLive } from "./cli/Output.js"

cli(process.argv).pipe(
  Effect.catchAllCause(reportCause),
  Effect.provide(NodeContext.layer),
  Effect.provide(LoggingLive()),
  Effect.provide(PlainConsoleLive),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)

#!/usr/bin/env -S node --max-old-space-size=256
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { cli, reportFailure } from "./cli/Cli.js"
import { LoggingLive } from "./cli/Output.js"

cli(process.argv).pipe(Effect.catchAll(reportFailure), Effect.provide(NodeContext.layer), Effect.provide(LoggingLive()), NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true }))

#!/usr/bin/env node
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { cli, reportFailure } from "./Cli.js"
import { LoggingLive } from "./Output.js"

cli(process.argv).pipe(Effect.catchAll(reportFailure), Effect.provide(NodeContext.layer), Effect.provide(LoggingLive()), NodeRuntime.runMain({ disableErrorReporting: true }))

/**
 * `autotune daemon`: `once` every interval, with metrics and health when asked.
 */
import { Command } from "@effect/cli"
import { observedDaemon } from "../observe/Observe.js"
import { VERSION } from "../Domain/Version.js"
import { common, configInput } from "./Common.js"

export const daemonCommand = Command.make("daemon", common, (opts) => observedDaemon(configInput(opts), VERSION)).pipe(
  Command.withDescription(
    "Run `once` every AUTOTUNE_INTERVAL_MINUTES until SIGTERM/SIGINT; re-reads the config each cycle; --metrics-port serves /metrics, /livez, /healthz"
  )
)

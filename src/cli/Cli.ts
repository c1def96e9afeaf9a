/**
 * The command line: every command under `autotune`, and how a failure is said (one line, the exit code).
 */
import { Command, ValidationError } from "@effect/cli"
import { Cause, Effect, Option } from "effect"
import { ConfigError, LlmStopped } from "../Domain/Errors.js"
import { stdoutWritten } from "./Output.js"
import { VERSION } from "../Domain/Version.js"
import { acceptStoreCommand } from "./AcceptStoreCommand.js"
import { approveCommand, rejectCommand } from "./ApprovalCommands.js"
import { behaviorCommand } from "./BehaviorCommand.js"
import { common } from "./Common.js"
import { configCommand } from "./ConfigCommand.js"
import { daemonCommand } from "./DaemonCommand.js"
import { deployCommand } from "./DeployCommand.js"
import { evalCommand } from "./EvalCommand.js"
import { ingestCommand } from "./IngestCommand.js"
import { initCommand } from "./InitCommand.js"
import { labelCommand } from "./LabelCommand.js"
import { onceCommand, onceHandler } from "./OnceCommand.js"
import { optimizeCommand } from "./OptimizeCommand.js"
import { packsCommand } from "./PacksCommand.js"
import { redactCommand } from "./RedactCommand.js"
import { reportCommand } from "./ReportCommand.js"
import { rollbackCommand } from "./RollbackCommand.js"
import { rubricCommand } from "./RubricCommand.js"
import { statusCommand } from "./StatusCommand.js"

const root = Command.make("autotune", common, onceHandler).pipe(
  Command.withDescription("Self-improvement loop for DotClaw agents. With no command: `once`."),
  Command.withSubcommands([initCommand, ingestCommand, evalCommand, optimizeCommand, deployCommand, approveCommand, rejectCommand, behaviorCommand, onceCommand, daemonCommand, rollbackCommand, packsCommand, labelCommand, rubricCommand, statusCommand, reportCommand, redactCommand, configCommand, acceptStoreCommand])
)

export const cli = Command.run(root, { name: "autotune", version: VERSION })

/** Exit codes: 2 for configuration and usage errors, 1 for any other failure. */
export const exitCodeFor = (error: unknown): number =>
  error instanceof ConfigError || ValidationError.isValidationError(error) || (error instanceof LlmStopped && error.kind === "config") ? 2 : 1

const errorJson = (error: unknown) => {
  const tagged = error as { _tag?: unknown; message?: unknown }
  const fields = typeof error === "object" && error !== null ? Object.fromEntries(Object.entries(error).filter(([k]) => k !== "stack" && k !== "_tag")) : {}
  return { error: { ...fields, tag: typeof tagged._tag === "string" ? tagged._tag : "Error", message: error instanceof Error ? error.message : String(error) } }
}

/**
 * One clear line per error on stderr, never a stack, for failures and crashes alike; with --json also
 * `{"error": {...}}` on stdout when the command printed nothing there yet. The exit code says what kind of
 * failure it was. An interruption (SIGTERM, SIGINT) is a clean stop, not an error.
 */
export const reportCause = (cause: Cause.Cause<unknown>) =>
  Effect.sync(() => {
    if (Cause.isInterruptedOnly(cause)) return
    const failure = Cause.failureOption(cause)
    const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
    // @effect/cli has printed usage errors itself already.
    if (!ValidationError.isValidationError(error)) {
      const message = error instanceof Error ? error.message : String(error)
      const crashed = Option.isNone(failure) ? "unexpected failure: " : ""
      process.stderr.write(`autotune: error: ${crashed}${message.split("\n")[0]}\n`)
      if (process.argv.includes("--json") && !stdoutWritten()) process.stdout.write(JSON.stringify(errorJson(error)) + "\n")
    }
    process.exitCode = exitCodeFor(error)
  })

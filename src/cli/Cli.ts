/**
 * The command line: every command under `autotune`, and how a failure is said (one line, the exit code).
 */
import { Command, HelpDoc, ValidationError } from "@effect/cli"
import { Cause, Effect, Option } from "effect"
import { ConfigError, LlmStopped, UsageError } from "../Domain/Errors.js"
import { colourAllowed, stdoutWritten } from "./Output.js"
import { prepareArgv } from "./Argv.js"
import { VERSION } from "../Domain/Version.js"
import { acceptStoreCommand } from "./AcceptStoreCommand.js"
import { approveCommand, rejectCommand } from "./ApprovalCommands.js"
import { behaviorCommand } from "./BehaviorCommand.js"
import { common, setGivenFlags } from "./Common.js"
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
  Command.withSubcommands([
    initCommand,
    ingestCommand,
    evalCommand,
    optimizeCommand,
    deployCommand,
    approveCommand,
    rejectCommand,
    behaviorCommand,
    onceCommand,
    daemonCommand,
    rollbackCommand,
    packsCommand,
    labelCommand,
    rubricCommand,
    statusCommand,
    reportCommand,
    redactCommand,
    configCommand,
    acceptStoreCommand
  ])
)

/** Help on stdout; its headings bold on a terminal that wants colour (never in a pipe, nor under NO_COLOR). */
const printHelp = (text: string) =>
  Effect.sync(() => {
    const bold = colourAllowed(process.stdout)
    process.stdout.write(
      (bold
        ? text
            .replace(/^([A-Z][A-Z ()-]+|USAGE)$/gm, "\x1b[1m$1\x1b[0m")
            .replace(/^(OPTIONS \(.*\))$/gm, "\x1b[1m$1\x1b[0m")
        : text) + "\n"
    )
  })

const run = Command.run(root, { name: "autotune", version: VERSION })

/**
 * The command line (`process.argv`): read by Argv.ts first, so that a global option before the command, a typo or a
 * value of the wrong type is never ignored; then parsed and run by @effect/cli.
 */
export const cli = (argv: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const prepared = prepareArgv(argv.slice(2))
    if (prepared.help !== undefined) return printHelp(prepared.help)
    setGivenFlags(prepared.flags)
    return run([argv[0] ?? "node", argv[1] ?? "autotune", ...prepared.argv])
  }).pipe(Effect.catchAllDefect((defect) => (defect instanceof UsageError ? Effect.fail(defect) : Effect.die(defect))))

/** Exit codes: 2 for configuration and usage errors, 1 for any other failure. */
export const exitCodeFor = (error: unknown): number =>
  error instanceof ConfigError ||
  error instanceof UsageError ||
  ValidationError.isValidationError(error) ||
  (error instanceof LlmStopped && error.kind === "config")
    ? 2
    : 1

/** @effect/cli's own usage errors (a file that must exist, …) as one line. */
const usageLine = (error: ValidationError.ValidationError): string =>
  HelpDoc.toAnsiText(error.error)
    .replace(/\x1b\[[0-9;]*m/g, "")
    .replace(/\s+/g, " ")
    .trim()

const errorJson = (error: unknown) => {
  const tagged = error as { _tag?: unknown; message?: unknown }
  const fields =
    typeof error === "object" && error !== null
      ? Object.fromEntries(Object.entries(error).filter(([k]) => k !== "stack" && k !== "_tag"))
      : {}
  return {
    error: {
      ...fields,
      tag: typeof tagged._tag === "string" ? tagged._tag : "Error",
      message: error instanceof Error ? error.message : String(error)
    }
  }
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
    // @effect/cli's own text for a usage error is not printed (PlainConsoleLive): it is said here, as one line.
    const message = ValidationError.isValidationError(error)
      ? usageLine(error)
      : error instanceof Error
        ? error.message
        : String(error)
    const crashed = Option.isNone(failure) ? "unexpected failure: " : ""
    process.stderr.write(`autotune: error: ${crashed}${message.split("\n")[0]}\n`)
    if (process.argv.includes("--json") && !stdoutWritten()) {
      process.stdout.write(
        JSON.stringify(
          ValidationError.isValidationError(error) ? { error: { tag: "UsageError", message } } : errorJson(error)
        ) + "\n"
      )
    }
    process.exitCode = exitCodeFor(error)
  })

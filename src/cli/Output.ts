/**
 * Where things go: stdout carries the command's result (a summary, or exactly one JSON object with
 * --json); stderr carries logs and progress. Logs are human lines on a TTY and one JSON object per
 * line otherwise, which is what journald and log shippers want.
 */
import { Cause, Console, Effect, HashMap, Inspectable, Layer, List, Logger, LogLevel } from "effect"

// journald and log shippers get JSON whenever the output is not a terminal.
const stdoutIsTty = () => process.stdout.isTTY === true

/**
 * A value from a file or the store as the terminal should show it: control characters (C0, DEL, C1), line and
 * paragraph separators and the bidirectional overrides are shown as escapes, never obeyed. A pack's version that
 * holds a newline would otherwise forge a line of `status`; an escape sequence could rewrite the screen.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }
const escapeChar = (c: string) =>
  NAMED[c] ??
  (c.charCodeAt(0) <= 0xff
    ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`
    : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
export const shown = (value: string): string => value.replace(CONTROL, escapeChar)
/** Text the command composed itself (its own newlines and tabs kept), with every other control character shown. */
export const shownLines = (text: string): string => text.replace(CONTROL_BUT_LINES, escapeChar)

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return shown(parts.map((p) => (typeof p === "string" ? p : Inspectable.toStringUnknown(p))).join(" "))
}

const annotationsOf = (annotations: HashMap.HashMap<string, unknown>) =>
  Object.fromEntries(HashMap.toEntries(annotations))

export const humanLogger = Logger.make(({ logLevel, message, cause, annotations }) => {
  const extra = annotationsOf(annotations)
  const tail =
    Object.keys(extra).length > 0
      ? " " +
        Object.entries(extra)
          .map(([k, v]) => `${k}=${shown(Inspectable.toStringUnknown(v))}`)
          .join(" ")
      : ""
  const level = logLevel._tag === "Info" ? "" : `${logLevel.label.toLowerCase()}: `
  const causeText = Cause.isEmpty(cause) ? "" : ` (${shown(Cause.pretty(cause).split("\n")[0] ?? "")})`
  process.stderr.write(`autotune: ${level}${messageText(message)}${tail}${causeText}\n`)
})

export const jsonLogger = Logger.make(({ logLevel, message, cause, annotations, date, spans }) => {
  const entry: Record<string, unknown> = {
    time: date.toISOString(),
    level: logLevel.label.toLowerCase(),
    msg: messageText(message),
    ...annotationsOf(annotations)
  }
  if (!Cause.isEmpty(cause)) entry["cause"] = Cause.pretty(cause).split("\n")[0]
  const span = List.head(spans)
  if (span._tag === "Some") entry["span"] = span.value.label
  process.stderr.write(JSON.stringify(entry) + "\n")
})

/** The logger for the CLI and daemon; AUTOTUNE_LOG_LEVEL=debug shows more. */
export const LoggingLive = (level?: string) =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, stdoutIsTty() ? humanLogger : jsonLogger),
    Logger.minimumLogLevel(
      LogLevel.allLevels.find(
        (l) => l.label.toLowerCase() === (level ?? process.env["AUTOTUNE_LOG_LEVEL"] ?? "info").toLowerCase()
      ) ?? LogLevel.Info
    )
  )

let wroteStdout = false
/** Whether the command printed its result already: an error then goes to stderr only (one JSON object on stdout). */
export const stdoutWritten = () => wroteStdout

/** Prints the result of a command on stdout; no escape sequence in it reaches the terminal (see `shown`). */
export const printLine = (line: string) =>
  Effect.sync(() => {
    wroteStdout = true
    process.stdout.write(shownLines(line) + "\n")
  })
export const printJson = (value: unknown) => printLine(JSON.stringify(value))

/** Right-pads cells into a plain text table. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  // A cell is one value: a newline in it is shown, never a new row.
  const safe = rows.map((r) => r.map(shown))
  const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd()
  return [line(header), ...safe.map(line)].join("\n")
}

/** Dollars as a person reads them; an unknown cost (a model without a price) says so, never "$0". */
export const usd = (value: number | null, digits = 4) => (value === null ? "unknown" : `$${value.toFixed(digits)}`)

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g
/** No colour codes in a file, a pipe or journald, nor when NO_COLOR is set (https://no-color.org). */
export const colourAllowed = (stream: { readonly isTTY?: boolean }) =>
  stream.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

const plainArgs = (stream: { readonly isTTY?: boolean }, args: ReadonlyArray<unknown>) =>
  colourAllowed(stream) ? args : args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a))

/** The Console @effect/cli prints help and usage errors through, without ANSI codes where colour is not wanted. */
export const PlainConsoleLive = Layer.unwrapEffect(
  Console.consoleWith((base) =>
    Effect.succeed(
      Console.setConsole({
        ...base,
        log: (...args: ReadonlyArray<unknown>) => base.log(...plainArgs(process.stdout, args)),
        // @effect/cli prints a usage error's help text here; the CLI says it as one line instead (cli/Cli.ts).
        error: () => Effect.void,
        unsafe: {
          ...base.unsafe,
          log: (...args: ReadonlyArray<unknown>) => base.unsafe.log(...plainArgs(process.stdout, args)),
          error: () => undefined
        }
      })
    )
  )
)

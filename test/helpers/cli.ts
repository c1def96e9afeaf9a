import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const BIN = path.resolve("dist/bin.js")

/**
 * The clock of `npm test`'s second run (test/shiftedClock.sh: Debian's faketime, an LD_PRELOAD library and its
 * FAKETIME settings), for processes a test starts with a clean environment: the CLI must see the test's time.
 * Empty when the clock is not shifted.
 */
export const clockEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[1] !== undefined && (e[0] === "LD_PRELOAD" || e[0].startsWith("FAKETIME"))
    )
  )

const FAKETIME_LIBS = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/faketime/libfaketime.so.1"
]

/**
 * The environment that starts a process at `at` (ms epoch; its clock runs on from there) through Debian's
 * faketime library, whatever clock the test itself runs at: for tests that move the CLI through days.
 */
export const clockAt = (at: number): Record<string, string> => {
  const lib = FAKETIME_LIBS.find((l) => fs.existsSync(l))
  if (lib === undefined) throw new Error("Debian's faketime library is missing: apt-get install faketime")
  return { LD_PRELOAD: lib, FAKETIME: `@${new Date(at).toISOString().slice(0, 19).replace("T", " ")}`, TZ: "UTC" }
}

/** Runs the built CLI with a clean environment: only what the test passes (plus PATH, HOME and the test's clock). */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { input?: string; timeoutMs?: number } = {}
) => startCli(args, env, options).done

/**
 * Starts the built CLI as runCli does and hands back the process too (to signal it); `done` resolves when it exits.
 * The process is tracked: killed after the test if it still runs.
 */
export const startCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { input?: string; timeoutMs?: number } = {}
) => {
  const child = tracked(
    spawn(process.execPath, [BIN, ...args], {
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: env["HOME"] ?? process.env["HOME"] ?? "/tmp",
        ...clockEnv(),
        ...env
      },
      stdio: ["pipe", "pipe", "pipe"]
    })
  )
  const done = new Promise<CliResult>((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.input ?? "")
  })
  return { child, done }
}

/** Sends SIGTERM and resolves with how long the process took to exit, and how it exited. */
export const stopWithin = async (started: ReturnType<typeof startCli>) => {
  const at = Date.now()
  started.child.kill("SIGTERM")
  const result = await started.done
  return { ms: Date.now() - at, ...result }
}

const longRunning = new Set<ChildProcess>()

/**
 * A daemon a test started: killed by `killStrays` after the test if it is still running, so that an expectation
 * that fails before the test stops it does not leave a daemon behind the suite.
 */
export const tracked = <C extends ChildProcess>(child: C): C => {
  longRunning.add(child)
  child.once("exit", () => longRunning.delete(child))
  return child
}

/** For `afterEach`: SIGKILL to every tracked process still running. */
export const killStrays = () => {
  for (const child of longRunning) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  longRunning.clear()
}

/** The one JSON object a --json command printed. */
export const jsonOut = (result: CliResult): Record<string, unknown> => {
  const lines = result.stdout.trim().split("\n")
  if (lines.length !== 1)
    throw new Error(
      `expected exactly one line on stdout, got ${lines.length}:\n${result.stdout}\nstderr:\n${result.stderr}`
    )
  return JSON.parse(lines[0]!) as Record<string, unknown>
}

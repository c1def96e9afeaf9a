import { createHash } from "node:crypto"
import { spawn } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"

export interface Measured {
  readonly seconds: number
  readonly maxRssMb: number
  readonly stdout: string
}

const preload = path.resolve("bench/rss-preload.cjs")

/** Runs a node script as its own process and measures wall time and peak RSS. */
export const measureNode = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Promise<Measured> =>
  measureCommand(process.execPath, args, env)

/**
 * Runs an executable as its own process (a script runs through its shebang, V8 flags included, as a user's
 * shell would run it) and measures wall time and peak RSS.
 */
export const measureCommand = (
  command: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = process.env
): Promise<Measured> =>
  new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const options = `${env["NODE_OPTIONS"] ?? ""} --require ${preload}`.trim()
    const child = spawn(command, args, { env: { ...env, NODE_OPTIONS: options }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const rss = /BENCH_MAXRSS_KB (\d+)/.exec(stderr)
      if (code !== 0) return reject(new Error(`${args.join(" ")} exited ${code}: ${stderr.slice(-2000)}`))
      resolve({ seconds, maxRssMb: rss ? Number(rss[1]) / 1024 : NaN, stdout })
    })
  })

export const machine = () =>
  `${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`

export const arg = (name: string, fallback: number) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.split("=")[1])
}

/** A deterministic uuid v4 per index, so runs are comparable; as random in key order as DotClaw's `trace-<uuid>` ids. */
export const uuidV4 = (n: number) => {
  const h = createHash("sha256").update(String(n)).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[parseInt(h[16]!, 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

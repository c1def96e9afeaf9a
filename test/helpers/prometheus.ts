import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { freePort } from "./postgres.js"

export const until = async <A>(what: string, probe: () => Promise<A | undefined>, timeoutMs = 60_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

export { freePort }

export interface Prometheus {
  readonly url: string
  /** An instant query's result vector: each series' labels and value. */
  readonly query: (expr: string) => Promise<Array<{ metric: Record<string, string>; value: number }>>
  readonly queryRange: (
    expr: string,
    startS: number,
    endS: number
  ) => Promise<Array<{ metric: Record<string, string>; values: Array<number> }>>
  /** Prometheus' clock, in seconds: the time its samples are stamped with. */
  readonly now: () => Promise<number>
  readonly stop: () => Promise<void>
}

/** Debian's Prometheus server, scraping `target` every second into a throwaway data directory. */
export const startPrometheus = async (target: string): Promise<Prometheus> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-prometheus-"))
  const port = await freePort()
  fs.writeFileSync(
    path.join(dir, "prometheus.yml"),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: autotune\n    static_configs:\n      - targets: ["${target}"]\n`
  )
  const child: ChildProcess = spawn(
    "prometheus",
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn"
    ],
    { stdio: ["ignore", "ignore", "pipe"] }
  )
  let stderr = ""
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
  const url = `http://127.0.0.1:${port}`
  await until(
    `Prometheus to be ready (${stderr.slice(0, 300)})`,
    async () => ((await fetch(`${url}/-/ready`)).ok ? true : undefined),
    30_000
  )
  const api = async (pathAndQuery: string) => {
    const body = (await (await fetch(`${url}${pathAndQuery}`)).json()) as {
      status: string
      error?: string
      data: { result: Array<Record<string, unknown>> }
    }
    if (body.status !== "success") throw new Error(`Prometheus: ${body.error}`)
    return body.data.result
  }
  return {
    url,
    query: async (expr) =>
      (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)).map((r) => ({
        metric: r["metric"] as Record<string, string>,
        value: Number((r["value"] as [number, string])[1])
      })),
    queryRange: async (expr, startS, endS) =>
      (await api(`/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${startS}&end=${endS}&step=1`)).map(
        (r) => ({
          metric: r["metric"] as Record<string, string>,
          values: (r["values"] as Array<[number, string]>).map((v) => Number(v[1]))
        })
      ),
    now: async () =>
      Number(
        ((await api(`/api/v1/query?query=${encodeURIComponent("vector(time())")}`))[0]!["value"] as [number, string])[1]
      ),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => {
          fs.rmSync(dir, { recursive: true, force: true })
          resolve()
        })
        child.kill("SIGTERM")
      })
  }
}

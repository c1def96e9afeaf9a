/**
 * npm run bench:daemon [-- --seconds=120 --rate=20 --metrics=both|off|on]
 * Runs `autotune daemon` as README starts it (the built CLI), with a 0.3 s interval against the fake provider
 * while traces keep arriving (--rate a second; --rate=0: 2,000 at the start, then none), and samples its RSS:
 * memory must stay flat over many cycles. With --metrics=both (the default) it runs twice, without and with
 * AUTOTUNE_METRICS_PORT and a scrape of /metrics every second, and prints the CPU and RSS of each: the
 * metrics' overhead. A 0.3 s interval makes it an upper bound: the metrics are read once per cycle.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { freePort } from "../test/helpers/prometheus.js"
import { daysAgo, traceFileName, traceObject } from "../test/helpers/traces.js"
import { arg, machine, uuidV4 } from "./util.js"

const SECONDS = arg("seconds", 120)
const RATE = arg("rate", 20)
const which = process.argv.find((a) => a.startsWith("--metrics="))?.split("=")[1] ?? "both"
const fake = await startFakeProvider()
const TICKS_PER_SECOND = 100 // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in these

/** `n` turns as DotClaw writes them as they happen: its `trace-<uuid v4>` ids, stamped now, in today's file. */
const arriving = (from: number, n: number) => {
  let out = ""
  const now = Date.now()
  for (let i = from; i < from + n; i++) {
    const at = now - (from + n - 1 - i)
    out +=
      JSON.stringify({
        ...traceObject(i),
        trace_id: `trace-${uuidV4(i)}`,
        timestamp: new Date(at).toISOString(),
        created_at: at
      }) + "\n"
  }
  return out
}

const phase = async (metrics: boolean) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-daemon-"))
  fs.mkdirSync(path.join(home, "traces"))
  const port = await freePort()
  const child = spawn("dist/bin.js", ["daemon"], {
    env: {
      ...process.env,
      AUTOTUNE_HOME: home,
      AUTOTUNE_CONFIG_PATH: "",
      ANTHROPIC_API_KEY: "bench",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: "response-quality",
      AUTOTUNE_INTERVAL_MINUTES: "0.005",
      ...(metrics ? { AUTOTUNE_METRICS_PORT: String(port) } : {})
    },
    stdio: ["ignore", "ignore", "pipe"]
  })
  let cycles = 0
  child.stderr.on("data", (d: Buffer) => (cycles += (d.toString().match(/cycle finished/g) ?? []).length))
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024
  const cpu = () => {
    const fields = fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the ") " that ends the command name.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  }
  const samples: Array<{ t: number; cycles: number; rssMb: number }> = []
  let next = 0
  let scrapes = 0
  let bytes = 0
  const started = Date.now()
  while (Date.now() - started < SECONDS * 1000) {
    if (RATE > 0 || next === 0) {
      const n = RATE > 0 ? RATE : 2000
      fs.appendFileSync(path.join(home, "traces", traceFileName(daysAgo(0))), arriving(next, n))
      next += n
    }
    await new Promise((r) => setTimeout(r, 1000))
    if (metrics) {
      const page = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => "")
      if (page.length > 0) {
        scrapes++
        bytes = page.length
      }
    }
    if ((Date.now() - started) % 10_000 < 1000)
      samples.push({ t: Math.round((Date.now() - started) / 1000), cycles, rssMb: rss() })
  }
  const cpuSeconds = cpu()
  child.kill("SIGTERM")
  await new Promise((r) => child.once("exit", r))
  fs.rmSync(home, { recursive: true, force: true })
  return { metrics, cycles, traces: next, cpuSeconds, samples, scrapes, bytes }
}

const phases = which === "both" ? [false, true] : [which === "on"]
console.log(`bench:daemon: ${SECONDS} s a run, traces ${RATE}/s, interval 0.3 s; machine: ${machine()}`)
for (const metrics of phases) {
  const r = await phase(metrics)
  const settled = r.samples.filter((s) => s.t >= 20).map((s) => s.rssMb)
  console.log(
    `metrics ${metrics ? `on (${r.scrapes} scrapes of /metrics, ${r.bytes} bytes)` : "off"}: ${r.cycles} cycles, ${r.traces} traces; CPU ${r.cpuSeconds.toFixed(1)} s ` +
      `(${((r.cpuSeconds * 1000) / Math.max(1, r.cycles)).toFixed(1)} ms a cycle); RSS after 20 s ${settled.length === 0 ? "n/a" : `${Math.min(...settled).toFixed(0)}-${Math.max(...settled).toFixed(0)} MB`}`
  )
  for (const s of r.samples)
    console.log(
      `  t=${String(s.t).padStart(4)} s  cycles=${String(s.cycles).padStart(4)}  RSS ${s.rssMb.toFixed(0)} MB`
    )
}
await fake.close()

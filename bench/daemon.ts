/**
 * npm run bench:daemon [-- --seconds=120]
 * Runs `autotune daemon` with a 0.3 s interval against the fake provider while traces keep arriving
 * (--rate a second; --rate=0: 2,000 at the start, then none), and samples its RSS: memory must stay flat
 * over many cycles.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceLines, traceFileName } from "../test/helpers/traces.js"
import { arg, machine } from "./util.js"

const SECONDS = arg("seconds", 120)
const RATE = arg("rate", 20)
const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-daemon-"))
fs.mkdirSync(path.join(home, "traces"))
const fake = await startFakeProvider()
const child = spawn("dist/bin.js", ["daemon"], {
  env: { ...process.env, AUTOTUNE_HOME: home, AUTOTUNE_CONFIG_PATH: path.join(home, "none.json"), ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: fake.url, AUTOTUNE_JUDGE_BATCH: "off", AUTOTUNE_BEHAVIORS: "response-quality", AUTOTUNE_INTERVAL_MINUTES: "0.005" },
  stdio: ["ignore", "ignore", "pipe"]
})
let cycles = 0
child.stderr.on("data", (d: Buffer) => (cycles += (d.toString().match(/cycle finished/g) ?? []).length))
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024
const samples: Array<{ t: number; cycles: number; rssMb: number }> = []
let next = 0
const started = Date.now()
while (Date.now() - started < SECONDS * 1000) {
  if (RATE > 0 || next === 0) {
    const n = RATE > 0 ? RATE : 2000
    fs.appendFileSync(path.join(home, "traces", traceFileName()), traceLines(next, n))
    next += n
  }
  await new Promise((r) => setTimeout(r, 1000))
  if ((Date.now() - started) % 10_000 < 1000) samples.push({ t: Math.round((Date.now() - started) / 1000), cycles, rssMb: rss() })
}
child.kill("SIGTERM")
await new Promise((r) => child.once("exit", r))
await fake.close()
console.log(`bench:daemon: ${SECONDS} s, ${cycles} cycles, ${next} traces (${RATE}/s), interval 0.3 s; machine: ${machine()}`)
for (const s of samples) console.log(`t=${String(s.t).padStart(4)} s  cycles=${String(s.cycles).padStart(4)}  RSS ${s.rssMb.toFixed(0)} MB`)
const settled = samples.filter((s) => s.t >= 20)
if (settled.length >= 2) console.log(`RSS after 20 s: min ${Math.min(...settled.map((s) => s.rssMb)).toFixed(0)} MB, max ${Math.max(...settled.map((s) => s.rssMb)).toFixed(0)} MB`)
fs.rmSync(home, { recursive: true, force: true })

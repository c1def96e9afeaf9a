/**
 * npm run bench:eval [-- --calls=1000 --latency=100]
 * 1,000 judge calls against the fake provider on 127.0.0.1 with 100 ms latency, through the built CLI, the
 * real Anthropic SDK and HTTP stack; wall time at concurrency 1, 8 and 16.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceLines, traceFileName } from "../test/helpers/traces.js"
import { arg, machine, measureCommand } from "./util.js"

const CALLS = arg("calls", 1000)
const LATENCY = arg("latency", 100)
const fake = await startFakeProvider()
fake.latencyMs = LATENCY
console.log(`bench:eval: ${CALLS} judge calls, fake provider latency ${LATENCY} ms; machine: ${machine()}`)

const results: Array<{ concurrency: number; seconds: number; calls: number; costUsd: number }> = []
for (const concurrency of (process.env["BENCH_LEVELS"] ?? "1,8,16").split(",").map(Number)) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-eval-"))
  fs.mkdirSync(path.join(home, "traces"))
  fs.writeFileSync(path.join(home, "traces", traceFileName()), traceLines(0, CALLS))
  const env = {
    ...process.env,
    AUTOTUNE_HOME: home,
    AUTOTUNE_CONFIG_PATH: path.join(home, "none.json"),
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: fake.url, AUTOTUNE_JUDGE_BATCH: "off",
    AUTOTUNE_BEHAVIORS: "response-quality",
    AUTOTUNE_EVAL_MAX_TRACES: String(CALLS),
    AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
    AUTOTUNE_LLM_CONCURRENCY: String(concurrency)
  }
  await measureCommand("dist/bin.js", ["ingest"], env)
  fake.requests.length = 0
  const run = await measureCommand("dist/bin.js", ["eval", "--json"], env)
  const summary = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { calls: number; costUsd: number }
  results.push({ concurrency, seconds: run.seconds, calls: summary.calls, costUsd: summary.costUsd })
  console.log(`concurrency ${String(concurrency).padStart(2)}: ${run.seconds.toFixed(2).padStart(7)} s, ${summary.calls} calls, ${(summary.calls / run.seconds).toFixed(1)} calls/s, $${summary.costUsd.toFixed(4)} at list price, ${run.maxRssMb.toFixed(0)} MB peak RSS`)
  fs.rmSync(home, { recursive: true, force: true })
}
await fake.close()
const speedup = results[0]!.seconds / results[2]!.seconds
console.log(`speed-up at 16 vs 1: ${speedup.toFixed(1)}x (target >= 12x)`)
if (speedup < 12) process.exitCode = 1

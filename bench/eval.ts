/**
 * npm run bench:eval [-- --calls=1000 --latency=100 --batch-turns=200]
 * 1,000 judge calls against the fake provider on 127.0.0.1 with 100 ms latency, through the built CLI, the
 * real Anthropic SDK and HTTP stack; wall time at concurrency 1, 8 and 16. Then the collection of a Message
 * Batch (`eval --wait-batches`, the defaults' trend path): 200 turns x 2 behaviors whose stage-1 scores are
 * spread over the scale, so that many are unsure and go to stage 2 as direct calls, with 15% of direct calls
 * failing once (529) and retried; the direct calls after the collection are timed at concurrency 1 and 8.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceFileName, traceLine, traceLines } from "../test/helpers/traces.js"
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
    AUTOTUNE_CONFIG_PATH: "",
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_JUDGE_BATCH: "off",
    // Every turn judged: the daily trend sample (40 a day at the defaults) would leave most of them out.
    AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
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
  console.log(
    `concurrency ${String(concurrency).padStart(2)}: ${run.seconds.toFixed(2).padStart(7)} s, ${summary.calls} calls, ${(summary.calls / run.seconds).toFixed(1)} calls/s, $${summary.costUsd.toFixed(4)} at list price, ${run.maxRssMb.toFixed(0)} MB peak RSS`
  )
  fs.rmSync(home, { recursive: true, force: true })
}
// A batch's collection: stage 1 comes from the batch, stage 2 (the unsure and audited) goes direct.
const BATCH_TURNS = arg("batch-turns", 200)
let draw = 12345
const random = () => (draw = (draw * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
const collection: Array<{ concurrency: number; seconds: number; direct: number }> = []
for (const concurrency of [1, 8]) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-eval-batch-"))
  fs.mkdirSync(path.join(home, "traces"))
  let body = ""
  for (let i = 0; i < BATCH_TURNS; i++)
    body += traceLine(i, {
      text: `Please check the weather in Lisbon for trip ${i} SCORE=${[0.2, 0.4, 0.5, 0.6, 0.9][i % 5]}`
    })
  fs.writeFileSync(path.join(home, "traces", traceFileName()), body)
  const env = {
    ...process.env,
    AUTOTUNE_HOME: home,
    AUTOTUNE_CONFIG_PATH: "",
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_BEHAVIORS: "response-quality,tool-calling",
    AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
    AUTOTUNE_EVAL_MAX_TRACES: String(BATCH_TURNS),
    AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "0.1",
    AUTOTUNE_LLM_CONCURRENCY: String(concurrency),
    AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS: "50",
    AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS: "200"
  }
  await measureCommand("dist/bin.js", ["ingest"], env)
  // Submit (no direct calls: every turn is trend sample), then collect with the faults on.
  await measureCommand("dist/bin.js", ["eval", "--json"], env)
  fake.requests.length = 0
  fake.faultWhen = (_method, url) => url.endsWith("/v1/messages") && random() < 0.15
  fake.faults.length = 0
  for (let i = 0; i < 10_000; i++)
    fake.faults.push({
      status: 529,
      body: JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
    })
  const run = await measureCommand("dist/bin.js", ["eval", "--json", "--wait-batches"], env)
  fake.faultWhen = () => true
  fake.faults.length = 0
  const direct = fake.requests.filter((r) => r.path.endsWith("/v1/messages")).length
  const summary = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { batches: { collected: number } }
  collection.push({ concurrency, seconds: run.seconds, direct })
  console.log(
    `batch collection, concurrency ${concurrency}: ${run.seconds.toFixed(2).padStart(7)} s, ${summary.batches.collected} answers collected, ${direct} direct calls (stage 2, retries included)`
  )
  fs.rmSync(home, { recursive: true, force: true })
}
console.log(`batch collection speed-up at 8 vs 1: ${(collection[0]!.seconds / collection[1]!.seconds).toFixed(1)}x`)

await fake.close()
const speedup = results[0]!.seconds / results[2]!.seconds
console.log(`speed-up at 16 vs 1: ${speedup.toFixed(1)}x (target >= 12x)`)
if (speedup < 12) process.exitCode = 1

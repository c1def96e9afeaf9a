/**
 * npm run bench:heap [-- --cycles=600]
 * Runs `once` many times in one process against the fake provider, 10 new traces a cycle, and prints the
 * JavaScript heap after a forced GC every 100 cycles: retained objects would show as a rising heap.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { onceLocked } from "../src/pipeline/Runner.js"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceLines, traceFileName } from "../test/helpers/traces.js"
import { arg, machine } from "./util.js"

const CYCLES = arg("cycles", 600)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")
const fake = await startFakeProvider()
const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-heap-"))
fs.mkdirSync(path.join(home, "traces"))
const input = {
  env: {
    ...process.env,
    AUTOTUNE_HOME: home,
    AUTOTUNE_CONFIG_PATH: "",
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: fake.url,
    AUTOTUNE_JUDGE_BATCH: "off",
    AUTOTUNE_BEHAVIORS: "response-quality",
    AUTOTUNE_LOG_LEVEL: "error"
  }
}
console.log(`bench:heap: ${CYCLES} cycles in one process; machine: ${machine()}`)
let calls = 0
for (let i = 1; i <= CYCLES; i++) {
  fs.appendFileSync(path.join(home, "traces", traceFileName()), traceLines(i * 10, 10))
  await Effect.runPromise(onceLocked(input))
  // The fake provider keeps what it saw; drop it so only autotune's memory is measured.
  calls += fake.requests.length
  fake.requests.length = 0
  if (i % 100 === 0) {
    gc()
    const m = process.memoryUsage()
    console.log(
      `cycle ${String(i).padStart(4)}: heap after GC ${(m.heapUsed / 2 ** 20).toFixed(1)} MB, external ${(m.external / 2 ** 20).toFixed(1)} MB, RSS ${(m.rss / 2 ** 20).toFixed(0)} MB, ${calls} LLM calls so far`
    )
  }
}
await fake.close()
fs.rmSync(home, { recursive: true, force: true })

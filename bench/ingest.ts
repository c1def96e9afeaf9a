/**
 * npm run bench:ingest [-- --traces=200000 --runs=3]
 * Generates DotClaw-like traces, runs `autotune ingest` on them in its own process, and beside it the floor
 * (JSON.parse + one prepared statement in one transaction), alternately, --runs times, then once more as
 * README starts it. Prints time, traces/s, MB/s and peak RSS of each run, the ratio of each pair and their median.
 * BENCH_KEEP=1 keeps the generated traces and store (for profiling) and prints where.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { traceLine } from "../test/helpers/traces.js"
import { postgresBin, startPostgres } from "../test/helpers/postgres.js"
import { arg, machine, type Measured, measureCommand, measureNode, uuidV4 } from "./util.js"

const N = arg("traces", 200_000)
const DAYS = 7
const generating = process.argv[2] === "--generate"
const root = generating ? "" : fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-ingest-"))
const traceDir = path.join(root, "traces")
if (!generating) fs.mkdirSync(traceDir)

/** Writes the traces into `dir`; returns their bytes. */
const generate = (dir: string): number => {
  const perDay = Math.ceil(N / DAYS)
  let bytes = 0
  for (let d = 0; d < DAYS; d++) {
    const day = `2026-11-${String(10 + d).padStart(2, "0")}`
    const fd = fs.openSync(path.join(dir, `trace-${day}.jsonl`), "w")
    let buffer = ""
    for (let i = 0; i < perDay && d * perDay + i < N; i++) {
      const withSecret =
        i % 50 === 0 ? { text: `my key is sk-ant-api03-${"x".repeat(24)}${i} and mail me at user${i}@example.com` } : {}
      const line = traceLine(i, {
        day,
        packVersions: { "response-quality": i % 10 === 0 ? "rq-canary" : "rq-1", "tool-calling": "tc-1" },
        toolFailure: i % 13 === 0,
        ...withSecret
      })
      // DotClaw's own ids, `trace-<uuid v4>` (generateId('trace')): random keys, as a real store gets them.
      buffer += line.replace(/"trace_id":"[^"]*"/, `"trace_id":"trace-${uuidV4(d * perDay + i)}"`)
      if (buffer.length > 1 << 20) {
        bytes += Buffer.byteLength(buffer)
        fs.writeSync(fd, buffer)
        buffer = ""
      }
    }
    bytes += Buffer.byteLength(buffer)
    fs.writeSync(fd, buffer)
    fs.closeSync(fd)
  }
  return bytes
}

// The traces are generated in a child process: the garbage of making 200 MB of text in this one kept V8
// collecting beside the measured runs (the floor's first run was up to 50% slower here than alone).
if (generating) {
  process.stdout.write(String(generate(process.argv[3]!)))
  process.exit(0)
}
const bytes = Number(
  execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--generate", traceDir, `--traces=${N}`], {
    encoding: "utf8"
  })
)
const mb = bytes / 2 ** 20
console.log(`bench:ingest: ${N} traces, ${mb.toFixed(1)} MB in ${DAYS} files; machine: ${machine()}`)

const env = { ...process.env, AUTOTUNE_HOME: root, AUTOTUNE_CONFIG_PATH: "" }
// Runs alternate (ours, floor, ours, floor, ...) so that a slow spell of a shared machine hits both; each pair
// gives a ratio and the median pair decides. Each of our runs starts from an empty store.
const RUNS = arg("runs", 3)
// The home's record of its store (store/Identity.ts) goes with it: each run starts afresh, as `accept-store` does.
const storeFiles = () =>
  fs
    .readdirSync(root)
    .filter((f) => f.startsWith("autotune.db") || f.startsWith("floor.db") || f === "store-identity.json")
const pairs: Array<{ ours: Measured; floor: Measured }> = []
// Before each run the page cache's dirty pages are written out (sync), so that no run pays for the writes of
// the one before it (or for the generated traces).
const settle = () => execFileSync("sync")
for (let r = 0; r < RUNS; r++) {
  for (const f of storeFiles()) fs.rmSync(path.join(root, f), { force: true })
  settle()
  const ours = await measureCommand("dist/bin.js", ["ingest", "--json"], env)
  const summary = JSON.parse(ours.stdout.trim().split("\n").pop() ?? "") as { ingested: number }
  if (ours.stdout.trim().includes("\n")) console.log("unexpected stdout:", ours.stdout.slice(0, 500))
  if (summary.ingested !== N) throw new Error(`ingest stored ${summary.ingested} of ${N} traces`)
  settle()
  const floor = await measureNode([".bench/bench/floor-ingest.js", traceDir, path.join(root, "floor.db")])
  pairs.push({ ours, floor })
}

const row = (name: string, m: { seconds: number; maxRssMb: number }) =>
  `${name.padEnd(18)} ${m.seconds.toFixed(2).padStart(7)} s ${(N / m.seconds).toFixed(0).padStart(8)} traces/s ${(mb / m.seconds).toFixed(1).padStart(6)} MB/s ${m.maxRssMb.toFixed(0).padStart(5)} MB peak RSS`
pairs.forEach((p, r) => {
  console.log(row(`autotune ingest #${r + 1}`, p.ours))
  console.log(row(`floor #${r + 1}`, p.floor))
})
// README's own command form, `node --max-old-space-size=256 dist/bin.js`, once more from an empty store.
for (const f of storeFiles()) fs.rmSync(path.join(root, f), { force: true })
settle()
const readmeForm = await measureNode(["--max-old-space-size=256", "dist/bin.js", "ingest", "--json"], env)
console.log(row("README's form", readmeForm))
const ratios = pairs.map((p) => p.ours.seconds / p.floor.seconds)
const median = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!
const peak = Math.max(readmeForm.maxRssMb, ...pairs.map((p) => p.ours.maxRssMb))
const ours = pairs[ratios.indexOf(median)]!.ours
const floor = pairs[ratios.indexOf(median)]!.floor
console.log(
  `ratio to floor per pair: ${ratios.map((x) => `${x.toFixed(2)}x`).join(", ")}; median ${median.toFixed(2)}x (target <= 2.5x); peak RSS ${peak.toFixed(0)} MB (target < 200 MB)`
)

// The same traces into the PostgreSQL store (a throwaway local cluster, fsync off as in the tests; the server's
// memory is its own process and not in the peak RSS).
if (postgresBin() !== undefined) {
  const cluster = await startPostgres()
  try {
    const url = await cluster.database("bench")
    const pgRun = await measureCommand("dist/bin.js", ["ingest", "--json"], { ...env, AUTOTUNE_DATABASE_URL: url })
    const stored = JSON.parse(pgRun.stdout.trim().split("\n").pop() ?? "") as { ingested: number }
    if (stored.ingested !== N) throw new Error(`PostgreSQL ingest stored ${stored.ingested} of ${N} traces`)
    console.log(row("ingest, PostgreSQL", pgRun))
    console.log(
      `PostgreSQL: ${(pgRun.seconds / floor.seconds).toFixed(2)}x the (SQLite) floor, ${(pgRun.seconds / ours.seconds).toFixed(2)}x the SQLite store`
    )
  } finally {
    cluster.stop()
  }
} else console.log("PostgreSQL: Debian's postgresql is not installed; skipped")
if (process.env["BENCH_KEEP"] === undefined) fs.rmSync(root, { recursive: true, force: true })
else console.log(`kept ${root}`)
if (median > 2.5 || peak >= 200) process.exitCode = 1

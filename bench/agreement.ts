/**
 * npm run bench:agreement [-- --turns=200 --trace-dir=DIR]
 * Whether one request per turn for every behavior (AUTOTUNE_JUDGE_COMBINED=1) scores like one request per
 * behavior. Two fresh stores ingest the same traces through the built CLI; each judges the same turns at
 * stage 1 only (no escalation, no audit, no batch), one per behavior, the other combined; then per behavior:
 * the turns both scored, mean |difference|, the share on the same 0.25 level, the rank correlation, and what
 * each way cost.
 *
 * A real measurement needs a real judge: with ANTHROPIC_API_KEY (or OPENROUTER_API_KEY) set, the calls go to
 * that provider (a few hundred small requests; the cost is printed) and `--trace-dir` should be your DotClaw
 * trace dir (read only). Without a key it runs against the fake provider on 127.0.0.1, which scores both
 * ways alike: that checks the bench, it measures nothing, and it says so.
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { BEHAVIORS } from "../src/Domain/Behavior.js"
import { startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceLine } from "../test/helpers/traces.js"
import { arg, machine, measureCommand } from "./util.js"

const TURNS = arg("turns", 200)
const traceDirArg = process.argv.find((a) => a.startsWith("--trace-dir="))?.split("=")[1]
const real = (process.env["ANTHROPIC_API_KEY"] ?? "") !== "" || (process.env["OPENROUTER_API_KEY"] ?? "") !== ""
const root = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-agreement-"))

let traceDir = traceDirArg
if (traceDir === undefined) {
  traceDir = path.join(root, "traces")
  fs.mkdirSync(traceDir)
  // The fake scores a turn by its SCORE marker: varied scores, so the rank correlation is defined.
  let body = ""
  for (let i = 0; i < TURNS; i++)
    body += traceLine(i, {
      text: `Please check the weather in Lisbon for trip ${i} SCORE=${[0.25, 0.5, 0.75, 1][i % 4]}`
    })
  fs.writeFileSync(path.join(traceDir, "trace-2026-11-20.jsonl"), body)
}
const fake = real ? undefined : await startFakeProvider()
console.log(
  `bench:agreement: ${TURNS} turns from ${traceDir}, ${real ? "the configured provider" : "the FAKE provider (checks the bench only: its scores agree by construction)"}; machine: ${machine()}`
)

interface Eval {
  calls: number
  costUsd: number | null
  tokensIn: number
  tokensOut: number
}
const judge = async (name: string, combined: boolean) => {
  const home = path.join(root, name)
  fs.mkdirSync(home)
  const env = {
    ...process.env,
    AUTOTUNE_HOME: home,
    AUTOTUNE_CONFIG_PATH: "",
    AUTOTUNE_TRACE_DIR: traceDir,
    ...(fake === undefined ? {} : { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: fake.url }),
    // The same turns both ways: every stored turn up to --turns, stage 1 only, at once.
    AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
    AUTOTUNE_EVAL_MAX_TRACES: String(TURNS),
    AUTOTUNE_JUDGE_BATCH: "off",
    AUTOTUNE_JUDGE_UNSURE_LOW: "0",
    AUTOTUNE_JUDGE_UNSURE_HIGH: "0",
    AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
    AUTOTUNE_JUDGE_COMBINED: combined ? "1" : "0",
    AUTOTUNE_REPORT: "0",
    AUTOTUNE_LOG_LEVEL: "error"
  }
  await measureCommand("dist/bin.js", ["ingest"], env)
  const run = await measureCommand("dist/bin.js", ["eval", "--json"], env)
  const summary = JSON.parse(run.stdout.trim().split("\n").pop()!) as Eval
  const db = new Database(path.join(home, "autotune.db"), { readonly: true })
  const scores = db
    .prepare("SELECT trace_id AS id, behavior, stage1_score AS score FROM trace_scores WHERE stage1_score IS NOT NULL")
    .all() as Array<{ id: string; behavior: string; score: number }>
  db.close()
  return { summary, scores: new Map(scores.map((s) => [`${s.behavior}\u0000${s.id}`, s.score])) }
}

/** Spearman's rank correlation, ties given their mean rank. */
const spearman = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>) => {
  const rank = (v: ReadonlyArray<number>) => {
    const order = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0])
    const r = new Array<number>(v.length)
    for (let i = 0; i < order.length;) {
      let j = i
      while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++
      for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2
      i = j + 1
    }
    return r
  }
  const a = rank(xs)
  const b = rank(ys)
  const mean = (v: ReadonlyArray<number>) => v.reduce((s, x) => s + x, 0) / v.length
  const ma = mean(a)
  const mb = mean(b)
  let num = 0
  let da = 0
  let db = 0
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - ma) * (b[i]! - mb)
    da += (a[i]! - ma) ** 2
    db += (b[i]! - mb) ** 2
  }
  return da === 0 || db === 0 ? NaN : num / Math.sqrt(da * db)
}

const single = await judge("single", false)
const combined = await judge("combined", true)
await fake?.close()
console.log("| behavior | turns both scored | mean abs difference | same 0.25 level | rank correlation |")
console.log("| --- | --- | --- | --- | --- |")
for (const b of BEHAVIORS) {
  const pairs: Array<[number, number]> = []
  for (const [key, s] of single.scores) {
    const c = combined.scores.get(key)
    if (key.startsWith(`${b}\u0000`) && c !== undefined) pairs.push([s, c])
  }
  if (pairs.length === 0) continue
  const diff = pairs.reduce((n, [s, c]) => n + Math.abs(s - c), 0) / pairs.length
  const same = pairs.filter(([s, c]) => Math.round(s * 4) === Math.round(c * 4)).length / pairs.length
  console.log(
    `| ${b} | ${pairs.length} | ${diff.toFixed(3)} | ${(same * 100).toFixed(1)}% | ${spearman(
      pairs.map((p) => p[0]),
      pairs.map((p) => p[1])
    ).toFixed(3)} |`
  )
}
const line = (name: string, e: Eval) =>
  `${name}: ${e.calls} calls, ${e.tokensIn} tokens in, ${e.tokensOut} out, ${e.costUsd === null ? "cost unknown" : `$${e.costUsd.toFixed(4)}`}`
console.log(line("one request per behavior", single.summary))
console.log(line("one request per turn", combined.summary))
if (!real)
  console.log(
    "NOTE: fake provider: the figures above check the bench's mechanics and the call/token counts; agreement needs a real judge"
  )
fs.rmSync(root, { recursive: true, force: true })

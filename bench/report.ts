/**
 * npm run bench:report [-- --traces=200000 --days=40]
 * A store as a real install has it after `--days` days at traces/days turns a day: DotClaw's `trace-<uuid>`
 * traces ingested by `autotune ingest`, six behaviors judged on every turn (half of them a second time by
 * stage 2), one LLM call row per verdict, a pack change every ten days per behavior, a canary looked at
 * every hour, optimizer runs. Then `node dist/bin.js report --json` as README starts it, three times:
 * wall time, peak RSS, page size. Targets: under 2 s, under 1.5 MB for 30 days of six behaviors.
 */
import Database from "better-sqlite3"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { BEHAVIORS } from "../src/Domain/Behavior.js"
import { traceObject } from "../test/helpers/traces.js"
import { arg, machine, measureCommand, measureNode } from "./util.js"

const N = arg("traces", 200_000)
const DAYS = arg("days", 40)
const DAY_MS = 86_400_000
const root = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-bench-report-"))
const traceDir = path.join(root, "traces")
fs.mkdirSync(traceDir)
const today = Date.parse(new Date().toISOString().slice(0, 10))
const start = today - (DAYS - 1) * DAY_MS

const uuidV4 = (n: number) => {
  const h = createHash("sha256").update(String(n)).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[parseInt(h[16]!, 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`
}
/** Pack versions change every ten days; the newest is a canary on one turn in ten. */
const versionOf = (behavior: string, dayIndex: number, i: number) => {
  const era = Math.floor(dayIndex / 10)
  const newest = Math.floor((DAYS - 1) / 10)
  return era === newest && i % 10 === 0 ? `${behavior}-canary-${era + 1}` : `${behavior}-v${era}`
}

const perDay = Math.ceil(N / DAYS)
for (let d = 0; d < DAYS; d++) {
  const dayStart = start + d * DAY_MS
  const day = new Date(dayStart).toISOString().slice(0, 10)
  let body = ""
  for (let i = 0; i < perDay && d * perDay + i < N; i++) {
    const at = dayStart + Math.floor((i * DAY_MS) / perDay)
    const packs = Object.fromEntries(BEHAVIORS.map((b) => [b, versionOf(b, d, i)]))
    const t = traceObject(i, { day, packVersions: packs, toolFailure: i % 13 === 0 })
    body +=
      JSON.stringify({
        ...t,
        trace_id: `trace-${uuidV4(d * perDay + i)}`,
        timestamp: new Date(at).toISOString(),
        created_at: at
      }) + "\n"
  }
  fs.writeFileSync(path.join(traceDir, `trace-${day}.jsonl`), body)
}
const env = { ...process.env, AUTOTUNE_HOME: root, AUTOTUNE_CONFIG_PATH: "" }
const ingest = await measureCommand("dist/bin.js", ["ingest", "--json"], env)
console.log(
  `bench:report: ${N} traces over ${DAYS} days ingested in ${ingest.seconds.toFixed(1)} s; machine: ${machine()}`
)

// What eval, optimize and the canary monitor would have written, in their columns.
const seededAt = process.hrtime.bigint()
const db = new Database(path.join(root, "autotune.db"))
db.pragma("journal_mode = WAL")
const reason =
  "The reply answers the question directly and confirms the reminder; it could mention the forecast's source and the time zone."
db.transaction(() => {
  for (const behavior of BEHAVIORS) {
    const rubric = `${behavior}@1`
    db.prepare(
      `
      INSERT INTO trace_scores (trace_id, behavior, rubric_version, score, stage1_score, stage2_score, reason, created_at, turn_at, pack_version)
      SELECT p.trace_id, ?, ?, s1, s1, CASE WHEN h % 2 = 0 THEN s2 END, ?, p.created_at + 3600000, p.created_at, p.version
      FROM (SELECT trace_id, created_at, version, abs(random()) % 1000 AS h, (abs(random()) % 5) / 4.0 AS s1, (abs(random()) % 5) / 4.0 AS s2
            FROM trace_packs WHERE behavior = ?) p`
    ).run(behavior, rubric, reason, behavior)
    db.prepare(
      `
      INSERT INTO judge_scores (trace_id, behavior, rubric_version, stage, model, status, score, reason, created_at)
      SELECT trace_id, behavior, rubric_version, 1, 'claude-haiku-4-5', 'scored', stage1_score, reason, created_at FROM trace_scores WHERE behavior = ?`
    ).run(behavior)
    db.prepare(
      `
      INSERT INTO judge_scores (trace_id, behavior, rubric_version, stage, model, status, score, reason, created_at)
      SELECT trace_id, behavior, rubric_version, 2, 'claude-sonnet-5-5', 'scored', stage2_score, reason, created_at FROM trace_scores WHERE behavior = ? AND stage2_score IS NOT NULL`
    ).run(behavior)
    db.prepare(
      `
      INSERT INTO llm_calls (run_id, stage, provider, model, tokens_in, tokens_out, cost_usd, latency_ms, attempts, outcome, created_at, parsed)
      SELECT 'bench', 'judge:' || behavior || ':' || stage, 'anthropic', model, 1900, 120, CASE stage WHEN 1 THEN 0.00250 ELSE 0.00750 END, 900, 1, 'ok', created_at, 1
      FROM judge_scores WHERE behavior = ?`
    ).run(behavior)
    const deploy = db.prepare(
      "INSERT INTO deployments (behavior, version, action, detail_json, created_at) VALUES (?, ?, ?, '{}', ?)"
    )
    const look = db.prepare(
      "INSERT INTO canary_decisions (behavior, canary_version, active_version, action, reason, figures_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    const run = db.prepare(
      "INSERT INTO optimize_runs (behavior, baseline_version, outcome, detail_json, created_at) VALUES (?, ?, ?, ?, ?)"
    )
    const pack = db.prepare(
      "INSERT INTO packs (version, behavior, body_json, lineage_json, status, created_at) VALUES (?, ?, ?, '{}', ?, ?)"
    )
    for (let era = 0; era * 10 < DAYS; era++) {
      const at = start + era * 10 * DAY_MS
      const version = `${behavior}-canary-${era + 1}`
      const instructions = `Answer first, in two sentences at most. Confirm every action you took (era ${era + 1}). Say plainly when a tool failed.`
      pack.run(
        version,
        behavior,
        JSON.stringify({
          instructions,
          baselineInstructions: "Answer first. Confirm every action you took.",
          lineage: {}
        }),
        "canary",
        at
      )
      run.run(
        behavior,
        `${behavior}-v${era}`,
        "selected",
        JSON.stringify({
          outcome: "selected",
          version,
          baseline: { n: 20, mean: 0.55 },
          heldOut: [1, 2, 3, 4, 5, 6].map((c) => ({
            candidate: c,
            n: 20,
            mean: 0.55 + c / 100,
            meanDiff: c / 100,
            lowerBound: c / 100 - 0.04
          })),
          linted: ["candidate 7: longer than AUTOTUNE_PACK_MAX_CHARS"],
          calls: 281,
          costUsd: 0.41
        }),
        at - DAY_MS
      )
      deploy.run(behavior, version, "canary", at)
      for (let h = 0; h < 240 && at + h * 3_600_000 < Date.now(); h++) {
        const n = h * 20
        look.run(
          behavior,
          version,
          `${behavior}-v${era}`,
          "waiting",
          "evidence so far",
          JSON.stringify({
            nCanary: n,
            nActive: n * 9,
            pairs: n,
            eUp: Math.exp(h / 80),
            eDown: Math.exp(-h / 60),
            meanCanary: 0.6,
            meanActive: 0.55,
            health: { errorCeiling: 0.1, toolCeiling: 0.2, errorDelta: 0.5, toolDelta: 0.4, negativeDelta: 1 }
          }),
          at + h * 3_600_000
        )
      }
    }
    fs.mkdirSync(path.join(root, "prompts"), { recursive: true })
    const newest = Math.floor((DAYS - 1) / 10)
    const file = (version: string, extra: object) =>
      JSON.stringify({ name: behavior, version, behavior, instructions: "Answer first.", ...extra })
    fs.writeFileSync(path.join(root, "prompts", `${behavior}.json`), file(`${behavior}-v${newest}`, {}))
    fs.writeFileSync(
      path.join(root, "prompts", `${behavior}.canary.json`),
      file(`${behavior}-canary-${newest + 1}`, { metadata: { canaryPercent: 10 } })
    )
  }
})()
const counts = db
  .prepare(
    "SELECT (SELECT COUNT(*) FROM trace_scores) AS scores, (SELECT COUNT(*) FROM judge_scores) AS verdicts, (SELECT COUNT(*) FROM llm_calls) AS calls"
  )
  .get() as Record<string, number>
db.pragma("wal_checkpoint(TRUNCATE)")
db.close()
console.log(
  `seeded ${counts["scores"]} scores, ${counts["verdicts"]} verdicts, ${counts["calls"]} LLM call rows in ${(Number(process.hrtime.bigint() - seededAt) / 1e9).toFixed(1)} s; store ${(fs.statSync(path.join(root, "autotune.db")).size / 2 ** 20).toFixed(0)} MB`
)

// README's command form: `node dist/bin.js report`.
const runs = []
for (let i = 0; i < 3; i++) runs.push(await measureNode(["dist/bin.js", "report", "--json"], env))
const page = JSON.parse(runs[0]!.stdout.trim()) as { path: string; bytes: number }
const seconds = runs.map((r) => r.seconds).sort((a, b) => a - b)
const median = seconds[1]!
const rss = Math.max(...runs.map((r) => r.maxRssMb))
// Node and the CLI's own start, for scale: the same command form doing nothing but print its version.
const startup = await measureNode(["dist/bin.js", "--version"], env)
console.log(
  `autotune report: ${seconds.map((s) => s.toFixed(2)).join(" / ")} s (median ${median.toFixed(2)} s; of which CLI start ${startup.seconds.toFixed(2)} s), peak RSS ${rss.toFixed(0)} MB, page ${(page.bytes / 1024).toFixed(0)} KB (${(page.bytes / 2 ** 20).toFixed(2)} MB)`
)
console.log(
  `targets: under 2 s (${median < 2 ? "met" : "MISSED"}), under 1.5 MB (${page.bytes < 1.5 * 2 ** 20 ? "met" : "MISSED"})`
)
if (process.env["BENCH_KEEP"] === undefined) fs.rmSync(root, { recursive: true, force: true })
else console.log(`store kept in ${root}`)
if (median >= 2 || page.bytes >= 1.5 * 2 ** 20) process.exitCode = 1

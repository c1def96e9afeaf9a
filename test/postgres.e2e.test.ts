/**
 * The PostgreSQL store for a fleet, against a real throwaway cluster (Debian's postgresql; test set-up
 * installs it when missing), through the built CLI as each host runs it.
 */
import { spawn } from "node:child_process"
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv, jsonOut, runCli, startCli, stopWithin } from "./helpers/cli.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { type Cluster, startPostgres } from "./helpers/postgres.js"
import { traceLines, traceObject, traceFileName, TEST_DAY } from "./helpers/traces.js"
import { LEADER_LOCK } from "../src/store/Postgres.js"

const B = "response-quality"

let cluster: Cluster
let fake: FakeProvider
beforeAll(async () => {
  cluster = await startPostgres()
  fake = await startFakeProvider(
    improvableWorld([{ instructions: "Lead with the answer. BETTER." }, { instructions: "Be verbose and thorough." }])
  )
}, 120_000)
afterAll(async () => {
  await fake?.close()
  cluster?.stop()
})

const query = async <A>(url: string, text: string): Promise<Array<A>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows as Array<A>
  } finally {
    await client.end()
  }
}

/** A DotClaw host: its own home and trace dir, the same file names as every other host. */
const host = (name: string, url: string) => {
  const home = tempHome(`autotune-${name}-`)
  const traceDir = path.join(home, "traces")
  fs.mkdirSync(traceDir, { recursive: true })
  const env = { AUTOTUNE_HOME: home, AUTOTUNE_CONFIG_PATH: "", AUTOTUNE_DATABASE_URL: url, AUTOTUNE_HOST_ID: name }
  const write = (body: string, day = TEST_DAY) => fs.appendFileSync(path.join(traceDir, `trace-${day}.jsonl`), body)
  return { home, traceDir, env, write }
}

/** Turns the fake judge scores by their SCORE= marker, under a pack version. */
const scoredTurns = (name: string, from: number, count: number, score: number, startMs: number, version?: string) => {
  let body = ""
  for (let i = from; i < from + count; i++) {
    const at = startMs + (i - from) * 20_000
    const t = traceObject(i, {
      text: `turn ${name} ${i} SCORE=${score}`,
      packVersions: version === undefined ? {} : { [B]: version }
    })
    body +=
      JSON.stringify({ ...t, trace_id: `${name}-${i}`, timestamp: new Date(at).toISOString(), created_at: at }) + "\n"
  }
  return body
}

const llmEnv = () => ({
  ANTHROPIC_API_KEY: "k",
  ANTHROPIC_BASE_URL: fake.url,
  AUTOTUNE_JUDGE_BATCH: "off",
  AUTOTUNE_BEHAVIORS: B,
  AUTOTUNE_SAMPLE_SIZE: "10",
  AUTOTUNE_EVAL_MAX_TRACES: "1000",
  AUTOTUNE_JUDGE_UNSURE_HIGH: "0.5",
  AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
  AUTOTUNE_LLM_CONCURRENCY: "16"
})

type OnceJson = {
  failed: Array<string>
  stages: Record<string, { status: string; why?: string; summary?: Record<string, unknown> }>
}

/** Each host's turns get their own ids (DotClaw's are uuids): host a's turn 5 is not host b's. */
const hostLines = (name: string, from: number, count: number) =>
  traceLines(from, count, { day: TEST_DAY }).replaceAll('"trace_id":"t-', `"trace_id":"${name}-t-`)

describe("PostgreSQL store", () => {
  it("two hosts ingest 3,000 traces each at the same time: 6,000 stored, none doubled, positions per host", async () => {
    const url = await cluster.database("two_hosts")
    const [a, b] = [host("host-a", url), host("host-b", url)]
    a.write(hostLines("host-a", 0, 3_000))
    b.write(hostLines("host-b", 0, 3_000))
    const [ra, rb] = await Promise.all([runCli(["ingest", "--json"], a.env), runCli(["ingest", "--json"], b.env)])
    expect(ra.code, ra.stderr).toBe(0)
    expect(rb.code, rb.stderr).toBe(0)
    expect(jsonOut(ra)).toMatchObject({ ingested: 3_000, duplicates: 0, malformed: 0 })
    expect(jsonOut(rb)).toMatchObject({ ingested: 3_000, duplicates: 0, malformed: 0 })
    expect(await query(url, "SELECT COUNT(*)::int AS n, COUNT(DISTINCT trace_id)::int AS ids FROM traces")).toEqual([
      { n: 6_000, ids: 6_000 }
    ])
    // The same file name on both hosts, a position each.
    const positions = await query<{ host_id: string; file: string; line_no: string }>(
      url,
      "SELECT host_id, file, line_no FROM ingest_positions ORDER BY host_id"
    )
    expect(positions.map((p) => [p.host_id, path.basename(p.file), Number(p.line_no)])).toEqual([
      ["host-a", traceFileName(), 3_000],
      ["host-b", traceFileName(), 3_000]
    ])
    // Appends go on from each host's own position.
    a.write(hostLines("host-a", 3_000, 10))
    const again = await Promise.all([runCli(["ingest", "--json"], a.env), runCli(["ingest", "--json"], b.env)])
    expect(again.map((r) => jsonOut(r)["ingested"])).toEqual([10, 0])
    expect(again.map((r) => jsonOut(r)["lines"])).toEqual([10, 0])
  })

  it("two `once` at the same time: one leads, no trace judged twice, no error; the leader's packs reach the other host", async () => {
    const url = await cluster.database("two_once")
    const [a, b] = [host("host-a", url), host("host-b", url)]
    const hour = 3_600_000
    a.write(scoredTurns("a", 0, 20, 0.4, Date.now() - 3 * hour))
    b.write(scoredTurns("b", 0, 20, 0.4, Date.now() - 3 * hour + 10_000))
    const envOf = (h: ReturnType<typeof host>) => ({ ...h.env, ...llmEnv() })
    const runs = await Promise.all([runCli(["once", "--json"], envOf(a)), runCli(["once", "--json"], envOf(b))])
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    const [ja, jb] = runs.map((r) => jsonOut(r) as OnceJson)
    expect([...ja!.failed, ...jb!.failed]).toEqual([])
    // Each host ingested its own turns; evaluation ran on at least one, and where it did not, the leader lock is why.
    expect([ja!.stages["ingest"]!.summary!["ingested"], jb!.stages["ingest"]!.summary!["ingested"]]).toEqual([20, 20])
    const ledBy = [ja!, jb!].filter((j) => j.stages["eval"]!.status === "ok")
    expect(ledBy.length).toBeGreaterThanOrEqual(1)
    for (const j of [ja!, jb!])
      if (j.stages["eval"]!.status !== "ok") expect(j.stages["eval"]!.why).toMatch(/leader lock/)
    // No turn judged twice: every stage-1 verdict the triggers counted is one stored row.
    const judgedOnce = async () => {
      const [counted] = await query<{ n: number }>(
        url,
        "SELECT SUM(scored + unscored)::int AS n FROM judge_daily WHERE stage = 1"
      )
      const [stored] = await query<{ n: number; turns: number }>(
        url,
        "SELECT COUNT(*)::int AS n, COUNT(DISTINCT trace_id)::int AS turns FROM judge_scores WHERE stage = 1"
      )
      expect(counted!.n).toBe(stored!.n)
      return stored!.turns
    }
    expect(await judgedOnce()).toBeGreaterThanOrEqual(20)
    // The leader shipped a canary; the store says so, and the other host's packs dir follows at its next cycle.
    const [canary] = await query<{ version: string }>(
      url,
      `SELECT version FROM packs WHERE behavior = '${B}' AND status = 'canary'`
    )
    expect(canary).toBeDefined()
    const canaryFile = (h: ReturnType<typeof host>) => path.join(h.home, "prompts", `${B}.canary.json`)
    const leader =
      ja!.stages["deploy"]!.status === "ok" &&
      Object.keys((ja!.stages["deploy"]!.summary!["deployed"] ?? {}) as object).length > 0
        ? a
        : b
    const follower = leader === a ? b : a
    expect(JSON.parse(fs.readFileSync(canaryFile(leader), "utf8")).version).toBe(canary!.version)
    const next = await runCli(["once", "--json"], envOf(follower))
    expect(next.code, next.stderr).toBe(0)
    expect(jsonOut(next)["failed"]).toEqual([])
    // Both hosts' turns are judged by now (the other host's may have arrived after the leader's eval), each once.
    expect(await judgedOnce()).toBe(40)
    // /metrics' running totals are the fleet's: three cycles of two hosts, 40 traces, kept in the shared store.
    expect(
      await query(
        url,
        "SELECT name, labels, value FROM metric_totals WHERE name IN ('autotune_cycles_total', 'autotune_traces_ingested_total') ORDER BY name"
      )
    ).toEqual([
      { name: "autotune_cycles_total", labels: '{"outcome":"ok"}', value: 3 },
      { name: "autotune_traces_ingested_total", labels: "{}", value: 40 }
    ])
    for (const h of [a, b]) {
      expect(dotclawAccepts(canaryFile(h))).toBe(true)
      expect(dotclawAccepts(path.join(h.home, "prompts", `${B}.json`))).toBe(true)
      expect(JSON.parse(fs.readFileSync(canaryFile(h), "utf8")).version).toBe(canary!.version)
    }
    expect(fs.readFileSync(path.join(follower.home, "prompts", `${B}.json`), "utf8")).toBe(
      fs.readFileSync(path.join(leader.home, "prompts", `${B}.json`), "utf8")
    )
    // The read-only commands and the rescan work on the shared store from either host.
    const status = jsonOut(await runCli(["status", "--json"], envOf(follower))) as {
      behaviors: Array<{ behavior: string; canary: string }>
      store: unknown
    }
    expect(status.behaviors[0]).toMatchObject({ behavior: B, canary: canary!.version })
    expect(status.store).toMatchObject({
      kind: "postgres",
      location: url,
      leaderCycleRunning: false,
      hosts: [
        { host: "host-a", files: 1 },
        { host: "host-b", files: 1 }
      ]
    })
    const packs = jsonOut(await runCli(["packs", B, "--json"], envOf(follower))) as {
      history: Array<{ action: string }>
    }
    expect(packs.history.map((p) => p.action)).toEqual(["canary", "baseline"])
    const report = await runCli(["report"], envOf(follower))
    expect(report.code, report.stderr).toBe(0)
    expect(fs.readFileSync(path.join(follower.home, "report.html"), "utf8")).toContain(canary!.version)
    // Rows an older rule set stored, one holding a key it missed: the rescan walks them (by ctid) and cleans it.
    await query(
      url,
      "UPDATE traces SET redaction_version = 1, output_text = 'use sk-ant-api03-abcdefghijklmnopqrstuvwx0123 now' WHERE trace_id = 'a-0'"
    )
    await query(url, "UPDATE traces SET redaction_version = 1 WHERE trace_id LIKE 'b-%'")
    const rescan = await runCli(["redact", "--rescan", "--json"], envOf(follower))
    expect(rescan.code, rescan.stderr).toBe(0)
    expect(jsonOut(rescan)).toMatchObject({ vacuumed: true, tables: { traces: { scanned: 21, changed: 1 } } })
    expect(await query(url, "SELECT output_text FROM traces WHERE trace_id = 'a-0'")).toEqual([
      { output_text: "use <redacted_api_key> now" }
    ])
    expect(await query(url, "SELECT COUNT(*)::int AS n FROM traces WHERE redaction_version < 2")).toEqual([{ n: 0 }])
  })

  it("kill -9 in the middle of an ingest: the next run resumes, nothing lost or doubled", async () => {
    const url = await cluster.database("killed")
    const h = host("host-k", url)
    const total = 40_000
    h.write(hostLines("host-k", 0, total))
    const child = spawn(process.execPath, [path.resolve("dist/bin.js"), "ingest", "--json"], {
      env: { PATH: process.env["PATH"] ?? "", ...clockEnv(), ...h.env },
      stdio: "ignore"
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
    // Killed once some batches are committed and before the file is done.
    let stored = 0
    for (let i = 0; i < 400 && stored === 0; i++) {
      await new Promise((r) => setTimeout(r, 25))
      // Before the first run's migration there is no table yet.
      stored = await query<{ n: number }>(url, "SELECT COUNT(*)::int AS n FROM traces").then(
        (r) => r[0]!.n,
        () => 0
      )
    }
    child.kill("SIGKILL")
    expect(await exited).toBe("SIGKILL")
    const before = (await query<{ n: number }>(url, "SELECT COUNT(*)::int AS n FROM traces"))[0]!.n
    expect(before).toBeGreaterThan(0)
    expect(before).toBeLessThan(total)
    const rest = await runCli(["ingest", "--json"], h.env, { timeoutMs: 120_000 })
    expect(rest.code, rest.stderr).toBe(0)
    expect(jsonOut(rest)).toMatchObject({ ingested: total - before, duplicates: 0, malformed: 0 })
    expect(await query(url, "SELECT COUNT(*)::int AS n, COUNT(DISTINCT trace_id)::int AS ids FROM traces")).toEqual([
      { n: total, ids: total }
    ])
    expect(await query(url, "SELECT COUNT(*)::int AS n FROM trace_packs")).toEqual([{ n: 2 * total }])
  }, 180_000)

  it("a wrong database URL is one line naming the problem, password masked, exit 1", async () => {
    const h = host("host-w", "postgres://autotune:hunter2secret@127.0.0.1:1/autotune")
    const r = await runCli(["ingest"], h.env)
    expect(r.code).toBe(1)
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("autotune: error"))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/PostgreSQL store .*nothing listens there/)
    expect(r.stderr + r.stdout).not.toContain("hunter2secret")
    const config = await runCli(["config", "--json"], h.env)
    expect(config.stdout).toContain("postgres://autotune:****@127.0.0.1:1/autotune")
    expect(config.stdout).not.toContain("hunter2secret")
  })

  it("a manual deploy on another host waits while a leader's cycle holds the lock, then runs", async () => {
    const url = await cluster.database("waiting")
    const h = host("host-m", url)
    expect((await runCli(["ingest"], h.env)).code).toBe(0)
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [LEADER_LOCK])
      // A cycle while another host leads: it ingests, and one line says why it did nothing else.
      h.write(hostLines("host-m", 0, 5))
      const cycle = await runCli(["once"], h.env)
      expect(cycle.code, cycle.stderr).toBe(0)
      expect(cycle.stdout).toMatch(/^ingest: .*5 new trace\(s\)/m)
      expect(cycle.stdout).toMatch(/^judge, optimize, deploy: another host holds the fleet's leader lock/m)
      const status = await runCli(["status"], h.env)
      expect(status.stdout).toMatch(
        /^store: PostgreSQL .*hosts: host-m \(this host\) last ingest .*; a leader's cycle is running now$/m
      )
      // SIGTERM ends a command waiting for the leader lock within 5 s.
      const waiting = startCli(["deploy"], h.env)
      await new Promise((r) => setTimeout(r, 2_000))
      expect(waiting.child.exitCode).toBeNull()
      const stopped = await stopWithin(waiting)
      expect(stopped.ms).toBeLessThan(5_000)
      let done = false
      const deploying = runCli(["deploy", "--json"], h.env).then((r) => ((done = true), r))
      await new Promise((r) => setTimeout(r, 3_000))
      expect(done).toBe(false)
      await holder.query("SELECT pg_advisory_unlock($1)", [LEADER_LOCK])
      const r = await deploying
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).toContain("waiting for its cycle to end")
    } finally {
      await holder.end()
    }
  })

  it("users' reactions and retention on the shared store: reactions imported once, old turns pruned with what came from them", async () => {
    const url = await cluster.database("reactions")
    const h = host("host-r", url)
    const day = 86_400_000
    h.write(scoredTurns("old", 0, 10, 0.5, Date.now() - 30 * day, "v-old"))
    h.write(scoredTurns("new", 0, 10, 0.5, Date.now() - 3_600_000, "v-new"))
    const messagesDb = path.join(h.home, "messages.db")
    const db = new Database(messagesDb)
    db.exec(
      "CREATE TABLE user_feedback (id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, message_id TEXT, chat_jid TEXT, feedback_type TEXT NOT NULL, user_id TEXT, reason TEXT, created_at TEXT NOT NULL)"
    )
    const insert = db.prepare("INSERT INTO user_feedback (id, trace_id, feedback_type, created_at) VALUES (?, ?, ?, ?)")
    insert.run("f1", "new-1", "negative", new Date(Date.now() - 1_000_000).toISOString())
    insert.run("f2", "new-2", "positive", new Date(Date.now() - 900_000).toISOString())
    insert.run("f0", "old-1", "positive", new Date(Date.now() - 30 * day + 60_000).toISOString())
    db.close()
    const env = { ...h.env, AUTOTUNE_FEEDBACK_DB: messagesDb, AUTOTUNE_REPORT: "0" }
    const first = jsonOut(await runCli(["once", "--json"], env)) as OnceJson
    expect(first.failed).toEqual([])
    expect(first.stages["ingest"]!.summary).toMatchObject({ ingested: 20, feedback: { imported: 3 } })
    expect(first.stages["retention"]!.summary).toMatchObject({ traces: 10 })
    expect(await query(url, "SELECT COUNT(*)::int AS n FROM traces WHERE trace_id LIKE 'old-%'")).toEqual([{ n: 0 }])
    expect(await query(url, "SELECT version, COUNT(*)::int AS n FROM trace_packs GROUP BY version")).toEqual([
      { version: "v-new", n: 10 }
    ])
    // The old reaction went with its turn; the newest stays (the import resumes from it).
    expect(await query(url, "SELECT id FROM feedback ORDER BY id")).toEqual([{ id: "f1" }, { id: "f2" }])
    const again = jsonOut(await runCli(["ingest", "--json"], env))
    expect(again).toMatchObject({ ingested: 0, feedback: { imported: 0 } })
  })

  it("a host id another installation already uses is refused before anything is read (two machines both named raspberrypi)", async () => {
    const url = await cluster.database("same_name")
    const [first, second] = [host("raspberrypi", url), host("raspberrypi", url)]
    first.write(hostLines("first", 0, 5))
    second.write(hostLines("second", 0, 5))
    expect(jsonOut(await runCli(["ingest", "--json"], first.env))).toMatchObject({ ingested: 5 })
    const refused = await runCli(["ingest", "--json"], second.env)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(
      /hostId .*"raspberrypi" is already used in this store by another autotune installation; give this host its own AUTOTUNE_HOST_ID/
    )
    expect(await query(url, "SELECT COUNT(*)::int AS n FROM traces")).toEqual([{ n: 5 }])
    // Its own id fixes it; the first installation keeps its name across runs.
    expect(
      jsonOut(await runCli(["ingest", "--json"], { ...second.env, AUTOTUNE_HOST_ID: "raspberrypi-2" }))
    ).toMatchObject({ ingested: 5 })
    expect((await runCli(["ingest", "--json"], first.env)).code).toBe(0)
    expect(fs.statSync(path.join(first.home, "install-id")).mode & 0o777).toBe(0o600)
  })

  it("two daemons on one store: every cycle of both ends without a failure, no turn judged twice, SIGTERM stops both", async () => {
    const url = await cluster.database("daemons")
    const [a, b] = [host("host-da", url), host("host-db", url)]
    a.write(scoredTurns("da", 0, 15, 0.4, Date.now() - 3_600_000))
    b.write(scoredTurns("db", 0, 15, 0.4, Date.now() - 3_500_000))
    const start = (h: ReturnType<typeof host>) => {
      const child = spawn(process.execPath, [path.resolve("dist/bin.js"), "daemon"], {
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: h.home,
          ...clockEnv(),
          ...h.env,
          ...llmEnv(),
          AUTOTUNE_INTERVAL_MINUTES: "0.005",
          AUTOTUNE_REPORT: "0"
        }
      })
      const out = { stderr: "", child }
      child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()))
      return out
    }
    const daemons = [start(a), start(b)]
    const cycles = (d: { stderr: string }) => d.stderr.split("\n").filter((l) => l.includes('"cycle finished"'))
    for (let waited = 0; daemons.some((d) => cycles(d).length < 3) && waited < 60_000; waited += 200)
      await new Promise((r) => setTimeout(r, 200))
    for (const d of daemons) d.child.kill("SIGTERM")
    const codes = await Promise.all(
      daemons.map((d) => new Promise<number | null>((resolve) => d.child.on("exit", resolve)))
    )
    expect(codes).toEqual([0, 0])
    for (const d of daemons) {
      const done = cycles(d).map((l) => JSON.parse(l) as { failed: string; deploy: unknown })
      expect(done.length).toBeGreaterThanOrEqual(3)
      expect(
        done.every((c) => c.failed === "none"),
        d.stderr
      ).toBe(true)
      expect(d.stderr).not.toContain('"level":"error"')
    }
    const [counted] = await query<{ n: number }>(
      url,
      "SELECT SUM(scored + unscored)::int AS n FROM judge_daily WHERE stage = 1"
    )
    const [stored] = await query<{ n: number; turns: number }>(
      url,
      "SELECT COUNT(*)::int AS n, COUNT(DISTINCT trace_id)::int AS turns FROM judge_scores WHERE stage = 1"
    )
    expect(stored!.turns).toBe(30)
    expect(counted!.n).toBe(stored!.n)
    expect(await query(url, "SELECT COUNT(*)::int AS n FROM packs WHERE status = 'canary'")).toEqual([{ n: 1 }])
  }, 120_000)
})

import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv, jsonOut, runCli } from "./helpers/cli.js"
import { type FakeProvider, startFakeProvider } from "./helpers/fakeProvider.js"
import { leaked, privacyCorpus } from "./helpers/privacyCorpus.js"
import { traceLine, traceFileName } from "./helpers/traces.js"

// One planted value of every positive kind, each in its own trace (a corpus sample's text as the message).
const positives = privacyCorpus(1, 424242).filter((s) => s.secret !== undefined)

const writeCorpusTraces = (home: string) => {
  // DotClaw escapes message text inside its <message> envelope.
  const escape = (t: string) =>
    t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
  const body = positives.map((s, i) => traceLine(i, { text: `${escape(s.text)} SCORE=0.8` })).join("")
  fs.writeFileSync(path.join(home, "traces", traceFileName()), body)
}

const base = (home: string, fake?: FakeProvider) => ({
  AUTOTUNE_HOME: home,
  AUTOTUNE_BEHAVIORS: "response-quality",
  AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
  ...(fake === undefined ? {} : { ANTHROPIC_API_KEY: "sk-ant-test-key-0123456789", ANTHROPIC_BASE_URL: fake.url })
})

/** Every planted value that survives anywhere in the bytes of the database file and its WAL. */
const leaksInStore = (dbPath: string) => {
  const bytes = [dbPath, `${dbPath}-wal`]
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.readFileSync(f).toString("latin1"))
    .join("\n")
  return positives.filter((s) => leaked(bytes, s.secret!)).map((s) => `${s.kind}: ${s.secret} in ${s.text}`)
}

const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8)

let fake: FakeProvider | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

describe("nothing private leaves the machine (built CLI)", () => {
  it("ingest stores none of the planted values of any kind", async () => {
    const home = tempHome()
    writeCorpusTraces(home)
    const result = await runCli(["ingest", "--json"], base(home))
    expect(result.code).toBe(0)
    expect((jsonOut(result) as { ingested: number }).ingested).toBe(positives.length)
    expect(positives.length).toBeGreaterThanOrEqual(50)
    expect(leaksInStore(path.join(home, "autotune.db"))).toEqual([])
  })

  it("the egress guard cleans requests built from traces stored unredacted; redact --rescan then cleans the store and its free pages", async () => {
    fake = await startFakeProvider()
    const home = tempHome()
    writeCorpusTraces(home)
    const env = base(home, fake)
    expect((await runCli(["ingest"], { ...env, AUTOTUNE_REDACT: "0" })).code).toBe(0)
    const dbPath = path.join(home, "autotune.db")
    expect(leaksInStore(dbPath).length).toBe(positives.length)

    // Every trace judged (not the daily sample), so every planted value is in some request to the provider;
    // they go in a Message Batch (the default), collected in the same run.
    const evaluated = await runCli(["eval", "--json", "--wait-batches"], {
      ...env,
      AUTOTUNE_JUDGE_DAILY_SAMPLE: "0",
      AUTOTUNE_JUDGE_BATCH_POLL_SECONDS: "0.05"
    })
    expect(evaluated.code).toBe(0)
    const summary = jsonOut(evaluated) as { egressRedactions: number; behaviors: Record<string, { scored: number }> }
    expect(summary.behaviors["response-quality"]!.scored).toBe(positives.length)
    expect(summary.egressRedactions).toBeGreaterThanOrEqual(positives.length)
    const sent = fake.requests.map((r) => JSON.stringify(r.body)).join("\n")
    expect(positives.filter((s) => leaked(sent, s.secret!)).map((s) => s.kind)).toEqual([])
    // Logged without the value: the kinds and a count.
    expect(evaluated.stderr).toMatch(/egress guard replaced \d+ value\(s\) in a judge request/)
    for (const s of positives) expect(leaked(evaluated.stderr, s.secret!)).toBe(false)

    const status = jsonOut(await runCli(["status", "--json"], env)) as { egressRedactions: number }
    expect(status.egressRedactions).toBe(summary.egressRedactions)

    const cleaned = await runCli(["redact", "--rescan", "--json"], env)
    expect(cleaned.code).toBe(0)
    const report = jsonOut(cleaned) as {
      tables: Record<string, { scanned: number; changed: number }>
      vacuumed: boolean
      toVersion: number
    }
    expect(report.tables["traces"]!.changed).toBe(positives.length)
    expect(report.vacuumed).toBe(true)
    expect(leaksInStore(dbPath)).toEqual([])
    const db = new Database(dbPath, { readonly: true })
    expect(db.prepare("SELECT COUNT(*) AS n FROM traces WHERE redaction_version < ?").get(report.toVersion)).toEqual({
      n: 0
    })
    db.close()
    // A second rescan finds nothing left to do.
    const again = jsonOut(await runCli(["redact", "--rescan", "--json"], env)) as {
      tables: Record<string, { scanned: number }>
    }
    expect(again.tables["traces"]!.scanned).toBe(0)
  })

  it("after an upgrade of the rules, the next cycle re-cleans what older rules stored (and leaves AUTOTUNE_REDACT=0 rows alone)", async () => {
    const home = tempHome()
    fs.writeFileSync(
      path.join(home, "traces", traceFileName()),
      traceLine(1, { text: "hello" }) + traceLine(2, { text: "hi" })
    )
    const env = base(home)
    expect((await runCli(["ingest"], env)).code).toBe(0)
    const dbPath = path.join(home, "autotune.db")
    // What the 2.0 rule set (v1) let through: a national phone number and a password said in words.
    const db = new Database(dbPath)
    db.prepare("UPDATE traces SET input_text = ?, redaction_version = 1 WHERE line_no = 1").run(
      "call the plumber on 020 7946 0958, my password is Tr0ub4dor&3"
    )
    db.prepare("UPDATE traces SET input_text = ?, redaction_version = 0 WHERE line_no = 2").run(
      "stored unredacted by choice: 020 7946 0958"
    )
    db.prepare("DELETE FROM store_meta WHERE key = 'redaction_version'").run()
    db.close()

    const once = await runCli(["once", "--json"], env)
    expect(once.code).toBe(0)
    expect(
      (jsonOut(once) as { rescan: { tables: { traces: { changed: number } } } }).rescan.tables.traces.changed
    ).toBe(1)
    expect(once.stderr).toMatch(/redaction rules changed \(now v\d+\): 2 value\(s\) in 1 stored row\(s\) cleaned/)
    const after = new Database(dbPath, { readonly: true })
    const rows = after
      .prepare("SELECT line_no AS line, input_text AS text FROM traces ORDER BY line_no")
      .all() as Array<{ line: number; text: string }>
    after.close()
    expect(rows[0]!.text).toBe("call the plumber on <redacted_phone>, my password is <redacted_password>")
    expect(rows[1]!.text).toContain("020 7946 0958")
    // Done once: the next cycle does not rescan.
    expect((jsonOut(await runCli(["once", "--json"], env)) as { rescan: unknown }).rescan).toBeNull()
  })

  it("the database, WAL, shared memory, lock and reports are 0600; a loose store file is tightened with a warning, a home that exists is left as it is", async () => {
    const home = tempHome()
    fs.chmodSync(home, 0o755)
    // Today's traces, so the behavior tuner has a window to report on.
    const day = new Date().toISOString().slice(0, 10)
    fs.writeFileSync(path.join(home, "traces", `trace-${day}.jsonl`), traceLine(1, { text: "hello", day }))
    const env = { ...base(home), AUTOTUNE_BEHAVIOR_ENABLED: "1", AUTOTUNE_BEHAVIOR_MIN_TRACES: "1" }
    const first = await runCli(["once"], env)
    expect(first.code).toBe(0)
    // The home existed (it may be DotClaw's, whose container reads prompts/ in it): autotune does not change it.
    expect(first.stderr).not.toMatch(/tightened/)
    expect(mode(home)).toBe("755")
    const dbPath = path.join(home, "autotune.db")
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`].filter((f) => fs.existsSync(f)))
      expect(mode(f), f).toBe("600")
    const reports = fs.readdirSync(path.join(home, "reports"))
    expect(reports.length).toBeGreaterThan(0)
    for (const r of reports) expect(mode(path.join(home, "reports", r))).toBe("600")

    fs.chmodSync(dbPath, 0o644)
    const second = await runCli(["status"], env)
    expect(second.code).toBe(0)
    expect(second.stderr).toMatch(/tightened .*autotune\.db from 0644 to 0600/)
    expect(mode(dbPath)).toBe("600")
    const quiet = await runCli(["status"], env)
    expect(quiet.stderr).not.toMatch(/tightened/)

    // A home autotune creates itself is private from the start: nothing to tighten, no warning.
    const fresh = path.join(tempHome(), "new-home")
    const created = await runCli(["once"], { AUTOTUNE_HOME: fresh })
    expect(created.code).toBe(0)
    expect(created.stderr).not.toMatch(/tightened/)
    expect(mode(fresh)).toBe("700")
  })
})

describe("what autotune creates has its mode whatever the umask (built CLI)", () => {
  for (const umask of ["000", "077"]) {
    it(`umask ${umask}: init and once make private things 0600/0700 and what DotClaw reads 0644/0755`, () => {
      const home = path.join(tempHome(), "new-home")
      const day = new Date().toISOString().slice(0, 10)
      const run = (args: string) =>
        execFileSync("sh", ["-c", `umask ${umask} && exec "${process.execPath}" dist/bin.js ${args}`], {
          env: {
            PATH: process.env["PATH"] ?? "",
            HOME: home,
            ...clockEnv(),
            AUTOTUNE_HOME: home,
            AUTOTUNE_BEHAVIOR_ENABLED: "1",
            AUTOTUNE_BEHAVIOR_MIN_TRACES: "1"
          },
          stdio: ["ignore", "pipe", "pipe"]
        })
      run("init --yes")
      fs.writeFileSync(path.join(home, "traces", `trace-${day}.jsonl`), traceLine(1, { text: "hello", day }))
      run("once")
      const dbPath = path.join(home, "autotune.db")
      expect(mode(home)).toBe("700")
      for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, path.join(home, "autotune.json")].filter((f) =>
        fs.existsSync(f)
      ))
        expect(mode(f), f).toBe("600")
      expect(mode(path.join(home, "reports"))).toBe("700")
      for (const r of fs.readdirSync(path.join(home, "reports")))
        expect(mode(path.join(home, "reports", r)), r).toBe("600")
      // DotClaw reads the packs and behavior.json, perhaps as another user (its container mounts prompts/).
      expect(mode(path.join(home, "prompts"))).toBe("755")
      expect(mode(path.join(home, "traces"))).toBe("755")
    })
  }
})

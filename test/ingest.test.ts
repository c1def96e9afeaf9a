import Database from "better-sqlite3"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type Batch, LineBatcher, mergeBatches } from "../src/ingest/Batch.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import { appLayer, tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { traceLine, traceLines, traceFileName, daysAgo } from "./helpers/traces.js"

const FIXTURE = new URL("./fixtures/dotclaw/scenario-traces.jsonl", import.meta.url)

const ingest = (home: string, overrides = {}) =>
  Effect.runPromise(Effect.flatMap(TraceSource, (s) => s.ingest()).pipe(Effect.provide(appLayer(home, overrides))))

const db = (home: string) => new Database(path.join(home, "autotune.db"), { readonly: true })
const count = (home: string, table: string) => {
  const d = db(home)
  try {
    return (d.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  } finally {
    d.close()
  }
}
const traceFile = (home: string, name = traceFileName()) => path.join(home, "traces", name)

describe("ingest", () => {
  it("ingests DotClaw's scenario fixture: 16 traces, then 0 on a second run", async () => {
    const home = tempHome()
    fs.copyFileSync(FIXTURE, traceFile(home, "trace-2026-01-01.jsonl"))
    const first = await ingest(home)
    expect(first).toMatchObject({ files: 1, lines: 16, ingested: 16, duplicates: 0, malformed: 0 })
    const second = await ingest(home)
    expect(second).toMatchObject({ lines: 0, ingested: 0, duplicates: 0 })
    expect(count(home, "traces")).toBe(16)
    const d = db(home)
    const errors = d.prepare("SELECT COUNT(*) AS n FROM traces WHERE is_error = 1").get() as { n: number }
    const row = d
      .prepare("SELECT ts, tool_call_count, message_text FROM traces WHERE chat_id = 'memory:1'")
      .get() as Record<string, unknown>
    d.close()
    expect(errors.n).toBe(5)
    expect(row).toEqual({
      ts: "2026-01-01T00:00:00.000Z",
      tool_call_count: 3,
      message_text: "[SCENARIO:memory] recall preference"
    })
  })

  it("adds nothing when a file is copied or its position is lost", async () => {
    const home = tempHome()
    fs.copyFileSync(FIXTURE, traceFile(home, "trace-2026-01-01.jsonl"))
    await ingest(home)
    fs.copyFileSync(FIXTURE, traceFile(home, "copy.jsonl"))
    const copied = await ingest(home)
    expect(copied).toMatchObject({ lines: 16, ingested: 0, duplicates: 16 })
    const d = new Database(path.join(home, "autotune.db"))
    d.prepare("DELETE FROM ingest_positions").run()
    d.close()
    const lost = await ingest(home)
    expect(lost).toMatchObject({ lines: 32, ingested: 0, duplicates: 32 })
    expect(count(home, "traces")).toBe(16)
  })

  it("leaves a half-written last line for the next run", async () => {
    const home = tempHome()
    const full = traceLine(2)
    fs.writeFileSync(traceFile(home), traceLines(0, 2) + full.slice(0, 40))
    const first = await ingest(home)
    expect(first).toMatchObject({ lines: 2, ingested: 2, malformed: 0, pendingPartial: 1 })
    fs.appendFileSync(traceFile(home), full.slice(40))
    const second = await ingest(home)
    expect(second).toMatchObject({ lines: 1, ingested: 1, malformed: 0, pendingPartial: 0 })
    expect(count(home, "traces")).toBe(3)
  })

  it("reads a truncated or rotated file again from the start without doubling", async () => {
    const home = tempHome()
    fs.writeFileSync(traceFile(home), traceLines(0, 10))
    await ingest(home)
    fs.writeFileSync(traceFile(home), traceLines(100, 3))
    const after = await ingest(home)
    expect(after).toMatchObject({ restarted: 1, lines: 3, ingested: 3 })
    // Same size, different content (replaced in place): still detected by the head hash.
    fs.writeFileSync(traceFile(home), traceLines(200, 3))
    const replaced = await ingest(home)
    expect(replaced).toMatchObject({ ingested: 3 })
    expect(count(home, "traces")).toBe(16)
  })

  it("counts duplicate lines once", async () => {
    const home = tempHome()
    fs.writeFileSync(traceFile(home), traceLine(1) + traceLine(1) + traceLine(2))
    const fixtureLine = fs.readFileSync(FIXTURE, "utf8").split("\n")[0] + "\n"
    fs.writeFileSync(traceFile(home, "b.jsonl"), fixtureLine + fixtureLine)
    expect(await ingest(home)).toMatchObject({ lines: 5, ingested: 3, duplicates: 2 })
  })

  it("a trace seen again with other pack versions keeps the versions it was first stored with", async () => {
    const home = tempHome()
    fs.writeFileSync(
      traceFile(home),
      traceLine(1, { packVersions: { "tool-calling": "tc-1" } }) +
        traceLine(1, { packVersions: { "tool-calling": "tc-2" } })
    )
    expect(await ingest(home)).toMatchObject({ ingested: 1, duplicates: 1 })
    const d = db(home)
    expect(d.prepare("SELECT behavior, version FROM trace_packs").all()).toEqual([
      { behavior: "tool-calling", version: "tc-1" }
    ])
    d.close()
  })

  it("skips, counts and keeps malformed lines with file:line and reason, and goes on", async () => {
    const home = tempHome()
    fs.writeFileSync(
      traceFile(home),
      traceLine(0) +
        "{not json\n" +
        '{"input_text":"no time, key sk-ant-api03-abcdefghijklmnopqrstu"}\n' +
        "\n" +
        traceLine(1)
    )
    const summary = await ingest(home)
    expect(summary).toMatchObject({ lines: 5, ingested: 2, malformed: 2 })
    const d = db(home)
    const rows = d
      .prepare("SELECT file, line_no, reason, excerpt FROM malformed_lines ORDER BY line_no")
      .all() as Array<Record<string, string | number>>
    d.close()
    expect(rows.map((r) => [path.basename(String(r.file)), r.line_no])).toEqual([
      [traceFileName(), 2],
      [traceFileName(), 3]
    ])
    expect(rows[0]?.reason).toContain("invalid JSON")
    expect(rows[1]?.reason).toBe("missing timestamp")
    expect(String(rows[1]?.excerpt)).not.toContain("abcdefghijklmnopqrstu")
  })

  it("survives an empty file, a deleted file, a missing trace dir and invalid UTF-8", async () => {
    const home = tempHome()
    fs.writeFileSync(traceFile(home, "empty.jsonl"), "")
    const bad = Buffer.concat([
      Buffer.from('{"timestamp":"2026-01-01T00:00:00Z","input_text":"caf'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}\n')
    ])
    fs.writeFileSync(traceFile(home, "bad-utf8.jsonl"), bad)
    fs.writeFileSync(traceFile(home), traceLines(0, 3))
    expect(await ingest(home)).toMatchObject({ files: 3, ingested: 4, malformed: 0 })
    fs.rmSync(traceFile(home))
    expect(await ingest(home)).toMatchObject({ files: 2, ingested: 0 })
    const d = db(home)
    const positions = d.prepare("SELECT COUNT(*) AS n FROM ingest_positions").get() as { n: number }
    d.close()
    expect(positions.n).toBe(2)
    const noDir = tempHome()
    fs.rmSync(path.join(noDir, "traces"), { recursive: true })
    expect(await ingest(noDir)).toMatchObject({ files: 0, ingested: 0 })
  })

  it("attributes pack versions per behavior in the indexed table", async () => {
    const home = tempHome()
    fs.writeFileSync(
      traceFile(home),
      traceLines(0, 4, { packVersions: { "tool-calling": "tc-canary", "response-quality": "rq-1" } }) +
        traceLines(10, 2)
    )
    await ingest(home)
    const d = db(home)
    const rows = d
      .prepare(
        "SELECT behavior, version, COUNT(*) AS n FROM trace_packs GROUP BY behavior, version ORDER BY behavior, version"
      )
      .all()
    const plan = d
      .prepare("EXPLAIN QUERY PLAN SELECT trace_id FROM trace_packs WHERE behavior = ? AND version = ?")
      .all("tool-calling", "x") as Array<{ detail: string }>
    // The judge's "is this a canary turn" test is one seek on the whole key.
    const seek = d
      .prepare(
        "EXPLAIN QUERY PLAN SELECT 1 FROM trace_packs WHERE behavior IN (?, '*') AND version = ? AND created_at = ? AND trace_id = ?"
      )
      .all("tool-calling", "x", 1, "t") as Array<{ detail: string }>
    d.close()
    expect(seek.map((p) => p.detail).join(" ")).toContain(
      "USING PRIMARY KEY (behavior=? AND version=? AND created_at=? AND trace_id=?)"
    )
    expect(rows).toEqual([
      { behavior: "response-quality", version: "rq-1", n: 6 },
      { behavior: "tool-calling", version: "tc-1", n: 2 },
      { behavior: "tool-calling", version: "tc-canary", n: 4 }
    ])
    expect(plan.map((p) => p.detail).join(" ")).toContain("USING PRIMARY KEY (behavior=? AND version=?)")
  })

  it("loses and doubles nothing when the process is killed mid-ingest", async () => {
    const home = tempHome()
    const total = 60_000
    const body = traceLines(0, total)
    fs.writeFileSync(traceFile(home), body)
    const env = { ...process.env, AUTOTUNE_HOME: home, AUTOTUNE_CONFIG_PATH: "" }
    const child = spawn(process.execPath, ["dist/bin.js", "ingest"], { env, stdio: "ignore" })
    const dbFile = path.join(home, "autotune.db")
    // Kill it once at least one batch is committed and before it finishes.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (child.exitCode !== null) {
          clearInterval(timer)
          reject(new Error("ingest finished before it could be killed; make the file larger"))
          return
        }
        if (!fs.existsSync(dbFile)) return
        try {
          const d = new Database(dbFile, { readonly: true, timeout: 50 })
          const row = d.prepare("SELECT byte_offset FROM ingest_positions").get() as { byte_offset: number } | undefined
          d.close()
          if (row !== undefined && row.byte_offset > 0) {
            child.kill("SIGKILL")
            clearInterval(timer)
            resolve()
          }
        } catch {
          // the schema may not exist yet
        }
      }, 5)
    })
    await new Promise((r) => child.once("exit", r))
    const d = db(home)
    const saved = d.prepare("SELECT byte_offset, line_no FROM ingest_positions").get() as {
      byte_offset: number
      line_no: number
    }
    const rows = (d.prepare("SELECT COUNT(*) AS n FROM traces").get() as { n: number }).n
    d.close()
    const linesBefore = Buffer.from(body).subarray(0, saved.byte_offset).toString().split("\n").length - 1
    expect(saved.line_no).toBe(linesBefore)
    expect(rows).toBe(linesBefore)
    expect(rows).toBeLessThan(total)
    const rest = await ingest(home)
    expect(rest).toMatchObject({ ingested: total - rows, duplicates: 0 })
    expect(count(home, "traces")).toBe(total)
  })
})

describe("the SQLite writer thread", () => {
  // The built CLI writes through its writer thread (dist/store/sqliteWriterWorker.js); in this process the
  // sources run and the row writer has no built thread beside it, so it writes inline. Both must store the same.
  const tables = (home: string) => {
    const d = db(home)
    try {
      return {
        traces: d
          .prepare("SELECT * FROM traces ORDER BY trace_id")
          .all()
          .map((r) => ({ ...(r as object), ingested_at: 0 })),
        packs: d.prepare("SELECT * FROM trace_packs ORDER BY trace_id, behavior").all(),
        // line_hash covers the file's path, which differs between the two homes.
        malformed: d
          .prepare("SELECT * FROM malformed_lines ORDER BY file, byte_offset")
          .all()
          .map((r) => ({ ...(r as object), seen_at: 0, line_hash: "" })),
        positions: d
          .prepare("SELECT host_id, file, byte_offset, line_no, head_hash FROM ingest_positions ORDER BY file")
          .all()
      }
    } finally {
      d.close()
    }
  }
  const write = (home: string, first: boolean) => {
    // More lines than one transaction holds (20,000), duplicates within and across files and transactions,
    // a trace seen again with other packs, malformed, blank and CRLF lines, and a half-written last line.
    let body = ""
    for (let i = 0; i < 45_000; i++) {
      const n = first ? i : 45_000 + i
      body +=
        i % 997 === 0
          ? "{not json\n"
          : i % 1013 === 0
            ? "\n"
            : traceLine(
                i % 1500 === 0 ? n - 1 : n,
                i % 7 === 0 ? { packVersions: { "response-quality": `rq-${i % 3}` } } : {}
              )
      if (i % 4001 === 0) body = body.replace(/\n$/, "\r\n")
    }
    fs.appendFileSync(traceFile(home), body + (first ? '{"trace_id": "half' : ""))
    if (first) fs.writeFileSync(traceFile(home, traceFileName(daysAgo(0))), traceLines(40_000, 3000))
  }

  it("a statement the thread cannot run fails the ingest in one line; the committed transactions stay, the failed one leaves nothing", async () => {
    const home = tempHome()
    const env = { AUTOTUNE_HOME: home }
    expect((await runCli(["ingest"], env)).code).toBe(0) // creates the store
    const rw = new Database(path.join(home, "autotune.db"))
    rw.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON traces WHEN NEW.trace_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
    )
    rw.close()
    const lines = traceLines(0, 25_000).split("\n")
    lines[22_000] = traceLine(22_000)
      .trim()
      .replace(/"trace_id":"[^"]*"/, '"trace_id":"boom"')
    fs.writeFileSync(traceFile(home), lines.join("\n"))
    const failed = await runCli(["ingest"], env)
    expect(failed.code).toBe(1)
    expect(failed.stderr.trim().split("\n")).toHaveLength(1)
    expect(failed.stderr).toMatch(/boom refused.*20000 new trace\(s\) were saved before it/)
    const d = db(home)
    expect(d.prepare("SELECT COUNT(*) AS n FROM traces").get()).toEqual({ n: 20_000 })
    expect(d.prepare("SELECT COUNT(*) AS n FROM trace_packs").get()).toEqual({ n: 40_000 })
    expect(d.prepare("SELECT line_no FROM ingest_positions").get()).toEqual({ line_no: 20_000 })
    d.close()
    const fix = new Database(path.join(home, "autotune.db"))
    fix.exec("DROP TRIGGER refuse")
    fix.close()
    expect(jsonOut(await runCli(["ingest", "--json"], env))).toMatchObject({ ingested: 5_000, duplicates: 0 })
    expect(count(home, "traces")).toBe(25_000)
  }, 60_000)

  it("turns of a megabyte go to the thread a few at a time and are stored whole", async () => {
    const home = tempHome()
    const big = "lorem ipsum dolor sit amet ".repeat(40_000)
    fs.writeFileSync(
      traceFile(home),
      Array.from({ length: 30 }, (_, i) => traceLine(i, { text: `${big}${i}` })).join("")
    )
    const result = jsonOut(await runCli(["ingest", "--json"], { AUTOTUNE_HOME: home }))
    expect(result).toMatchObject({ ingested: 30, duplicates: 0, malformed: 0 })
    const d = db(home)
    const rows = d.prepare("SELECT length(message_text) AS n FROM traces ORDER BY line_no").all() as Array<{
      n: number
    }>
    d.close()
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 30 }, (_, i) => big.length + String(i).length))
  }, 60_000)

  it("stores exactly what the inline writer stores, through two runs", async () => {
    const threaded = tempHome()
    const inline = tempHome()
    const env = { AUTOTUNE_HOME: threaded, AUTOTUNE_CONFIG_PATH: "" }
    for (const first of [true, false]) {
      write(threaded, first)
      write(inline, first)
      const cli = jsonOut(await runCli(["ingest", "--json"], env)) as Record<string, unknown>
      const here = await ingest(inline)
      const summary = ({ lines, ingested, duplicates, malformed, pendingPartial }: Record<string, unknown>) => ({
        lines,
        ingested,
        duplicates,
        malformed,
        pendingPartial
      })
      expect(summary(cli)).toEqual(summary(here as unknown as Record<string, unknown>))
      expect(here.ingested).toBeGreaterThan(20_000)
    }
    const [a, b] = [tables(threaded), tables(inline)]
    expect(a.traces.length).toBeGreaterThan(80_000)
    expect(a.malformed.length).toBeGreaterThan(80)
    for (const key of ["traces", "packs", "malformed", "positions"] as const) {
      const [x, y] = [
        a[key].map((r) => JSON.stringify(r).replaceAll(threaded, "HOME")),
        b[key].map((r) => JSON.stringify(r).replaceAll(inline, "HOME"))
      ]
      expect(x.length).toBe(y.length)
      const first = x.findIndex((row, i) => row !== y[i])
      expect({ key, first, row: x[first] }).toEqual({ key, first: -1, row: undefined })
    }
  }, 120_000)
})

describe("line batches", () => {
  it("cut lines across reads, drop CR, count blank lines, and carry each batch's file position", () => {
    const lines = [traceLine(1), "\n", traceLine(2).replace("\n", "\r\n"), "{not json\n", traceLine(3)]
    const bytes = Buffer.from(lines.join("") + '{"half')
    const batcher = new LineBatcher("f.jsonl", true, 100, 7, 3)
    // Two reads that split the third line in the middle: the unfinished part is fed again with the next bytes.
    const cut = Buffer.byteLength(lines.slice(0, 2).join("")) + 20
    const first = batcher.feed(bytes, 0, cut)
    expect(first.batch).toBeUndefined()
    const rest = Buffer.concat([bytes.subarray(first.next, cut), bytes.subarray(cut)])
    // The batch fills at the third line and feeding stops there, before the lines after it.
    const second = batcher.feed(rest, 0, rest.length)
    const full = second.batch!
    const third = Buffer.byteLength(lines.slice(0, 3).join(""))
    expect(full).toMatchObject({ lines: 3, traces: 2, byteOffset: 100 + third, lineNo: 10 })
    expect(full.parsed.map((p) => p.lineNo)).toEqual([8, 10])
    expect(full.parsed[1]!.byteOffset).toBe(100 + Buffer.byteLength(lines.slice(0, 2).join("")))
    expect(full.parsed[1]!.trace.inputText).not.toContain("\r")
    const after = batcher.feed(rest, second.next, rest.length)
    expect(after.batch).toBeUndefined()
    const last = batcher.take()!
    expect(last).toMatchObject({ lines: 2, traces: 1, lineNo: 12, malformedKinds: ["invalid JSON"] })
    expect(last.byteOffset).toBe(100 + Buffer.byteLength(lines.join("")))
    expect(batcher.take()).toBeUndefined()
    // What is left unread is the half-written last line.
    expect(rest.length - after.next).toBe(Buffer.byteLength('{"half'))
  })

  it("end a batch at its byte budget too, so batches of large turns stay small", () => {
    const big = "x".repeat(3000)
    const bytes = Buffer.from(Array.from({ length: 6 }, (_, i) => traceLine(i, { text: big })).join(""))
    const lineBytes = bytes.length / 6
    const batcher = new LineBatcher("f.jsonl", true, 0, 0, 1000, undefined, 2 * lineBytes)
    const first = batcher.feed(bytes, 0, bytes.length)
    expect(first.batch).toMatchObject({ lines: 2, traces: 2, byteOffset: 2 * lineBytes })
    const second = batcher.feed(bytes, first.next, bytes.length)
    expect(second.batch).toMatchObject({ lines: 2, byteOffset: 4 * lineBytes })
  })

  it("merge consecutive batches into one: summed counts, every malformed line, the last position", () => {
    const bytes = Buffer.from(traceLines(1, 3) + "{bad\n" + traceLine(4) + "\n")
    const batcher = new LineBatcher("f.jsonl", true, 0, 0, 2, () => undefined)
    const batches: Array<Batch> = []
    for (let at = 0, next = batcher.feed(bytes, 0, bytes.length); ; next = batcher.feed(bytes, at, bytes.length)) {
      at = next.next
      if (next.batch === undefined) break
      batches.push(next.batch)
    }
    expect(batcher.take()).toBeUndefined()
    expect(batches).toHaveLength(3)
    expect(mergeBatches(batches)).toMatchObject({
      lines: 6,
      traces: 4,
      malformedKinds: ["invalid JSON"],
      lineNo: 6,
      byteOffset: bytes.length,
      parsed: []
    })
    expect(mergeBatches(batches).malformed.map((m) => m.line_no)).toEqual([4])
  })

  it("hand each parsed line to a sink before the batch it belongs to is returned, and no line of the next", () => {
    const bytes = Buffer.from(traceLines(1, 5))
    const sunk: Array<number> = []
    const batcher = new LineBatcher("f.jsonl", true, 0, 0, 2, (p) => sunk.push(p.lineNo))
    const first = batcher.feed(bytes, 0, bytes.length)
    expect(first.batch).toMatchObject({ lines: 2, traces: 2, parsed: [] })
    expect(sunk).toEqual([1, 2])
    const second = batcher.feed(bytes, first.next, bytes.length)
    expect(second.batch).toMatchObject({ lines: 2, traces: 2 })
    expect(sunk).toEqual([1, 2, 3, 4])
    expect(batcher.feed(bytes, second.next, bytes.length).batch).toBeUndefined()
    expect(batcher.take()).toMatchObject({ lines: 1, traces: 1, lineNo: 5, byteOffset: bytes.length })
    expect(sunk).toEqual([1, 2, 3, 4, 5])
  })
})

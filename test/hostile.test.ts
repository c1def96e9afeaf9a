/**
 * No single line can stop ingest: generated hostile lines through parse -> normalize -> redact -> store, each
 * between good lines. The worst a line may cause is being counted malformed with a reason, or being stored
 * with what was too long or too deep cut and marked; every good line goes in, and the next run has nothing
 * left to do (no line that fails every run).
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { parseTraceLine } from "../src/ingest/Parse.js"
import { type Batch, fileBatches, LineBatcher } from "../src/ingest/Batch.js"
import { TraceSource } from "../src/ingest/Ingest.js"
import { messageElements } from "../src/Domain/Xml.js"
import {
  cutLongRuns,
  DEEP_MARK,
  LONG_RUN_CHARS,
  MAX_DEPTH,
  redactDeep,
  redactEnvelope,
  redactText
} from "../src/privacy/Redactor.js"
import { appLayer, tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { TEST_DAY, traceFileName, traceLine } from "./helpers/traces.js"

/** A small seeded generator, so a failing case can be reproduced from its seed. */
const generator = (seed: number) => {
  let s = seed >>> 0 || 1
  const next = () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 2 ** 32
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[int(0, xs.length - 1)]!
  return { next, int, pick }
}

const at = `${TEST_DAY}T12:00:00.000Z`
const nested = (depth: number, leaf: unknown, asObject: boolean): unknown => {
  let v = leaf
  for (let i = 0; i < depth; i++) v = asObject ? { k: v } : [v]
  return v
}

/** Hostile lines (as raw bytes: some are not valid UTF-8), each with the kind it stands for. */
const hostileLines = (seed: number, n: number): Array<{ kind: string; bytes: Buffer }> => {
  const g = generator(seed)
  const json = (kind: string, fields: Record<string, unknown>) => ({
    kind,
    bytes: Buffer.from(
      JSON.stringify({ trace_id: `trace-hostile-${seed}-${kind}-${g.int(0, 1e9)}`, timestamp: at, ...fields })
    )
  })
  const makers: Array<() => { kind: string; bytes: Buffer }> = [
    () =>
      json("base64 photo", {
        input_text: `look data:image/png;base64,${randomBytes(g.int(3_000, 600_000)).toString("base64")} ok`,
        output_text: "nice"
      }),
    () =>
      json("one-letter run", {
        input_text: g.pick(["a", "1", "=", "-", "@", "."]).repeat(g.int(4_000, 2_000_000)),
        output_text: "x"
      }),
    () =>
      json("deep arrays", {
        input_text: "hi",
        extra: nested(g.int(60, 5_000), "leaf sk-ant-api03-abcdefghijklmnopqrstuv", false)
      }),
    () =>
      json("deep objects", {
        input_text: "hi",
        tool_calls: [{ name: "t", args: nested(g.int(60, 3_000), "password=hunter2x", true) }]
      }),
    () =>
      json("many keys", {
        input_text: "hi",
        extra: Object.fromEntries(
          Array.from({ length: g.int(1_000, 50_000) }, (_, i) => [`k${i}`, `v${i} ana@example.com`])
        )
      }),
    () => ({
      kind: "prototype keys",
      bytes: Buffer.from(
        `{"trace_id":"trace-proto-${seed}-${g.int(0, 1e9)}","timestamp":"${at}","input_text":"hi","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"extra":{"__proto__":{"polluted":"yes"}},"tool_calls":[{"name":"t","args":{"__proto__":{"polluted":"yes"}}}]}`
      )
    }),
    () => json("NUL bytes", { input_text: `a\u0000b${"\u0000".repeat(g.int(1, 100_000))}c`, output_text: "\u0000" }),
    () =>
      json("lone surrogates", { input_text: `x${"\ud800".repeat(g.int(1, 1000))}y\udfff z`, output_text: "\udbff" }),
    () => ({
      kind: "invalid UTF-8",
      bytes: Buffer.concat([
        Buffer.from(`{"trace_id":"trace-utf-${seed}-${g.int(0, 1e9)}","timestamp":"${at}","input_text":"caf`),
        randomBytes(g.int(1, 5_000)).map((b) => (b === 10 ? 0xff : b)),
        Buffer.from('"}')
      ])
    }),
    () =>
      json("repeated shapes", {
        input_text: g
          .pick([
            "a@b.co ",
            "password: ",
            "key=",
            "Bearer ",
            "https://u:p@h.io/ ",
            "<message>",
            "eyJabcdefghi-",
            "-u x:y ",
            "+1 555 "
          ])
          .repeat(g.int(1_000, 200_000))
      }),
    () =>
      json("huge tool list", {
        input_text: "hi",
        tool_calls: Array.from({ length: g.int(1_000, 20_000) }, (_, i) => ({
          name: `t${i}`,
          ok: i % 2 === 0,
          args: { q: "x" }
        }))
      }),
    () => ({
      kind: "truncated JSON",
      bytes: Buffer.from(`{"trace_id":"trace-trunc","timestamp":"${at}","input_text":"${"a".repeat(g.int(10, 10_000))}`)
    }),
    () => ({
      kind: "deep raw nesting",
      bytes: Buffer.from(
        `{"trace_id":"trace-raw-${seed}","timestamp":"${at}","input_text":"hi","extra":${"[".repeat(100_000)}${"]".repeat(100_000)}}`
      )
    }),
    () => json("long key", { input_text: "hi", extra: { [`k${"y".repeat(g.int(5_000, 200_000))}`]: "v" } })
  ]
  return Array.from({ length: n }, (_, i) => makers[i % makers.length]!())
}

/** The longest run of non-space characters (as the redactor counts them) in any string inside `value`, keys included. */
const longestRun = (value: unknown): number => {
  if (typeof value === "string") {
    let best = 0
    for (const run of value.split(/[\u0000-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/))
      best = Math.max(best, run.length)
    return best
  }
  if (value === null || typeof value !== "object") return 0
  let best = 0
  for (const [k, v] of Object.entries(value)) best = Math.max(best, longestRun(k), longestRun(v))
  return best
}

describe("hostile lines", () => {
  it("the parser never throws: every generated line is a trace or a malformed line with a reason, redaction on and off", () => {
    for (const seed of [1, 2, 3]) {
      for (const { kind, bytes } of hostileLines(seed, 28)) {
        for (const redact of [true, false]) {
          const result = parseTraceLine(bytes.toString("utf8"), redact)
          if (!result.ok) expect(result.reason, kind).not.toBe("")
          else if (redact) {
            expect(longestRun(result.trace), kind).toBeLessThanOrEqual(LONG_RUN_CHARS)
          }
        }
      }
    }
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })

  it("ingest takes every good line around them, in one run, and the next run has nothing left to do", async () => {
    const home = tempHome()
    const hostile = hostileLines(7, 42)
    const parts: Array<Buffer> = []
    let good = 0
    for (const [i, h] of hostile.entries()) {
      parts.push(Buffer.from(traceLine(i, { text: `good turn ${i}` })), h.bytes, Buffer.from("\n"))
      good++
    }
    parts.push(Buffer.from(traceLine(10_000, { text: "the last good turn" })))
    good++
    fs.writeFileSync(path.join(home, "traces", traceFileName()), Buffer.concat(parts))
    const ingest = () =>
      Effect.runPromise(Effect.flatMap(TraceSource, (s) => s.ingest()).pipe(Effect.provide(appLayer(home))))
    const first = await ingest()
    expect(first.lines).toBe(good + hostile.length)
    expect(first.ingested + first.malformed + first.duplicates).toBe(first.lines)
    expect(first.ingested).toBeGreaterThanOrEqual(good)
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const goodIds = db
      .prepare(
        "SELECT COUNT(*) AS n FROM traces WHERE message_text LIKE 'good turn %' OR message_text = 'the last good turn'"
      )
      .get() as { n: number }
    expect(goodIds.n).toBe(good)
    const reasons = db.prepare("SELECT reason FROM malformed_lines").all() as Array<{ reason: string }>
    expect(reasons).toHaveLength(first.malformed)
    for (const r of reasons) expect(r.reason).not.toBe("")
    // What was stored has its long runs and deep values cut: no stored text holds a run the rules could choke on.
    for (const row of db
      .prepare("SELECT input_text, output_text, tool_calls_json, extra_json FROM traces")
      .all() as Array<Record<string, string | null>>) {
      const values = [
        row["input_text"],
        row["output_text"],
        JSON.parse(row["tool_calls_json"] ?? "null"),
        JSON.parse(row["extra_json"] ?? "null")
      ]
      // The envelope's XML escaping can lengthen a kept run by a few entities.
      expect(longestRun(values)).toBeLessThanOrEqual(LONG_RUN_CHARS + 64)
    }
    db.close()
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
    const second = await ingest()
    expect(second).toMatchObject({ lines: 0, ingested: 0, malformed: 0 })
  })

  it("built CLI: an 8 MB pasted photo, arrays 3,000 deep and a 32 MB run of one letter, each before good lines; a second run has nothing to do", async () => {
    const home = tempHome()
    const photo = `data:image/png;base64,${randomBytes(6 * 2 ** 20).toString("base64")}`
    const lines = [
      JSON.stringify({
        trace_id: "trace-photo",
        timestamp: at,
        input_text: `<message sender="Ana">look ${photo}</message>`,
        output_text: "nice"
      }),
      JSON.stringify({ trace_id: "trace-deep", timestamp: at, input_text: "hi", extra: nested(3_000, "x", false) }),
      JSON.stringify({ trace_id: "trace-run", timestamp: at, input_text: "a".repeat(32 * 2 ** 20) })
    ]
    fs.writeFileSync(path.join(home, "traces", traceFileName()), lines.map((l, i) => `${l}\n${traceLine(i)}`).join(""))
    const env = { AUTOTUNE_HOME: home }
    const first = await runCli(["ingest", "--json"], env)
    expect(first.code, first.stderr).toBe(0)
    expect(jsonOut(first)).toMatchObject({
      lines: 6,
      ingested: 5,
      malformed: 1,
      malformedReasons: { "line too long": 1 }
    })
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const photoRow = db.prepare("SELECT message_text FROM traces WHERE trace_id = 'trace-photo'").get() as {
      message_text: string
    }
    const deepRow = db.prepare("SELECT extra_json FROM traces WHERE trace_id = 'trace-deep'").get() as {
      extra_json: string
    }
    db.close()
    expect(photoRow.message_text).toBe(`look <cut_${photo.length}_characters>`)
    expect(deepRow.extra_json).toContain(DEEP_MARK)
    const second = await runCli(["ingest", "--json"], env)
    expect(second.code, second.stderr).toBe(0)
    expect(jsonOut(second)).toMatchObject({ lines: 0, ingested: 0, malformed: 0 })
  })

  it("a line over AUTOTUNE_MAX_LINE_BYTES streams past: counted malformed with its size, the lines after it go in", async () => {
    const home = tempHome()
    const big = `{"trace_id":"trace-big","timestamp":"${at}","input_text":"${"word ".repeat(400_000)}"}\n`
    fs.writeFileSync(
      path.join(home, "traces", traceFileName()),
      traceLine(1) + big + traceLine(2) + big.replace("trace-big", "trace-big-2") + traceLine(3)
    )
    const summary = await Effect.runPromise(
      Effect.flatMap(TraceSource, (s) => s.ingest()).pipe(Effect.provide(appLayer(home, { maxLineBytes: 1_000_000 })))
    )
    expect(summary).toMatchObject({
      lines: 5,
      ingested: 3,
      malformed: 2,
      malformedReasons: { "line too long": 2 },
      pendingPartial: 0
    })
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const rows = db.prepare("SELECT line_no, reason, excerpt FROM malformed_lines ORDER BY line_no").all() as Array<{
      line_no: number
      reason: string
      excerpt: string
    }>
    db.close()
    expect(rows.map((r) => r.line_no)).toEqual([2, 4])
    expect(rows[0]!.reason).toBe(
      `line of ${Buffer.byteLength(big)} bytes is longer than AUTOTUNE_MAX_LINE_BYTES (1000000)`
    )
    expect(rows[0]!.excerpt.length).toBeLessThanOrEqual(300)
    expect(rows[0]!.excerpt).toContain("trace-big")
  })

  it("an over-long line within one read is counted by its size; an over-long unfinished last line waits for the next run", () => {
    const batcher = new LineBatcher("f", true, 0, 0, 5000, undefined, 8 * 2 ** 20, 100)
    const bytes = Buffer.from(`${"x".repeat(150)}\n{"a":1}\n`)
    expect(batcher.feed(bytes, 0, bytes.length).batch).toBeUndefined()
    const taken = batcher.take()!
    expect(taken.malformedKinds[0]).toBe("line too long")
    expect(taken.malformed[0]!.reason).toBe("line of 151 bytes is longer than AUTOTUNE_MAX_LINE_BYTES (100)")
    expect(taken.lines).toBe(2)

    const file = path.join(tempHome(), "unfinished.jsonl")
    const body = `{"a":1}\n${"y".repeat(5_000_000)}`
    fs.writeFileSync(file, body)
    const fd = fs.openSync(file, "r")
    const batches = fileBatches(fd, file, true, { byteOffset: 0, lineNo: 0 }, Buffer.byteLength(body), {
      maxLineBytes: 1_000_000
    })
    let step = batches.next()
    const seen: Array<Batch> = []
    while (step.done !== true) {
      seen.push(step.value)
      step = batches.next()
    }
    fs.closeSync(fd)
    expect(seen.reduce((n, b) => n + b.lines, 0)).toBe(1)
    expect(seen.flatMap((b) => b.malformedKinds)).not.toContain("line too long")
    expect(step.value).toEqual({ bytes: Buffer.byteLength(body), carried: 5_000_000 })
    expect(seen[seen.length - 1]!.byteOffset).toBe(8)
  })

  it("message elements are found as the old regex found them, in one linear scan", () => {
    const reference = /(<message\b[^>]*>)([\s\S]*?)(<\/message>)/g
    const g = generator(11)
    const pieces = [
      "<message",
      "<messages",
      "<message_x",
      ">",
      "</message>",
      "</messag",
      ' sender="Ana"',
      "x",
      "\n",
      "&lt;",
      " ",
      "<"
    ]
    for (let n = 0; n < 3000; n++) {
      let text = ""
      for (let i = g.int(0, 14); i > 0; i--) text += g.pick(pieces)
      const expected = [...text.matchAll(reference)].map((m) => ({
        start: m.index,
        end: m.index + m[0].length,
        open: m[1],
        body: m[2],
        close: m[3]
      }))
      expect(messageElements(text), JSON.stringify(text)).toEqual(expected)
    }
  })

  it("text outside the message elements is redacted too (an unclosed tag, a prompt around them)", () => {
    expect(redactEnvelope(`<message sender="Ana">mail ana@example.com`)).toBe(
      `<message sender="Ana">mail <redacted_email>`
    )
    expect(
      redactEnvelope(
        `key sk-ant-api03-abcdefghijklmnopqrstuv <message sender="Ana">hi bob@example.com</message> and ana@example.com`
      )
    ).toBe(`key <redacted_api_key> <message sender="Ana">hi &lt;redacted_email&gt;</message> and <redacted_email>`)
  })

  it("the redactor cuts runs and depth, and counts what it cut", () => {
    const findings = { count: 0, byRule: {} as Record<string, number> }
    const text = `before ${"A".repeat(LONG_RUN_CHARS + 1)} between ${"b".repeat(LONG_RUN_CHARS)} after`
    const cut = cutLongRuns(text, findings)
    expect(cut).toBe(`before <cut_${LONG_RUN_CHARS + 1}_characters> between ${"b".repeat(LONG_RUN_CHARS)} after`)
    expect(findings.byRule["long_run"]).toBe(1)
    expect(redactText(`x ${"k".repeat(10_000)}`)).toBe("x <cut_10000_characters>")
    const deep = redactDeep(nested(MAX_DEPTH + 5, "ana@example.com", true), findings)
    let v: unknown = deep
    for (let i = 0; i < MAX_DEPTH; i++) v = (v as { k: unknown }).k
    expect(v).toBe(DEEP_MARK)
    expect(findings.byRule["deep_value"]).toBe(1)
    // Shallow values keep their redaction; a key named __proto__ stays a key.
    const shallow = redactDeep(
      JSON.parse('{"__proto__":{"x":"ana@example.com"},"a":[{"b":"ana@example.com"}]}')
    ) as Record<string, unknown>
    expect(Object.keys(shallow)).toEqual(["__proto__", "a"])
    expect(JSON.stringify(shallow)).toBe('{"__proto__":{"x":"<redacted_email>"},"a":[{"b":"<redacted_email>"}]}')
  })
})

import { describe, expect, it } from "vitest"
import { lastMessage, parseTraceLine } from "../src/ingest/Parse.js"
import { TOOL_CALL_FIELDS, TRACE_FIELDS } from "../src/Domain/Trace.js"

const parse = (value: unknown, redact = true) => {
  const result = parseTraceLine(typeof value === "string" ? value : JSON.stringify(value), redact)
  if (!result.ok) throw new Error(result.reason)
  return result.trace
}

describe("trace normalization", () => {
  it("reads DotClaw's fields and keeps unknown ones", () => {
    const t = parse({
      trace_id: "abc",
      timestamp: "2026-01-01T14:54:54.000Z",
      created_at: 1767279294000,
      chat_id: "tg:1",
      group_folder: "main",
      user_id: "u1",
      input_text: "hi",
      output_text: "hello",
      model_id: "moonshotai/kimi-k2",
      prompt_pack_versions: { "response-quality": "1795467310669" },
      tool_calls: [{ name: "bash", ok: false, error: "exit 1" }],
      host_failover_attempts: 2,
      brand_new_field: { x: 1 }
    })
    expect(t).toMatchObject({
      traceId: "abc",
      timestamp: "2026-01-01T14:54:54.000Z",
      createdAt: 1767279294000,
      chatId: "tg:1",
      groupFolder: "main",
      modelId: "moonshotai/kimi-k2",
      packVersions: { "response-quality": "1795467310669" },
      isError: false
    })
    expect(t.toolCalls).toEqual([{ name: "bash", ok: false, error: "exit 1" }])
    expect(t.extra).toEqual({ host_failover_attempts: 2, brand_new_field: { x: 1 } })
  })

  it("maps the aliases older writers use", () => {
    const t = parse({
      id: "x1",
      time: "2026-01-02T00:00:00Z",
      prompt: "p",
      response: "r",
      model: "m",
      chatId: "c",
      groupFolder: "g",
      prompt_pack_versions_json: '{"tool-calling":"v7"}'
    })
    expect(t).toMatchObject({
      traceId: "x1",
      timestamp: "2026-01-02T00:00:00.000Z",
      inputText: "p",
      outputText: "r",
      modelId: "m",
      chatId: "c",
      groupFolder: "g",
      packVersions: { "tool-calling": "v7" }
    })
    expect(parse({ timestamp: "2026-01-02T00:00:00Z", input: "i", prompt_pack_version: "v9" }).packVersions).toEqual({
      "*": "v9"
    })
    expect(parse({ created_at: 1767225600000, input_text: "i" }).timestamp).toBe("2026-01-01T00:00:00.000Z")
  })

  it("never redacts structural fields: timestamps and numeric pack versions survive", () => {
    const t = parse({
      trace_id: "t-4155550132",
      timestamp: "2026-01-01T14:54:54.000Z",
      chat_id: "+351912345678",
      input_text: "call +351 912 345 678",
      prompt_pack_versions: { "tool-calling": "1795467310669" }
    })
    expect(t.timestamp).toBe("2026-01-01T14:54:54.000Z")
    expect(t.packVersions).toEqual({ "tool-calling": "1795467310669" })
    expect(t.chatId).toBe("+351912345678")
    expect(t.inputText).toBe("call <redacted_phone>")
  })

  it("redacts tool args, tool errors, memory and unknown free text", () => {
    const t = parse({
      timestamp: "2026-01-01T00:00:00Z",
      input_text: "x",
      memory_facts: ["email is ana@example.com"],
      memory_recall: ["key sk-ant-api03-abcdefghijklmnopqrstuv"],
      memory_summary: "phone (415) 555-0132",
      tool_calls: [
        {
          name: "http",
          ok: false,
          args: { url: "https://u:pw12345@h.io/x", token: "abcdef" },
          error: "401 for Bearer abcdefghijklmnop123"
        }
      ],
      error_code: "failed with key sk-or-v1-abcdefghijklmnopqrstuvwxyz",
      some_note: "mail bob@example.org"
    })
    const text = JSON.stringify(t)
    for (const secret of [
      "ana@example.com",
      "abcdefghijklmnopqrstuv",
      "555-0132",
      "pw12345",
      "abcdefghijklmnop123",
      "bob@example.org",
      '"token":"abcdef"'
    ]) {
      expect(text).not.toContain(secret)
    }
  })

  it("keeps text as is when redaction is off", () => {
    expect(parse({ timestamp: "2026-01-01T00:00:00Z", input_text: "ana@example.com" }, false).inputText).toBe(
      "ana@example.com"
    )
  })

  it("takes the last <message> as the one answered, unescaped", () => {
    const input =
      '<message sender="Ana" sender_id="1" time="t">earlier</message>\n<message sender="Bo" sender_id="2" time="t">is 3 &lt; 4 &amp;&amp; &quot;yes&quot;?</message>'
    expect(lastMessage(input)).toBe('is 3 < 4 && "yes"?')
    expect(lastMessage("scheduled: daily digest")).toBe("scheduled: daily digest")
  })

  it("gives a line without trace_id a stable id from its content", () => {
    const line = '{"timestamp":"2026-01-01T00:00:00.000Z","input_text":"a"}'
    const a = parseTraceLine(line, true)
    const b = parseTraceLine(line, true)
    const c = parseTraceLine(line.replace('"a"', '"b"'), true)
    if (!a.ok || !b.ok || !c.ok) throw new Error("parse")
    expect(a.trace.traceId).toBe(b.trace.traceId)
    expect(a.trace.traceId).not.toBe(c.trace.traceId)
  })

  it.each([
    ["not JSON", "{oops", "invalid JSON"],
    ["an array", "[1,2]", "not a JSON object"],
    ["no timestamp", '{"input_text":"x"}', "missing timestamp"],
    ["a bad timestamp", '{"timestamp":"yesterday","input_text":"x"}', "is not an ISO-8601 time"],
    ["bad tool_calls", '{"timestamp":"2026-01-01T00:00:00Z","tool_calls":{"a":1}}', "tool_calls is not an array"],
    ["bad pack versions", '{"timestamp":"2026-01-01T00:00:00Z","prompt_pack_versions":"{x"}', "not JSON"],
    // Date.parse("12") is 2001-12-01: a number is an epoch time, and 12 s after 1970 is no DotClaw turn.
    ["a tiny numeric timestamp", '{"timestamp":12,"input_text":"x"}', "not a plausible epoch time"],
    [
      "a far-future timestamp",
      '{"timestamp":"2999-01-01T00:00:00Z","input_text":"x"}',
      "outside 2000-01-01 .. tomorrow"
    ],
    ["a date without a time", '{"timestamp":"2026-11-20","input_text":"x"}', "is not an ISO-8601 time"],
    [
      "an object as input_text",
      '{"timestamp":"2026-01-01T00:00:00Z","input_text":{"text":"hi"}}',
      "input_text is an object, not text"
    ],
    [
      "an array as output_text",
      '{"timestamp":"2026-01-01T00:00:00Z","input_text":"x","output_text":["a"]}',
      "output_text is an array, not text"
    ],
    ["a bad created_at", '{"timestamp":"2026-01-01T00:00:00Z","created_at":"soon","input_text":"x"}', "created_at"]
  ])("rejects %s with the reason", (_name, line, reason) => {
    const result = parseTraceLine(line, true)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).toContain(reason)
  })

  it("marks failed turns as errors", () => {
    expect(
      parse({ timestamp: "2026-01-01T00:00:00Z", input_text: "x", output_text: null, error_code: "429" }).isError
    ).toBe(true)
    expect(parse({ timestamp: "2026-01-01T00:00:00Z", input_text: "x", output_text: "ok" }).isError).toBe(false)
  })
})

describe("trace times", () => {
  it.each([
    ["epoch seconds", 1_763_600_000, "2025-11-20T00:53:20.000Z"],
    ["epoch milliseconds", 1_763_600_000_000, "2025-11-20T00:53:20.000Z"],
    ["epoch seconds as digits", "1763600000", "2025-11-20T00:53:20.000Z"],
    ["ISO with an offset", "2025-11-20T01:53:20+01:00", "2025-11-20T00:53:20.000Z"]
  ])("accepts %s", (_name, timestamp, iso) => {
    const result = parseTraceLine(JSON.stringify({ timestamp, input_text: "x", output_text: "y" }), false)
    expect(result.ok).toBe(true)
    if (result.ok) expect(result.trace.timestamp).toBe(iso)
  })
})

describe("every field of a parsed trace is classified for redaction (Domain/Trace.ts TRACE_FIELDS)", () => {
  // A GitHub token the rules catch, planted in every field DotClaw writes (and tool calls' every field).
  const secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
  const line = {
    trace_id: "trace-0f8e2c1a-4b3d-4e5f-8a9b-1c2d3e4f5a6b",
    timestamp: "2026-01-01T14:54:54.000Z",
    chat_id: "tg:1",
    group_folder: "main",
    user_id: "u1",
    input_text: `<messages><message sender="u">${secret}</message></messages>`,
    output_text: secret,
    model_id: secret,
    source: secret,
    memory_summary: secret,
    memory_facts: [secret],
    memory_recall: [secret],
    session_recall: [secret],
    error_code: secret,
    tool_calls: [{ name: secret, ok: false, error: secret, args: { q: secret }, duration_ms: 12 }],
    latency_ms: 1,
    tokens_prompt: 2,
    tokens_completion: 3,
    cost_total_usd: 0.01,
    prompt_pack_versions: { "tool-calling": "v1" },
    brand_new: secret
  }

  it("each key is classified, and no field classified as text keeps the secret", () => {
    const t = parse(line)
    for (const key of Object.keys(t)) expect(TRACE_FIELDS, `unclassified field ${key}`).toHaveProperty(key)
    for (const call of t.toolCalls)
      for (const key of Object.keys(call))
        expect(TOOL_CALL_FIELDS, `unclassified tool-call field ${key}`).toHaveProperty(key)
    const texts = Object.entries(t).filter(([k]) => TRACE_FIELDS[k as keyof typeof TRACE_FIELDS] === "text")
    expect(texts.map(([k]) => k).sort()).toEqual([
      "errorCode",
      "extra",
      "inputText",
      "memoryFacts",
      "memoryRecall",
      "memorySummary",
      "messageText",
      "modelId",
      "outputText",
      "sessionRecall",
      "source",
      "toolCalls"
    ])
    for (const [key, value] of texts) expect(JSON.stringify(value), key).not.toContain(secret)
    // The whole trace as stored: the secret is nowhere, since no id field carried it.
    expect(JSON.stringify(t)).not.toContain(secret)
    expect(t.toolCalls[0]!.name).toMatch(/^<redacted_[a-z_]+>$/)
  })

  it("the exempt fields are the ids joins and per-person counts need, and they are kept as written", () => {
    const exempt = Object.entries(TRACE_FIELDS)
      .filter(([, c]) => c === "id")
      .map(([k]) => k)
      .sort()
    expect(exempt).toEqual(["chatId", "groupFolder", "traceId", "userId"])
    const t = parse({ ...line, chat_id: "+351912345678", user_id: "4155550132" })
    expect([t.chatId, t.userId]).toEqual(["+351912345678", "4155550132"])
  })

  it("with redaction off, names are kept as written", () => {
    const t = parse(line, false)
    expect(t.toolCalls[0]!.name).toBe(secret)
    expect(t.modelId).toBe(secret)
  })
})

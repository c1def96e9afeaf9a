/**
 * One DotClaw trace line to a Trace (docs/dotclaw-formats.md §1): aliases, times, tool calls, pack versions,
 * and the free text redacted before it leaves this function when `redact` is on. Pure.
 */
import { createHash } from "node:crypto"
import type { ParseResult, ToolCall } from "../Domain/Trace.js"
import { messageElements, unescapeXml } from "../Domain/Xml.js"
import { redactDeep, redactEnvelope, redactIf, redactName } from "../privacy/Redactor.js"

const bad = (kind: string, reason: string): ParseResult => ({ ok: false, kind, reason })

// Every field the normalizer reads, with its aliases; whatever is not listed goes to `extra`.
const KNOWN = new Set([
  "trace_id",
  "id",
  "timestamp",
  "time",
  "created_at",
  "chat_id",
  "chatId",
  "group_folder",
  "groupFolder",
  "user_id",
  "userId",
  "input_text",
  "prompt",
  "input",
  "output_text",
  "response",
  "model_id",
  "model",
  "prompt_pack_versions",
  "prompt_pack_versions_json",
  "prompt_pack_version",
  "memory_summary",
  "memory_facts",
  "memory_recall",
  "session_recall",
  "tool_calls",
  "latency_ms",
  "tokens_prompt",
  "tokens_completion",
  "cost_total_usd",
  "error_code",
  "source"
])

const first = (raw: Record<string, unknown>, ...keys: Array<string>): unknown => {
  for (const key of keys) {
    const value = raw[key]
    if (value !== undefined && value !== null) return value
  }
  return undefined
}

const str = (value: unknown): string | null =>
  typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : null

const num = (value: unknown): number | null => {
  if (typeof value === "number" && Number.isFinite(value)) return value
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value)
  return null
}

const strings = (value: unknown): Array<string> =>
  Array.isArray(value)
    ? value.map((v) => (typeof v === "string" ? v : JSON.stringify(v)))
    : typeof value === "string" && value !== ""
      ? [value]
      : []

/** The last `<message>` of a chat turn, unescaped; plain text (scheduled tasks) as it is. */
export const lastMessage = (input: string): string => {
  const last = messageElements(input).at(-1)
  return last === undefined ? input : unescapeXml(last.body)
}

// Traces come from a running agent: nothing before 2000 or more than a day ahead of this clock is a real turn.
const EARLIEST_MS = Date.UTC(2000, 0, 1)
const plausible = (ms: number) => Number.isFinite(ms) && ms >= EARLIEST_MS && ms <= Date.now() + 86_400_000
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/

/** Epoch seconds or milliseconds, told apart by size; undefined when neither is plausible. */
const epochMs = (n: number): number | undefined => {
  const ms = Math.abs(n) < 1e11 ? n * 1000 : n
  return plausible(ms) ? ms : undefined
}

/** A trace's time: ISO-8601 text, or epoch seconds/milliseconds (as a number or digits), in a plausible range. */
export const parseTime = (value: unknown, field: string): number | string => {
  if (typeof value === "number")
    return epochMs(value) ?? `${field} ${value} is not a plausible epoch time in seconds or milliseconds`
  if (typeof value !== "string") return `${field} is ${Array.isArray(value) ? "an array" : typeof value}, not a time`
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text))
    return epochMs(Number(text)) ?? `${field} ${JSON.stringify(text.slice(0, 40))} is not a plausible epoch time`
  if (!ISO_8601.test(text)) return `${field} ${JSON.stringify(text.slice(0, 40))} is not an ISO-8601 time`
  const ms = Date.parse(text)
  if (!Number.isFinite(ms)) return `${field} ${JSON.stringify(text.slice(0, 40))} is not a valid date`
  return plausible(ms) ? ms : `${field} ${JSON.stringify(text.slice(0, 40))} is outside 2000-01-01 .. tomorrow`
}

/** Free-text fields must be text: an object there would be stored as empty and judged as such. */
const TEXT_FIELDS = [
  "input_text",
  "prompt",
  "input",
  "output_text",
  "response",
  "memory_summary",
  "error_code"
] as const
const notText = (r: Record<string, unknown>): string | undefined => {
  for (const field of TEXT_FIELDS) {
    const value = r[field]
    if (value !== undefined && value !== null && typeof value === "object")
      return `${field} is ${Array.isArray(value) ? "an array" : "an object"}, not text`
  }
  return undefined
}

const parsePackVersions = (raw: Record<string, unknown>): Record<string, string> | string => {
  let value = first(raw, "prompt_pack_versions", "prompt_pack_versions_json")
  if (typeof value === "string") {
    try {
      value = JSON.parse(value)
    } catch {
      return "prompt_pack_versions is a string that is not JSON"
    }
  }
  const out: Record<string, string> = {}
  if (value !== undefined && value !== null) {
    if (typeof value !== "object" || Array.isArray(value)) return "prompt_pack_versions is not an object"
    for (const [behavior, version] of Object.entries(value)) {
      const v = str(version)
      if (v !== null && v !== "") out[behavior] = v
    }
  }
  const single = str(raw["prompt_pack_version"])
  if (single !== null && single !== "" && Object.keys(out).length === 0) out["*"] = single
  return out
}

const parseToolCalls = (value: unknown, redact: boolean): Array<ToolCall> | string => {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) return "tool_calls is not an array"
  return value.map((call): ToolCall => {
    const c = (call ?? {}) as Record<string, unknown>
    const error = str(c["error"])
    const duration = num(c["duration_ms"])
    const name = str(c["name"]) ?? "unknown"
    return {
      name: redact ? redactName(name) : name,
      // A call without an explicit ok is judged by whether it reported an error.
      ok: typeof c["ok"] === "boolean" ? c["ok"] : error === null,
      ...(c["args"] !== undefined ? { args: redact ? redactDeep(c["args"]) : c["args"] } : {}),
      ...(error !== null ? { error: redactIf(redact, error) } : {}),
      ...(duration !== null ? { durationMs: duration } : {})
    }
  })
}

/** A stable id for a line without trace_id: the same line always gets the same id. */
export const contentId = (line: string): string => "h_" + createHash("sha256").update(line).digest("hex").slice(0, 32)

/** Parses and normalizes one JSONL line. Never throws: a bad line comes back with the reason. */
export const parseTraceLine = (line: string, redact: boolean): ParseResult => {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch (error) {
    return bad("invalid JSON", `invalid JSON: ${(error as Error).message}`)
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return bad("not an object", "not a JSON object")
  const r = raw as Record<string, unknown>

  const tsRaw = first(r, "timestamp", "time")
  const createdRaw = r["created_at"]
  if (tsRaw === undefined && (createdRaw === undefined || createdRaw === null))
    return bad("missing timestamp", "missing timestamp")
  const ms = tsRaw !== undefined ? parseTime(tsRaw, "timestamp") : parseTime(createdRaw, "created_at")
  if (typeof ms === "string") return bad("bad timestamp", ms)
  const createdAtParsed = createdRaw === undefined || createdRaw === null ? ms : parseTime(createdRaw, "created_at")
  if (typeof createdAtParsed === "string") return bad("bad timestamp", createdAtParsed)
  const createdAt = createdAtParsed
  const textProblem = notText(r)
  if (textProblem !== undefined) return bad("text field not text", textProblem)
  const packVersions = parsePackVersions(r)
  if (typeof packVersions === "string") return bad("bad prompt_pack_versions", packVersions)
  const toolCalls = parseToolCalls(r["tool_calls"], redact)
  if (typeof toolCalls === "string") return bad("bad tool_calls", toolCalls)

  const text = (value: unknown) => {
    const s = str(value)
    return s === null ? null : redactIf(redact, s)
  }
  const name = (value: unknown) => {
    const s = str(value)
    return s === null || !redact ? s : redactName(s)
  }
  const list = (value: unknown) => strings(value).map((s) => redactIf(redact, s))
  // The envelope's message text is escaped: it is cleaned as the person wrote it, then escaped again.
  const rawInput = str(first(r, "input_text", "prompt", "input")) ?? ""
  const inputText = redact ? redactEnvelope(rawInput) : rawInput
  const outputRaw = first(r, "output_text", "response")
  const outputText = outputRaw === undefined ? null : text(outputRaw)
  const errorCode = text(r["error_code"])

  const extra: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(r)) if (!KNOWN.has(key)) extra[key] = value

  const traceId = str(first(r, "trace_id", "id"))
  return {
    ok: true,
    trace: {
      traceId: traceId !== null && traceId !== "" ? traceId : contentId(line),
      timestamp: new Date(ms).toISOString(),
      createdAt,
      chatId: str(first(r, "chat_id", "chatId")),
      groupFolder: str(first(r, "group_folder", "groupFolder")),
      userId: str(first(r, "user_id", "userId")),
      modelId: name(first(r, "model_id", "model")),
      source: name(r["source"]),
      inputText,
      messageText: lastMessage(inputText),
      outputText,
      memorySummary: text(r["memory_summary"]),
      memoryFacts: list(r["memory_facts"]),
      memoryRecall: list(r["memory_recall"]),
      sessionRecall: list(r["session_recall"]),
      toolCalls,
      latencyMs: num(r["latency_ms"]),
      tokensPrompt: num(r["tokens_prompt"]),
      tokensCompletion: num(r["tokens_completion"]),
      costUsd: num(r["cost_total_usd"]),
      errorCode,
      isError: outputText === null || (errorCode !== null && errorCode !== ""),
      packVersions,
      extra: redact ? (redactDeep(extra) as Record<string, unknown>) : extra
    }
  }
}

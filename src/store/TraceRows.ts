/**
 * How a parsed trace is stored: the `traces` row, in one column order shared by the multi-row INSERT of
 * @effect/sql (PostgreSQL) and the prepared single-row statement of SQLite's bulk writer.
 */
import { sampleDraw, type Trace } from "../Domain/Trace.js"

export const TRACE_COLUMNS = [
  "trace_id", "sample_draw", "ts", "created_at", "chat_id", "group_folder", "user_id", "model_id", "source",
  "input_text", "message_text", "output_text", "memory_summary", "memory_facts_json", "memory_recall_json",
  "session_recall_json", "tool_calls_json", "tool_call_count", "tool_failure_count", "latency_ms", "tokens_prompt",
  "tokens_completion", "cost_usd", "error_code", "is_error", "extra_json", "file", "byte_offset", "line_no",
  "ingested_at", "redaction_version"
] as const

/** Where a trace's line was read, and when and under which rule set it is stored. */
export interface StoredAt {
  readonly file: string
  readonly byteOffset: number
  readonly lineNo: number
  readonly now: number
  readonly redactionVersion: number
}

/** The `traces` row's values in TRACE_COLUMNS order. */
export const traceValues = (t: Trace, at: StoredAt): Array<string | number | null> => {
  let failures = 0
  for (const c of t.toolCalls) if (!c.ok) failures++
  return [
    t.traceId, sampleDraw(t.traceId), t.timestamp, t.createdAt, t.chatId, t.groupFolder, t.userId, t.modelId, t.source,
    t.inputText, t.messageText, t.outputText, t.memorySummary, JSON.stringify(t.memoryFacts), JSON.stringify(t.memoryRecall),
    JSON.stringify(t.sessionRecall), JSON.stringify(t.toolCalls), t.toolCalls.length, failures, t.latencyMs, t.tokensPrompt,
    t.tokensCompletion, t.costUsd, t.errorCode, t.isError ? 1 : 0, JSON.stringify(t.extra), at.file, at.byteOffset, at.lineNo,
    at.now, at.redactionVersion
  ]
}

/** The `traces` row as an object, for @effect/sql's `sql.insert`. */
export const traceRow = (t: Trace, at: StoredAt): Record<string, string | number | null> => {
  const values = traceValues(t, at)
  const row: Record<string, string | number | null> = {}
  TRACE_COLUMNS.forEach((column, i) => (row[column] = values[i]!))
  return row
}

export const PACK_COLUMNS = ["trace_id", "behavior", "version", "created_at"] as const

/** The `trace_packs` rows of a trace: the pack version that served it, per behavior. */
export const packValues = (t: Trace): Array<[string, string, string, number]> =>
  Object.entries(t.packVersions).map(([behavior, version]) => [t.traceId, behavior, version, t.createdAt])

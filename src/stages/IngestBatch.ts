/**
 * Lines of a trace file into the rows one ingest transaction writes: parsed, normalized, redacted, with the
 * file position after the batch. No service and no store: TraceSource commits what this yields.
 */
import * as fs from "node:fs"
import { contentId, parseTraceLine, sampleDraw, type Trace } from "../Domain/Trace.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"

// Lines per transaction. DotClaw's random `trace-<uuid>` keys touch index pages all over the tree, and each
// commit writes every page it dirtied to the WAL: 5,000 lines a commit cut bench:ingest's system time by a
// third against 1,000 (200,000 traces), for about 15 MB more peak memory.
export const BATCH_LINES = 5000

/** A parsed line and where it was. */
export interface Parsed {
  readonly trace: Trace
  readonly byteOffset: number
  readonly lineNo: number
}

export interface Batch {
  /** Parsed lines in file order (the first line of a trace id is the one stored); rows are made as they are written. */
  readonly parsed: ReadonlyArray<Parsed>
  readonly malformed: ReadonlyArray<Record<string, string | number>>
  /** The kind of problem of each malformed line ("bad timestamp", "invalid JSON", …). */
  readonly malformedKinds: ReadonlyArray<string>
  /** Complete lines in the batch, blank ones included. */
  readonly lines: number
  /** The file position after the batch, saved in the same transaction. */
  readonly byteOffset: number
  readonly lineNo: number
}

/** The `traces` row of a parsed line; made per insert statement, so a batch keeps only the parsed traces alive. */
export const traceRow = ({ trace: t, byteOffset, lineNo }: Parsed, file: string, now: number, redactionVersion: number) => ({
  trace_id: t.traceId,
  sample_draw: sampleDraw(t.traceId),
  ts: t.timestamp,
  created_at: t.createdAt,
  chat_id: t.chatId,
  group_folder: t.groupFolder,
  user_id: t.userId,
  model_id: t.modelId,
  source: t.source,
  input_text: t.inputText,
  message_text: t.messageText,
  output_text: t.outputText,
  memory_summary: t.memorySummary,
  memory_facts_json: JSON.stringify(t.memoryFacts),
  memory_recall_json: JSON.stringify(t.memoryRecall),
  session_recall_json: JSON.stringify(t.sessionRecall),
  tool_calls_json: JSON.stringify(t.toolCalls),
  tool_call_count: t.toolCalls.length,
  tool_failure_count: t.toolCalls.filter((c) => !c.ok).length,
  latency_ms: t.latencyMs,
  tokens_prompt: t.tokensPrompt,
  tokens_completion: t.tokensCompletion,
  cost_usd: t.costUsd,
  error_code: t.errorCode,
  is_error: t.isError ? 1 : 0,
  extra_json: JSON.stringify(t.extra),
  file,
  byte_offset: byteOffset,
  line_no: lineNo,
  ingested_at: now,
  redaction_version: redactionVersion
})

/** Splits bytes into lines and lines into batches of BATCH_LINES, keeping the file position of each. */
export class LineBatcher {
  private parsed: Array<Parsed> = []
  private malformed: Array<Batch["malformed"][number]> = []
  private kinds: Array<string> = []
  private lines = 0
  private readonly version: number

  constructor(
    private readonly file: string,
    private readonly redact: boolean,
    public byteOffset: number,
    public lineNo: number,
    private readonly batchLines = BATCH_LINES
  ) {
    this.version = storedVersion(redact)
  }

  /** The complete lines of buffer[0, end): the batches they filled, and where the unfinished last line starts. */
  feed(buffer: Buffer, end: number): { readonly batches: ReadonlyArray<Batch>; readonly rest: number } {
    const batches: Array<Batch> = []
    let lineStart = 0
    let nl = buffer.indexOf(10, lineStart)
    while (nl !== -1 && nl < end) {
      this.line(buffer.toString("utf8", lineStart, nl > lineStart && buffer[nl - 1] === 13 ? nl - 1 : nl), nl - lineStart + 1)
      if (this.lines >= this.batchLines) batches.push(this.take()!)
      lineStart = nl + 1
      nl = buffer.indexOf(10, lineStart)
    }
    return { batches, rest: lineStart }
  }

  /** The lines read since the last batch, if any. */
  take(): Batch | undefined {
    if (this.lines === 0) return undefined
    const batch: Batch = { parsed: this.parsed, malformed: this.malformed, malformedKinds: this.kinds, lines: this.lines, byteOffset: this.byteOffset, lineNo: this.lineNo }
    this.parsed = []
    this.malformed = []
    this.kinds = []
    this.lines = 0
    return batch
  }

  private line(raw: string, bytes: number) {
    const at = this.byteOffset
    this.byteOffset += bytes
    this.lineNo++
    this.lines++
    if (raw.trim() === "") return
    const parsed = parseTraceLine(raw, this.redact)
    if (parsed.ok) {
      this.parsed.push({ trace: parsed.trace, byteOffset: at, lineNo: this.lineNo })
      return
    }
    this.kinds.push(parsed.kind)
    this.malformed.push({
      line_hash: contentId(`${this.file}\n${at}\n${raw}`),
      file: this.file,
      line_no: this.lineNo,
      byte_offset: at,
      reason: parsed.reason,
      excerpt: redactIf(this.redact, raw).slice(0, 300),
      seen_at: Date.now(),
      redaction_version: this.version
    })
  }
}

const CHUNK_BYTES = 1 << 20

/** What reading a file ended with: bytes read, and the length of an unfinished last line left for the next run. */
export interface ReadEnd {
  readonly bytes: number
  readonly carried: number
}

/**
 * Reads an open file from a saved position up to `size` (the size seen at the start: a line DotClaw appends
 * meanwhile waits for the next run) and yields its batches in order.
 */
export function* fileBatches(fd: number, file: string, redact: boolean, from: { readonly byteOffset: number; readonly lineNo: number }, size: number): Generator<Batch, ReadEnd> {
  const batcher = new LineBatcher(file, redact, from.byteOffset, from.lineNo)
  // One reused buffer: bytes [0, carried) are the unfinished line from the previous read. Allocating a fresh
  // Buffer per chunk would pile up external memory faster than the GC returns it.
  let buffer = Buffer.alloc(2 * CHUNK_BYTES)
  let carried = 0
  let readAt = from.byteOffset
  while (readAt < size) {
    if (carried === buffer.length) {
      const bigger = Buffer.alloc(buffer.length * 2)
      buffer.copy(bigger, 0, 0, carried)
      buffer = bigger
    }
    const bytesRead = fs.readSync(fd, buffer, carried, Math.min(buffer.length - carried, size - readAt), readAt)
    if (bytesRead === 0) break
    readAt += bytesRead
    const end = carried + bytesRead
    const { batches, rest } = batcher.feed(buffer, end)
    yield* batches
    buffer.copy(buffer, 0, rest, end)
    carried = end - rest
  }
  const last = batcher.take()
  if (last !== undefined) yield last
  return { bytes: readAt - from.byteOffset, carried }
}

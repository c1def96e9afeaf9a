/**
 * Lines of a trace file into the rows one ingest transaction writes: parsed, normalized, redacted, with the
 * file position after the batch. No service and no store: TraceSource commits what this yields. A batch either
 * carries its parsed lines, or hands each to a sink as it is parsed (SQLite's bulk writer inserts it at once,
 * inside the batch's open transaction, so a batch's traces are never all held in memory).
 */
import type { MalformedRow } from "../store/TraceRows.js"
import * as fs from "node:fs"
import { FileError } from "../Domain/Errors.js"
import { DEFAULT_MAX_LINE_BYTES } from "../config/Table.js"
import type { Trace } from "../Domain/Trace.js"
import { contentId, parseTraceLine } from "./Parse.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"

/** A file operation that failed, naming the file and what was done to it. */
export const fileError = (file: string, operation: string) => (cause: unknown) =>
  new FileError({ path: file, operation, detail: cause instanceof Error ? cause.message : String(cause) })

// Lines per transaction. DotClaw's random `trace-<uuid>` keys touch index pages all over the tree, and each
// commit writes every page it dirtied to the WAL: 5,000 lines a commit cut bench:ingest's system time by a
// third against 1,000 (200,000 traces), for about 15 MB more peak memory.
export const BATCH_LINES = 5000
// And at most this many bytes of lines (bench:ingest's 5,000 lines are ~5.3 MB): 5,000 parsed turns of a
// megabyte would not fit the heap. 120 such turns into PostgreSQL: 205 MB peak at 8 MB, 281 MB at 16 MB.
export const BATCH_BYTES = 8 * 2 ** 20

/** Where each parsed line goes when it is not kept in its batch. */
export type ParsedSink = (parsed: Parsed) => void

/** A parsed line and where it was. */
export interface Parsed {
  readonly trace: Trace
  readonly byteOffset: number
  readonly lineNo: number
}

export interface Batch {
  /** Parsed lines in file order (the first line of a trace id is the one stored); empty when a sink took them. */
  readonly parsed: ReadonlyArray<Parsed>
  /** Lines that parsed as traces, kept or sunk. */
  readonly traces: number
  readonly malformed: ReadonlyArray<MalformedRow>
  /** The kind of problem of each malformed line ("bad timestamp", "invalid JSON", …). */
  readonly malformedKinds: ReadonlyArray<string>
  /** Complete lines in the batch, blank ones included. */
  readonly lines: number
  /** The file position after the batch, saved in the same transaction. */
  readonly byteOffset: number
  readonly lineNo: number
}

/** Consecutive batches as one (a transaction of several hand-overs): their counts, and the position after the last. */
export const mergeBatches = (batches: ReadonlyArray<Batch>): Batch => ({
  parsed: batches.flatMap((b) => b.parsed),
  traces: batches.reduce((n, b) => n + b.traces, 0),
  malformed: batches.flatMap((b) => b.malformed),
  malformedKinds: batches.flatMap((b) => b.malformedKinds),
  lines: batches.reduce((n, b) => n + b.lines, 0),
  byteOffset: batches[batches.length - 1]!.byteOffset,
  lineNo: batches[batches.length - 1]!.lineNo
})

/** The columns of a `malformed_lines` row, in the order the bulk writer binds them. */

/** Splits bytes into lines and lines into batches of BATCH_LINES (or BATCH_BYTES), keeping the file position of each. */
export class LineBatcher {
  private parsed: Array<Parsed> = []
  private traces = 0
  private bytes = 0
  private malformed: Array<Batch["malformed"][number]> = []
  private kinds: Array<string> = []
  private lines = 0
  private readonly version: number

  constructor(
    private readonly file: string,
    private readonly redact: boolean,
    public byteOffset: number,
    public lineNo: number,
    private readonly batchLines = BATCH_LINES,
    private readonly sink?: ParsedSink,
    private readonly batchBytes = BATCH_BYTES,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES
  ) {
    this.version = storedVersion(redact)
  }

  /**
   * The complete lines of buffer[start, end) until a batch fills: that batch, if one did, and where the first
   * line not taken starts. Stopping at a full batch keeps every line a sink got in the batch it belongs to.
   */
  feed(buffer: Buffer, start: number, end: number): { readonly batch: Batch | undefined; readonly next: number } {
    let lineStart = start
    let nl = buffer.indexOf(10, lineStart)
    while (nl !== -1 && nl < end) {
      if (nl - lineStart > this.maxLineBytes)
        this.oversized(nl - lineStart + 1, buffer.toString("utf8", lineStart, lineStart + EXCERPT_BYTES))
      else
        this.line(
          buffer.toString("utf8", lineStart, nl > lineStart && buffer[nl - 1] === 13 ? nl - 1 : nl),
          nl - lineStart + 1
        )
      lineStart = nl + 1
      if (this.lines >= this.batchLines || this.bytes >= this.batchBytes) return { batch: this.take(), next: lineStart }
      nl = buffer.indexOf(10, lineStart)
    }
    return { batch: undefined, next: lineStart }
  }

  /** The lines read since the last batch, if any. */
  take(): Batch | undefined {
    if (this.lines === 0) return undefined
    const batch: Batch = {
      parsed: this.parsed,
      traces: this.traces,
      malformed: this.malformed,
      malformedKinds: this.kinds,
      lines: this.lines,
      byteOffset: this.byteOffset,
      lineNo: this.lineNo
    }
    this.parsed = []
    this.traces = 0
    this.bytes = 0
    this.malformed = []
    this.kinds = []
    this.lines = 0
    return batch
  }

  /**
   * A line longer than AUTOTUNE_MAX_LINE_BYTES, counted malformed from its first bytes without ever being held
   * whole: one such line costs no more memory than a short one.
   */
  oversized(bytes: number, head: string) {
    const at = this.advance(bytes)
    this.reject(
      `${this.file}\n${at}\n${bytes}\n${head}`,
      at,
      "line too long",
      `line of ${bytes} bytes is longer than AUTOTUNE_MAX_LINE_BYTES (${this.maxLineBytes})`,
      head
    )
  }

  /** Counts a line of `bytes` and returns where it started. */
  private advance(bytes: number): number {
    this.bytes += bytes
    const at = this.byteOffset
    this.byteOffset += bytes
    this.lineNo++
    this.lines++
    return at
  }

  private line(raw: string, bytes: number) {
    const at = this.advance(bytes)
    if (raw.trim() === "") return
    let parsed: ReturnType<typeof parseTraceLine>
    try {
      parsed = parseTraceLine(raw, this.redact)
    } catch (error) {
      // The parser and the redactor are written never to throw on any input; should one still do, that line
      // is counted malformed and the rest of the file goes in. Its text was not redacted: none of it is kept.
      this.reject(
        `${this.file}\n${at}\n${raw}`,
        at,
        "could not be processed",
        `could not be processed (${String(error).slice(0, 120)})`,
        ""
      )
      return
    }
    if (parsed.ok) {
      this.traces++
      const line = { trace: parsed.trace, byteOffset: at, lineNo: this.lineNo }
      if (this.sink === undefined) this.parsed.push(line)
      else this.sink(line)
      return
    }
    this.reject(`${this.file}\n${at}\n${raw}`, at, parsed.kind, parsed.reason, raw)
  }

  private reject(identity: string, at: number, kind: string, reason: string, text: string) {
    this.kinds.push(kind)
    this.malformed.push({
      line_hash: contentId(identity),
      file: this.file,
      line_no: this.lineNo,
      byte_offset: at,
      reason,
      excerpt: redactIf(this.redact, text.slice(0, EXCERPT_BYTES)).slice(0, 300),
      seen_at: Date.now(),
      redaction_version: this.version
    })
  }
}

/** What a malformed line keeps of its text (redacted), at most. */
const EXCERPT_BYTES = 300

const CHUNK_BYTES = 1 << 20

/** What reading a file ended with: bytes read, and the length of an unfinished last line left for the next run. */
export interface ReadEnd {
  readonly bytes: number
  readonly carried: number
}

/**
 * Reads an open file from a saved position up to `size` (the size seen at the start: a line DotClaw appends
 * meanwhile waits for the next run) and yields its batches in order, each as soon as it is full. A line
 * longer than `maxLineBytes` is never held whole: its first bytes are kept for the malformed record and the
 * rest streams past to its newline.
 */
export function* fileBatches(
  fd: number,
  file: string,
  redact: boolean,
  from: { readonly byteOffset: number; readonly lineNo: number },
  size: number,
  options: { readonly batchLines?: number; readonly sink?: ParsedSink; readonly maxLineBytes?: number } = {}
): Generator<Batch, ReadEnd> {
  const maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
  const batcher = new LineBatcher(
    file,
    redact,
    from.byteOffset,
    from.lineNo,
    options.batchLines,
    options.sink,
    BATCH_BYTES,
    maxLine
  )
  // One reused buffer holding bytes [start, end) not yet taken as lines. Allocating a fresh Buffer per chunk
  // would pile up external memory faster than the GC returns it.
  let buffer = Buffer.alloc(2 * CHUNK_BYTES)
  let start = 0
  let end = 0
  let readAt = from.byteOffset
  // An over-long line being streamed past: its first bytes and how many were dropped so far.
  let skipping: { head: string; bytes: number } | undefined
  for (;;) {
    if (skipping !== undefined) {
      const nl = buffer.indexOf(10, start)
      if (nl !== -1 && nl < end) {
        batcher.oversized(skipping.bytes + nl - start + 1, skipping.head)
        skipping = undefined
        start = nl + 1
      } else {
        skipping.bytes += end - start
        start = end = 0
      }
    }
    if (skipping === undefined) {
      const { batch, next } = batcher.feed(buffer, start, end)
      start = next
      if (batch !== undefined) {
        yield batch
        continue
      }
      if (end - start > maxLine) {
        skipping = { head: buffer.toString("utf8", start, start + EXCERPT_BYTES), bytes: end - start }
        start = end = 0
      }
    }
    if (readAt >= size) break
    // Only an unfinished line is left: move it to the front and read more after it.
    buffer.copy(buffer, 0, start, end)
    end -= start
    start = 0
    if (end === buffer.length) {
      const bigger = Buffer.alloc(buffer.length * 2)
      buffer.copy(bigger, 0, 0, end)
      buffer = bigger
    }
    const bytesRead = fs.readSync(fd, buffer, end, Math.min(buffer.length - end, size - readAt), readAt)
    if (bytesRead === 0) break
    readAt += bytesRead
    end += bytesRead
  }
  const last = batcher.take()
  if (last !== undefined) yield last
  // An unfinished last line (an over-long one included) is read again from its start next run.
  return { bytes: readAt - from.byteOffset, carried: end - start + (skipping?.bytes ?? 0) }
}

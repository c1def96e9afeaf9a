/**
 * A DotClaw trace as autotune stores it (see docs/dotclaw-formats.md §1). Free text is redacted
 * already when `redact` is on; structural fields (ids, timestamps, pack versions) never are.
 */
export interface ToolCall {
  readonly name: string
  readonly ok: boolean
  readonly args?: unknown
  readonly error?: string
  readonly durationMs?: number
}

export interface Trace {
  readonly traceId: string
  readonly timestamp: string
  readonly createdAt: number
  readonly chatId: string | null
  readonly groupFolder: string | null
  readonly userId: string | null
  readonly modelId: string | null
  readonly source: string | null
  readonly inputText: string
  /** The message the agent answered: the last `<message>` element, unescaped; or the plain input. */
  readonly messageText: string
  readonly outputText: string | null
  readonly memorySummary: string | null
  readonly memoryFacts: ReadonlyArray<string>
  readonly memoryRecall: ReadonlyArray<string>
  readonly sessionRecall: ReadonlyArray<string>
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly latencyMs: number | null
  readonly tokensPrompt: number | null
  readonly tokensCompletion: number | null
  readonly costUsd: number | null
  readonly errorCode: string | null
  readonly isError: boolean
  /** behavior -> version; "*" holds a lone legacy `prompt_pack_version`. */
  readonly packVersions: Readonly<Record<string, string>>
  /** Fields DotClaw writes that autotune does not model (yet): kept, never dropped. */
  readonly extra: Readonly<Record<string, unknown>>
}

/**
 * How each field of a stored trace is treated by redaction: "text" is cleaned before it is stored or sent (free
 * text, names a person or tool could have written a secret into); "id" is kept as written because joins and
 * per-person and per-chat counts need it (trace, chat, user ids, and DotClaw's group folder, the chat's folder
 * name); "structure" is not text a person writes (times, numbers, flags, the pack versions DotClaw served). A field
 * added to Trace or ToolCall must be classified here, or the type check fails (and test/trace.test.ts with it).
 */
export type FieldClass = "text" | "id" | "structure"

export const TRACE_FIELDS: { readonly [K in keyof Trace]-?: FieldClass } = {
  traceId: "id",
  timestamp: "structure",
  createdAt: "structure",
  chatId: "id",
  groupFolder: "id",
  userId: "id",
  modelId: "text",
  source: "text",
  inputText: "text",
  messageText: "text",
  outputText: "text",
  memorySummary: "text",
  memoryFacts: "text",
  memoryRecall: "text",
  sessionRecall: "text",
  toolCalls: "text",
  latencyMs: "structure",
  tokensPrompt: "structure",
  tokensCompletion: "structure",
  costUsd: "structure",
  errorCode: "text",
  isError: "structure",
  packVersions: "structure",
  extra: "text"
}

export const TOOL_CALL_FIELDS: { readonly [K in keyof ToolCall]-?: FieldClass } = {
  name: "text",
  ok: "structure",
  args: "text",
  error: "text",
  durationMs: "structure"
}

/** `kind` is a short, stable name for the reason (counted in `ingest --json`); `reason` says it for a person. */
export type ParseResult =
  { readonly ok: true; readonly trace: Trace } | { readonly ok: false; readonly kind: string; readonly reason: string }

/**
 * A turn's fixed draw in [0, 1) for the judge's samples (judge/Sampling.ts): FNV-1a, 32 bits, of its trace id.
 * Not cryptographic: it only has to spread ids evenly and be the same every time.
 */
export const sampleDraw = (traceId: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < traceId.length; i++) {
    h ^= traceId.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) / 4294967296
}

/**
 * A DotClaw trace as autotune stores it (see shared/dotclaw-interop.md §1). Free text is redacted
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

/** `kind` is a short, stable name for the reason (counted in `ingest --json`); `reason` says it for a person. */
export type ParseResult = { readonly ok: true; readonly trace: Trace } | { readonly ok: false; readonly kind: string; readonly reason: string }

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


/**
 * A model request and its answer as autotune sees them, whatever the provider: the request, the answer with its
 * tokens, the classified error, and how an error's retry-after is read.
 */
import { Schema } from "effect"

/** A structured answer the model must give: Anthropic gets it as a forced tool, others as a JSON reply. */
export interface OutputTool {
  readonly name: string
  readonly description: string
  /** JSON Schema of the tool input / the JSON reply. */
  readonly inputSchema: Record<string, unknown>
  /** Whether a parsed answer is usable: the runner counts the answers that are not, per model. */
  readonly accepts?: (value: unknown) => boolean
}

export interface LlmMessage {
  readonly role: "user" | "assistant"
  readonly content: string
}

export interface LlmRequest {
  /** Which pipeline stage spends the call: recorded with it, for the bill. */
  readonly stage: string
  readonly model: string
  readonly system: string
  readonly messages: ReadonlyArray<LlmMessage>
  readonly maxTokens: number
  readonly temperature: number
  readonly output?: OutputTool
}

export interface LlmResponse {
  /** The text of the reply (for structured output with a tool, the tool input as JSON). */
  readonly text: string
  /** The tool input when the provider returned one. */
  readonly structured?: unknown
  readonly tokensIn: number
  readonly tokensOut: number
  /** Cost the provider reported, when it does (OpenRouter's usage.cost). */
  readonly reportedCostUsd?: number
  /** The answer stopped at max_tokens: a structured answer may be cut off. */
  readonly truncated?: boolean
}

export const LlmErrorReason = Schema.Literal(
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport",
  "BadRequest",
  "Auth",
  "NotFound",
  "BadResponse",
  "Halted",
  "BudgetExhausted",
  "Unavailable"
)
export type LlmErrorReason = typeof LlmErrorReason.Type

// A garbage body at HTTP 200 comes from a proxy or a provider hiccup far more often than from a stable fault.
const RETRYABLE: ReadonlySet<LlmErrorReason> = new Set([
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport",
  "BadResponse"
])

/** One failed LLM call, after classification. Only the transient reasons are retried. */
export class LlmError extends Schema.TaggedError<LlmError>()("LlmError", {
  reason: LlmErrorReason,
  status: Schema.optional(Schema.Number),
  retryAfterMs: Schema.optional(Schema.Number),
  detail: Schema.String
}) {
  get retryable(): boolean {
    return RETRYABLE.has(this.reason)
  }
  override get message(): string {
    return `LLM call failed (${this.reason}${this.status === undefined ? "" : ` ${this.status}`}): ${this.detail}`
  }
}

/** Classifies an HTTP status the same way for every provider. */
export const reasonForStatus = (status: number): LlmErrorReason =>
  status === 429
    ? "RateLimited"
    : status === 529 || status === 503
      ? "Overloaded"
      : status === 408
        ? "Timeout"
        : status >= 500
          ? "ServerError"
          : status === 401 || status === 403
            ? "Auth"
            : status === 404
              ? "NotFound"
              : "BadRequest"

// A 400 about this one input (too long for the context) says nothing about our settings; any other 400 does.
const INPUT_SPECIFIC = /too long|too many tokens|context (length|window)|maximum context|exceeds? the max/i

/** A failure the user must fix in the configuration: every further call would fail the same way. */
export const isConfigFailure = (error: LlmError): boolean =>
  error.reason === "Auth" ||
  error.reason === "NotFound" ||
  (error.reason === "BadRequest" && !INPUT_SPECIFIC.test(error.detail))

/** A failure that says the provider (or the way to it) is in trouble: the circuit breaker counts these. */
export const isProviderFailure = (error: LlmError): boolean => error.retryable && error.reason !== "RateLimited"

/** `retry-after` in seconds or as an HTTP date; `retry-after-ms` when a provider sends it. */
export const parseRetryAfter = (
  get: (name: string) => string | null | undefined,
  now = Date.now()
): number | undefined => {
  const ms = get("retry-after-ms")
  if (ms != null && ms !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = get("retry-after")
  if (value == null || value === "") return undefined
  if (Number.isFinite(Number(value))) return Math.max(0, Number(value) * 1000)
  const date = Date.parse(value)
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined
}

/** One request of a batch, named so its answer can be matched: custom ids are [A-Za-z0-9_-]{1,64}. */
export interface BatchItem {
  readonly customId: string
  readonly request: LlmRequest
}

/** Where a submitted batch stands at the provider. */
export interface BatchStatus {
  readonly id: string
  readonly ended: boolean
  /** When the provider gives up on what is still unprocessed (Anthropic: 24 hours after submission). */
  readonly expiresAt: number
}

/** One answer of an ended batch: a reply, a failure, or a request the provider never ran. */
export type BatchResult =
  | { readonly customId: string; readonly type: "succeeded"; readonly response: LlmResponse }
  | { readonly customId: string; readonly type: "errored"; readonly error: LlmError }
  | { readonly customId: string; readonly type: "expired" | "canceled" }

/**
 * The Anthropic provider through its SDK: a request as a Messages call (structured answers as a forced tool
 * or a JSON reply, as Structured.ts chooses), its errors classified for LlmRunner, and the Message Batches
 * interface for the judge's half-price trend sample.
 */
import Anthropic from "@anthropic-ai/sdk"
import { Effect, Layer, Redacted } from "effect"
import { Settings } from "../config/Config.js"
import {
  type BatchResult,
  type BatchStatus,
  LlmError,
  type LlmErrorReason,
  parseRetryAfter,
  reasonForStatus,
  type LlmRequest,
  type LlmResponse
} from "../Domain/Llm.js"
import { Llm, type LlmBatches } from "./Llm.js"
import { extractJson, jsonInstruction, strictSchema, type StructuredMode, fallbackMode } from "./Structured.js"

/** `anthropic/claude-haiku-4-5` (the OpenRouter spelling the README defaults use) -> `claude-haiku-4-5`. */
export const anthropicModelId = (model: string): string | undefined => {
  if (model.startsWith("anthropic/")) return model.slice("anthropic/".length)
  return model.includes("/") ? undefined : model
}

const classify = (error: unknown): LlmError => {
  if (error instanceof Anthropic.APIConnectionTimeoutError)
    return new LlmError({ reason: "Timeout", detail: error.message })
  if (error instanceof Anthropic.APIUserAbortError) return new LlmError({ reason: "Transport", detail: "aborted" })
  if (error instanceof Anthropic.APIConnectionError) return new LlmError({ reason: "Transport", detail: error.message })
  if (error instanceof Anthropic.APIError && error.status !== undefined) {
    const headers = error.headers
    const retryAfterMs = parseRetryAfter((name) => headers?.get(name))
    return new LlmError({
      reason: reasonForStatus(error.status),
      status: error.status,
      detail: error.message.slice(0, 300),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
    })
  }
  // A body that is not JSON, or not a message, lands here.
  return new LlmError({
    reason: "BadResponse",
    detail: error instanceof Error ? error.message.slice(0, 300) : String(error)
  })
}

/** Anthropic's answer as text and, when one was asked for, the structured value (tool input or JSON text). */
const toResponse = (message: unknown, request: Pick<LlmRequest, "output">): Either<LlmResponse> => {
  const m = message as {
    content?: unknown
    stop_reason?: string
    usage?: { input_tokens?: number; output_tokens?: number }
  } | null
  if (m === null || typeof m !== "object" || !Array.isArray(m.content)) {
    return { error: new LlmError({ reason: "BadResponse", detail: "the reply is not an Anthropic message" }) }
  }
  const blocks = m.content as Array<{ type?: string; text?: string; name?: string; input?: unknown }>
  const tool =
    request.output === undefined
      ? undefined
      : blocks.find((b) => b.type === "tool_use" && b.name === request.output?.name)
  // Thinking blocks are the model's scratch work, never the answer.
  const text = blocks
    .filter((b) => b.type === "text")
    .map((b) => b.text ?? "")
    .join("")
  const structured = request.output === undefined ? undefined : tool !== undefined ? tool.input : extractJson(text)
  return {
    value: {
      text: tool !== undefined ? JSON.stringify(tool.input) : text,
      ...(structured !== undefined ? { structured } : {}),
      ...(m.stop_reason === "max_tokens" ? { truncated: true } : {}),
      tokensIn: m.usage?.input_tokens ?? 0,
      tokensOut: m.usage?.output_tokens ?? 0
    }
  }
}

type Either<A> =
  { readonly value: A; readonly error?: undefined } | { readonly error: LlmError; readonly value?: undefined }

// Models that reject forced tool use and think by default (Claude Sonnet 5.5 and its generation): they get
// a JSON Schema output format and low effort, so a short judge answer is not eaten by thinking.
const JSON_SCHEMA_FIRST = /^claude-(sonnet|opus|haiku)-5-5/

/** The SDK prints a deprecation line on every call; autotune says it once per run instead (see Models.ts). */
const withoutSdkWarnings = <A>(f: () => A): A => {
  const warn = console.warn
  console.warn = () => undefined
  try {
    return f()
  } finally {
    console.warn = warn
  }
}

const statusOf = (batch: Anthropic.Messages.MessageBatch): BatchStatus => ({
  id: batch.id,
  ended: batch.processing_status === "ended",
  expiresAt: Date.parse(batch.expires_at)
})

/**
 * Message Batches: the same requests at half price, answered within 24 hours. A request is sent in the
 * structured mode its model is known to take; an answer refused for that mode moves the model to the next
 * mode, so the next batch (or call) asks the way the model accepts.
 */
const anthropicBatches = (
  client: Anthropic,
  paramsOf: (
    request: LlmRequest,
    model: string,
    mode: StructuredMode
  ) => Anthropic.Messages.MessageCreateParamsNonStreaming,
  modeOf: (model: string) => StructuredMode,
  setMode: (model: string, mode: StructuredMode) => void
): LlmBatches => ({
  submit: (items) =>
    Effect.gen(function* () {
      const requests: Array<Anthropic.Messages.Batches.BatchCreateParams.Request> = []
      for (const { customId, request } of items) {
        const model = anthropicModelId(request.model)
        if (model === undefined)
          return yield* new LlmError({
            reason: "BadRequest",
            detail: `${request.model} is not an Anthropic model; set AUTOTUNE_PROVIDER=openrouter to use it`
          })
        requests.push({ custom_id: customId, params: paramsOf(request, model, modeOf(model)) })
      }
      const batch = yield* Effect.tryPromise({
        try: (signal) => withoutSdkWarnings(() => client.messages.batches.create({ requests }, { signal })),
        catch: classify
      })
      return statusOf(batch)
    }),
  status: (id) =>
    Effect.tryPromise({ try: (signal) => client.messages.batches.retrieve(id, {}, { signal }), catch: classify }).pipe(
      Effect.map(statusOf)
    ),
  results: (id, requestOf) =>
    Effect.tryPromise({
      try: async (signal) => {
        const out: Array<BatchResult> = []
        for await (const line of await client.messages.batches.results(id, {}, { signal })) {
          const result = line.result
          const request = requestOf(line.custom_id)
          if (result.type === "succeeded") {
            const response = toResponse(result.message, request ?? {})
            out.push(
              response.error === undefined
                ? { customId: line.custom_id, type: "succeeded", response: response.value }
                : { customId: line.custom_id, type: "errored", error: response.error }
            )
          } else if (result.type === "errored") {
            const error = new LlmError({
              reason: batchErrorReason(result.error.error.type),
              detail: result.error.error.message.slice(0, 300)
            })
            const model = request === undefined ? undefined : anthropicModelId(request.model)
            const next = model === undefined ? undefined : fallbackMode(modeOf(model), error.detail)
            if (model !== undefined && next !== undefined) setMode(model, next)
            out.push({ customId: line.custom_id, type: "errored", error })
          } else out.push({ customId: line.custom_id, type: result.type })
        }
        return out
      },
      catch: classify
    })
})

/** A batch answer's error type as the reason a direct call would have failed with. */
const batchErrorReason = (type: string): LlmErrorReason =>
  type === "invalid_request_error"
    ? "BadRequest"
    : type === "authentication_error" || type === "permission_error"
      ? "Auth"
      : type === "not_found_error"
        ? "NotFound"
        : type === "rate_limit_error"
          ? "RateLimited"
          : type === "overloaded_error"
            ? "Overloaded"
            : type === "timeout_error"
              ? "Timeout"
              : "ServerError"

/** The Anthropic Messages API through the official SDK; structured output by forced tool use or JSON Schema. */
export const AnthropicLlm = Layer.effect(
  Llm,
  Effect.map(Settings, ({ config }) => {
    const client = new Anthropic({
      apiKey: Redacted.value(config.anthropicApiKey),
      baseURL: config.anthropicBaseUrl,
      // LlmRunner owns retries and timeouts for every provider alike.
      maxRetries: 0,
      timeout: config.llmTimeoutMs + 5_000
    })
    const modes = new Map<string, StructuredMode>()

    const structuredParams = (request: LlmRequest, model: string, mode: StructuredMode) => {
      const output = request.output
      if (output === undefined) return {}
      switch (mode) {
        case "tool":
          return {
            tools: [
              {
                name: output.name,
                description: output.description,
                input_schema: output.inputSchema as Anthropic.Tool.InputSchema
              }
            ],
            tool_choice: { type: "tool" as const, name: output.name }
          }
        case "json_schema":
          return {
            output_config: {
              format: {
                type: "json_schema" as const,
                schema: strictSchema(output.inputSchema) as Record<string, unknown>
              },
              ...(JSON_SCHEMA_FIRST.test(model) ? { effort: "low" as const } : {})
            }
          }
        case "prompt":
          return {}
      }
    }

    const paramsOf = (request: LlmRequest, model: string, mode: StructuredMode) => ({
      model,
      // The Messages API of SDK 1.x takes no temperature (and current models refuse one).
      max_tokens: request.maxTokens,
      system:
        request.output !== undefined && mode === "prompt"
          ? `${request.system}\n\n${jsonInstruction(request.output)}`
          : request.system,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      ...structuredParams(request, model, mode)
    })

    const send = (request: LlmRequest, model: string, mode: StructuredMode) =>
      Effect.tryPromise({
        try: (signal) => withoutSdkWarnings(() => client.messages.create(paramsOf(request, model, mode), { signal })),
        catch: classify
      })

    const modeOf = (model: string): StructuredMode =>
      modes.get(model) ?? (JSON_SCHEMA_FIRST.test(model) ? "json_schema" : "tool")

    const complete = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      Effect.gen(function* () {
        const model = anthropicModelId(request.model)
        if (model === undefined) {
          return yield* new LlmError({
            reason: "BadRequest",
            detail: `${request.model} is not an Anthropic model; set AUTOTUNE_PROVIDER=openrouter to use it`
          })
        }
        let mode = modeOf(model)
        for (;;) {
          const result = yield* Effect.either(send(request, model, mode))
          if (result._tag === "Right") {
            modes.set(model, mode)
            const response = toResponse(result.right, request)
            if (response.error !== undefined) return yield* response.error
            return response.value
          }
          // A model that refuses this way of asking for structure gets the next one, once per run.
          const next =
            request.output !== undefined && result.left.reason === "BadRequest"
              ? fallbackMode(mode, result.left.detail)
              : undefined
          if (next === undefined) return yield* result.left
          mode = next
          modes.set(model, next)
        }
      })
    return {
      provider: "anthropic",
      complete,
      batches: anthropicBatches(client, paramsOf, modeOf, (model, mode) => modes.set(model, mode))
    }
  })
)

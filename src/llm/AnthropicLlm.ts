import Anthropic from "@anthropic-ai/sdk"
import { Effect, Layer } from "effect"
import { Settings } from "../Config.js"
import { LlmError, parseRetryAfter, reasonForStatus, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import { Llm } from "./Llm.js"

/** `anthropic/claude-haiku-4-5` (the OpenRouter spelling the README defaults use) -> `claude-haiku-4-5`. */
export const anthropicModelId = (model: string): string | undefined => {
  if (model.startsWith("anthropic/")) return model.slice("anthropic/".length)
  return model.includes("/") ? undefined : model
}

const classify = (error: unknown): LlmError => {
  if (error instanceof Anthropic.APIConnectionTimeoutError) return new LlmError({ reason: "Timeout", detail: error.message })
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
  return new LlmError({ reason: "BadResponse", detail: error instanceof Error ? error.message.slice(0, 300) : String(error) })
}

const toResponse = (message: unknown, request: LlmRequest): Either<LlmResponse> => {
  const m = message as { content?: unknown; usage?: { input_tokens?: number; output_tokens?: number } } | null
  if (m === null || typeof m !== "object" || !Array.isArray(m.content)) {
    return { error: new LlmError({ reason: "BadResponse", detail: "the reply is not an Anthropic message" }) }
  }
  const blocks = m.content as Array<{ type?: string; text?: string; name?: string; input?: unknown }>
  const tool = request.output === undefined ? undefined : blocks.find((b) => b.type === "tool_use" && b.name === request.output?.name)
  const text = blocks.filter((b) => b.type === "text").map((b) => b.text ?? "").join("")
  return {
    value: {
      text: tool !== undefined ? JSON.stringify(tool.input) : text,
      ...(tool !== undefined ? { structured: tool.input } : {}),
      tokensIn: m.usage?.input_tokens ?? 0,
      tokensOut: m.usage?.output_tokens ?? 0
    }
  }
}

type Either<A> = { readonly value: A; readonly error?: undefined } | { readonly error: LlmError; readonly value?: undefined }

/** The Anthropic Messages API through the official SDK; structured output by a forced tool call. */
export const AnthropicLlm = Layer.effect(
  Llm,
  Effect.map(Settings, ({ config }) => {
    const client = new Anthropic({
      apiKey: config.anthropicApiKey,
      baseURL: config.anthropicBaseUrl,
      // LlmRunner owns retries and timeouts for every provider alike.
      maxRetries: 0,
      timeout: config.llmTimeoutMs + 5_000
    })
    const complete = (request: LlmRequest) =>
      Effect.gen(function* () {
        const model = anthropicModelId(request.model)
        if (model === undefined) {
          return yield* new LlmError({ reason: "BadRequest", detail: `${request.model} is not an Anthropic model; set AUTOTUNE_PROVIDER=openrouter to use it` })
        }
        const message = yield* Effect.tryPromise({
          try: (signal) =>
            client.messages.create(
              {
                model,
                // The Messages API of SDK 1.x takes no temperature; determinism comes from the forced tool.
                max_tokens: request.maxTokens,
                system: request.system,
                messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
                ...(request.output !== undefined
                  ? {
                      tools: [{ name: request.output.name, description: request.output.description, input_schema: request.output.inputSchema as Anthropic.Tool.InputSchema }],
                      tool_choice: { type: "tool" as const, name: request.output.name }
                    }
                  : {})
              },
              { signal }
            ),
          catch: classify
        })
        const result = toResponse(message, request)
        if (result.error !== undefined) return yield* result.error
        return result.value
      })
    return { provider: "anthropic", complete }
  })
)

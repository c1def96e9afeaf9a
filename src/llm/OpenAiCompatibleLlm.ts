/**
 * OpenRouter and local servers (Ollama, vLLM) through their OpenAI-compatible chat completions endpoint: one
 * request, one answer, errors classified for LlmRunner; no batch interface.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer } from "effect"
import { isSet, Settings } from "../config/Config.js"
import {
  LlmError,
  type OutputTool,
  parseRetryAfter,
  reasonForStatus,
  type LlmRequest,
  type LlmResponse
} from "../Domain/Llm.js"
import { chooseProvider, Llm } from "./Llm.js"
import { extractJson, fallbackMode, jsonInstruction, strictSchema, type StructuredMode } from "./Structured.js"

interface ChatCompletion {
  readonly choices?: ReadonlyArray<{
    readonly finish_reason?: string
    readonly message?: {
      readonly content?: string | null
      readonly tool_calls?: ReadonlyArray<{
        readonly function?: { readonly name?: string; readonly arguments?: string }
      }>
    }
  }>
  readonly usage?: { readonly prompt_tokens?: number; readonly completion_tokens?: number; readonly cost?: number }
}

/** The body fields that ask for structure in each mode: a forced function call, a JSON Schema format, or none. */
const structuredBody = (output: OutputTool | undefined, mode: StructuredMode) => {
  if (output === undefined || mode === "prompt") return {}
  if (mode === "tool") {
    return {
      tools: [
        {
          type: "function",
          function: { name: output.name, description: output.description, parameters: output.inputSchema }
        }
      ],
      tool_choice: { type: "function", function: { name: output.name } }
    }
  }
  return {
    response_format: {
      type: "json_schema",
      json_schema: { name: output.name, strict: true, schema: strictSchema(output.inputSchema) }
    }
  }
}

/** The structured value of a reply: the forced call's arguments, else JSON found in the text (leniently). */
const structuredOf = (
  output: OutputTool | undefined,
  message: NonNullable<NonNullable<ChatCompletion["choices"]>[number]["message"]>
) => {
  if (output === undefined) return undefined
  const args = message.tool_calls?.find((c) => c.function?.name === output.name)?.function?.arguments
  if (typeof args === "string") {
    const parsed = extractJson(args)
    if (parsed !== undefined) return parsed
  }
  return typeof message.content === "string" ? extractJson(message.content) : undefined
}

/**
 * Chat completions over @effect/platform's HttpClient: OpenRouter by default, or any compatible server
 * (Ollama, vLLM, LM Studio) by OPENROUTER_BASE_URL. Structured output by a forced function call, stepping
 * down to a JSON Schema response format and then to a plain JSON instruction for models that refuse it.
 */
export const OpenAiCompatibleLlm = Layer.effect(
  Llm,
  Effect.gen(function* () {
    const { config } = yield* Settings
    const http = yield* HttpClient.HttpClient
    const choice = chooseProvider(config)
    const isOpenRouter = choice.available && choice.provider === "openrouter"
    const url = `${config.openrouterBaseUrl.replace(/\/+$/, "")}/chat/completions`
    const modes = new Map<string, StructuredMode>()

    const send = (request: LlmRequest, mode: StructuredMode) =>
      Effect.gen(function* () {
        const system =
          request.output !== undefined && mode === "prompt"
            ? `${request.system}\n\n${jsonInstruction(request.output)}`
            : request.system
        const body = {
          model: request.model,
          max_tokens: request.maxTokens,
          temperature: request.temperature,
          messages: [{ role: "system", content: system }, ...request.messages],
          ...structuredBody(request.output, mode),
          ...(isOpenRouter ? { usage: { include: true } } : {})
        }
        let httpRequest = HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeader("x-title", "autotune"),
          HttpClientRequest.bodyUnsafeJson(body)
        )
        if (isSet(config.openrouterApiKey))
          httpRequest = HttpClientRequest.bearerToken(httpRequest, config.openrouterApiKey)
        const response = yield* http
          .execute(httpRequest)
          .pipe(Effect.mapError((e) => new LlmError({ reason: "Transport", detail: e.message.slice(0, 300) })))
        if (response.status >= 400) {
          const text = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
          const retryAfterMs = parseRetryAfter((name) => response.headers[name])
          return yield* new LlmError({
            reason: reasonForStatus(response.status),
            status: response.status,
            detail: text.slice(0, 300) || `HTTP ${response.status}`,
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
          })
        }
        const raw = yield* response.text.pipe(
          Effect.mapError(
            () =>
              new LlmError({
                reason: "BadResponse",
                status: response.status,
                detail: "the reply body could not be read"
              })
          )
        )
        let json: ChatCompletion
        try {
          json = JSON.parse(raw) as ChatCompletion
        } catch {
          return yield* new LlmError({
            reason: "BadResponse",
            status: response.status,
            detail: `the reply body is not JSON: ${raw.slice(0, 120)}`
          })
        }
        const first = json.choices?.[0]
        const message = first?.message
        if (message === undefined || (typeof message.content !== "string" && message.tool_calls === undefined)) {
          return yield* new LlmError({
            reason: "BadResponse",
            detail: "the reply has no choices[0].message content or tool call"
          })
        }
        const structured = structuredOf(request.output, message)
        const result: LlmResponse = {
          text:
            typeof message.content === "string" && message.content !== ""
              ? message.content
              : JSON.stringify(structured ?? null),
          ...(structured !== undefined ? { structured } : {}),
          ...(first?.finish_reason === "length" ? { truncated: true } : {}),
          tokensIn: json.usage?.prompt_tokens ?? 0,
          tokensOut: json.usage?.completion_tokens ?? 0,
          ...(typeof json.usage?.cost === "number" ? { reportedCostUsd: json.usage.cost } : {})
        }
        return result
      }).pipe(Effect.scoped)

    const complete = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      Effect.gen(function* () {
        let mode = modes.get(request.model) ?? "tool"
        for (;;) {
          const result = yield* Effect.either(send(request, mode))
          if (result._tag === "Right") {
            modes.set(request.model, mode)
            return result.right
          }
          const next =
            request.output !== undefined && result.left.reason === "BadRequest"
              ? fallbackMode(mode, result.left.detail)
              : undefined
          if (next === undefined) return yield* result.left
          mode = next
          modes.set(request.model, next)
        }
      })

    return { provider: isOpenRouter ? "openrouter" : "openai-compatible", complete }
  })
).pipe(Layer.provide(NodeHttpClient.layerUndici))

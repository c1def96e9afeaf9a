import { HttpClient, HttpClientRequest } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer } from "effect"
import { Settings } from "../Config.js"
import { LlmError, parseRetryAfter, reasonForStatus, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import { chooseProvider, Llm } from "./Llm.js"

/** Reply text of a model asked for JSON: the object itself, or the first {...} inside fences or prose. */
export const extractJson = (text: string): unknown => {
  const trimmed = text.trim()
  try {
    return JSON.parse(trimmed)
  } catch {
    const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(trimmed)
    const candidate = fenced?.[1] ?? trimmed.slice(trimmed.indexOf("{"), trimmed.lastIndexOf("}") + 1)
    try {
      return JSON.parse(candidate)
    } catch {
      return undefined
    }
  }
}

interface ChatCompletion {
  readonly choices?: ReadonlyArray<{ readonly message?: { readonly content?: string | null } }>
  readonly usage?: { readonly prompt_tokens?: number; readonly completion_tokens?: number; readonly cost?: number }
}

/**
 * Chat completions over @effect/platform's HttpClient: OpenRouter by default, or any compatible server
 * (Ollama, vLLM, LM Studio) by OPENROUTER_BASE_URL. Structured output is asked for in the prompt and parsed
 * strictly, since JSON modes differ from server to server.
 */
export const OpenAiCompatibleLlm = Layer.effect(
  Llm,
  Effect.gen(function* () {
    const { config } = yield* Settings
    const http = yield* HttpClient.HttpClient
    const choice = chooseProvider(config)
    const isOpenRouter = choice.available && choice.provider === "openrouter"
    const url = `${config.openrouterBaseUrl.replace(/\/+$/, "")}/chat/completions`

    const complete = (request: LlmRequest) =>
      Effect.gen(function* () {
        const system = request.output === undefined
          ? request.system
          : `${request.system}\n\nAnswer with one JSON object and nothing else, matching this JSON Schema:\n${JSON.stringify(request.output.inputSchema)}`
        const body = {
          model: request.model,
          max_tokens: request.maxTokens,
          temperature: request.temperature,
          messages: [{ role: "system", content: system }, ...request.messages],
          ...(isOpenRouter ? { usage: { include: true } } : {})
        }
        let httpRequest = HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeader("x-title", "autotune"),
          HttpClientRequest.bodyUnsafeJson(body)
        )
        if (config.openrouterApiKey !== "") httpRequest = HttpClientRequest.bearerToken(httpRequest, config.openrouterApiKey)
        const response = yield* http.execute(httpRequest).pipe(
          Effect.mapError((e) => new LlmError({ reason: "Transport", detail: e.message.slice(0, 300) }))
        )
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
        const json = (yield* response.json.pipe(
          Effect.mapError(() => new LlmError({ reason: "BadResponse", status: response.status, detail: "the reply body is not JSON" }))
        )) as ChatCompletion
        const content = json.choices?.[0]?.message?.content
        if (typeof content !== "string") {
          return yield* new LlmError({ reason: "BadResponse", detail: "the reply has no choices[0].message.content" })
        }
        const structured = request.output === undefined ? undefined : extractJson(content)
        const result: LlmResponse = {
          text: content,
          ...(structured !== undefined ? { structured } : {}),
          tokensIn: json.usage?.prompt_tokens ?? 0,
          tokensOut: json.usage?.completion_tokens ?? 0,
          ...(typeof json.usage?.cost === "number" ? { reportedCostUsd: json.usage.cost } : {})
        }
        return result
      }).pipe(Effect.scoped)

    return { provider: isOpenRouter ? "openrouter" : "openai-compatible", complete }
  })
).pipe(Layer.provide(NodeHttpClient.layerUndici))

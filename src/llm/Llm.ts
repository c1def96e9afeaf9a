/**
 * The port to a model provider: one request, one answer, classified errors. No retries, no timeouts, no
 * accounting here: LlmRunner owns that policy for every provider alike.
 */
import { Context, Effect, Layer } from "effect"
import { isSet, Settings } from "../config/Config.js"
import { type AppConfig } from "../config/Table.js"
import {
  type BatchItem,
  type BatchResult,
  type BatchStatus,
  LlmError,
  type LlmRequest,
  type LlmResponse
} from "../Domain/Llm.js"

export class Llm extends Context.Tag("autotune/Llm")<
  Llm,
  {
    readonly provider: string
    readonly complete: (request: LlmRequest) => Effect.Effect<LlmResponse, LlmError>
    /** The provider's batch interface (half price, answers within a day), where it has one. */
    readonly batches?: LlmBatches
  }
>() {}

export interface LlmBatches {
  readonly submit: (items: ReadonlyArray<BatchItem>) => Effect.Effect<BatchStatus, LlmError>
  readonly status: (id: string) => Effect.Effect<BatchStatus, LlmError>
  /** The answers of an ended batch; `requestOf` gives back the request each custom id stood for. */
  readonly results: (
    id: string,
    requestOf: (customId: string) => LlmRequest | undefined
  ) => Effect.Effect<ReadonlyArray<BatchResult>, LlmError>
}

export type ProviderChoice =
  { readonly available: true; readonly provider: string } | { readonly available: false; readonly why: string }

/** Which provider the configuration selects, or why none is usable. Never throws. */
export const chooseProvider = (config: AppConfig): ProviderChoice => {
  switch (config.provider) {
    case "anthropic":
      return isSet(config.anthropicApiKey)
        ? { available: true, provider: "anthropic" }
        : { available: false, why: "AUTOTUNE_PROVIDER=anthropic but ANTHROPIC_API_KEY is not set" }
    case "openrouter":
      return isSet(config.openrouterApiKey)
        ? { available: true, provider: "openrouter" }
        : { available: false, why: "AUTOTUNE_PROVIDER=openrouter but OPENROUTER_API_KEY is not set" }
    case "openai-compatible":
      // A local server (Ollama, vLLM, LM Studio) needs no key.
      return { available: true, provider: "openai-compatible" }
    default:
      if (isSet(config.anthropicApiKey)) return { available: true, provider: "anthropic" }
      if (isSet(config.openrouterApiKey)) return { available: true, provider: "openrouter" }
      return {
        available: false,
        why: "no LLM key: set ANTHROPIC_API_KEY or OPENROUTER_API_KEY (or AUTOTUNE_PROVIDER=openai-compatible with OPENROUTER_BASE_URL for a local server)"
      }
  }
}

/** The port when no provider is configured: every call fails at once with the reason, nothing is sent. */
export const UnavailableLlm = (why: string) =>
  Layer.succeed(Llm, {
    provider: "none",
    complete: () => Effect.fail(new LlmError({ reason: "Unavailable", detail: why }))
  })

/** Picks the provider layer from the configuration. */
export const LlmLive = (layers: {
  readonly anthropic: Layer.Layer<Llm, never, Settings>
  readonly openAiCompatible: Layer.Layer<Llm, never, Settings>
}) =>
  Layer.unwrapEffect(
    Effect.map(Settings, ({ config }) => {
      const choice = chooseProvider(config)
      if (!choice.available) return UnavailableLlm(choice.why)
      return choice.provider === "anthropic" ? layers.anthropic : layers.openAiCompatible
    })
  )

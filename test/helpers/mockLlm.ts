import { type Duration, Effect, Layer } from "effect"
import { LlmError, type LlmRequest, type LlmResponse } from "../../src/Domain/Llm.js"
import { Llm } from "../../src/llm/Llm.js"

/** One scripted step: an answer, a failure, or a delay before either. */
export type Step = LlmResponse | LlmError | { readonly delay: Duration.DurationInput; readonly then: LlmResponse | LlmError }

export const answer = (structured: unknown, tokens = 100): LlmResponse => ({ text: JSON.stringify(structured), structured, tokensIn: tokens, tokensOut: 20 })
export const fail = (reason: LlmError["reason"], extra: { status?: number; retryAfterMs?: number } = {}) => new LlmError({ reason, detail: "scripted", ...extra })

/**
 * A mock provider: `script` is consumed in order; when it is empty, `fallback` answers. Every request is
 * kept in `seen` for assertions.
 */
export const mockLlm = (script: Array<Step>, fallback: (request: LlmRequest) => LlmResponse | LlmError = () => answer({ score: 0.8, reason: "ok" })) => {
  const seen: Array<LlmRequest> = []
  const run = (step: LlmResponse | LlmError) => (step instanceof LlmError ? Effect.fail(step) : Effect.succeed(step))
  const layer = Layer.succeed(Llm, {
    provider: "anthropic",
    complete: (request) =>
      Effect.suspend(() => {
        seen.push(request)
        const step = script.shift() ?? fallback(request)
        if ("delay" in step) return Effect.zipRight(Effect.sleep(step.delay), run(step.then))
        return run(step)
      })
  })
  return { layer, seen }
}

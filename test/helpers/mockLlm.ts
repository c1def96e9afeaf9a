import { type Duration, Effect, Layer } from "effect"
import { type BatchItem, type BatchResult, LlmError, type LlmRequest, type LlmResponse } from "../../src/Domain/Llm.js"
import { Llm, type LlmBatches } from "../../src/llm/Llm.js"

/** One scripted step: an answer, a failure, or a delay before either. */
export type Step =
  LlmResponse | LlmError | { readonly delay: Duration.DurationInput; readonly then: LlmResponse | LlmError }

export const answer = (structured: unknown, tokens = 100): LlmResponse => ({
  text: JSON.stringify(structured),
  structured,
  tokensIn: tokens,
  tokensOut: 20
})
export const fail = (reason: LlmError["reason"], extra: { status?: number; retryAfterMs?: number } = {}) =>
  new LlmError({ reason, detail: "scripted", ...extra })

/**
 * A mock provider: `script` is consumed in order; when it is empty, `fallback` answers. Every request is
 * kept in `seen` for assertions.
 */
export const mockLlm = (
  script: Array<Step>,
  fallback: (request: LlmRequest) => LlmResponse | LlmError = () => answer({ score: 0.8, reason: "ok" }),
  options: { readonly batches?: boolean } = {}
) => {
  const seen: Array<LlmRequest> = []
  /** Requests sent in batches, by batch: a batch ends at once and is answered by `fallback`. */
  const batched: Array<ReadonlyArray<BatchItem>> = []
  const run = (step: LlmResponse | LlmError) => (step instanceof LlmError ? Effect.fail(step) : Effect.succeed(step))
  const ended = (id: string) => ({ id, ended: true, expiresAt: Date.now() + 86_400_000 })
  const batches: LlmBatches = {
    submit: (items) => Effect.sync(() => ended(`batch-${batched.push(items)}`)),
    status: (id) => Effect.succeed(ended(id)),
    results: (id) =>
      Effect.sync(() =>
        (batched[Number(id.slice("batch-".length)) - 1] ?? []).map((item): BatchResult => {
          const out = fallback(item.request)
          return out instanceof LlmError
            ? { customId: item.customId, type: "errored", error: out }
            : { customId: item.customId, type: "succeeded", response: out }
        })
      )
  }
  const layer = Layer.succeed(Llm, {
    provider: "anthropic",
    ...(options.batches === true ? { batches } : {}),
    complete: (request) =>
      Effect.suspend(() => {
        seen.push(request)
        const step = script.shift() ?? fallback(request)
        if ("delay" in step) return Effect.zipRight(Effect.sleep(step.delay), run(step.then))
        return run(step)
      })
  })
  return { layer, seen, batched }
}

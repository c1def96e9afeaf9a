/** What a run's LLM calls used, per stage: calls, tokens, cost (null when unknown, never $0) and egress redactions. */

export interface StageUsage {
  readonly calls: number
  readonly failed: number
  readonly tokensIn: number
  readonly tokensOut: number
  /** Null when a call went to a model without a known price: an unknown cost is never shown as $0. */
  readonly costUsd: number | null
  /** Values the egress guard replaced in this stage's requests before they were sent. */
  readonly egressRedactions: number
}

/** Anthropic's Message Batches bill half the standard price. */
export const BATCH_PRICE = 0.5

export const emptyUsage: StageUsage = {
  calls: 0,
  failed: 0,
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0,
  egressRedactions: 0
}

export const addCost = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b)

/** Sums the usage of the stages whose name starts with `prefix`. */
export const usageOf = (all: Record<string, StageUsage>, prefix: string): StageUsage =>
  Object.entries(all)
    .filter(([stage]) => stage.startsWith(prefix))
    .reduce(
      (a, [, u]) => ({
        calls: a.calls + u.calls,
        failed: a.failed + u.failed,
        tokensIn: a.tokensIn + u.tokensIn,
        tokensOut: a.tokensOut + u.tokensOut,
        costUsd: addCost(a.costUsd, u.costUsd),
        egressRedactions: a.egressRedactions + u.egressRedactions
      }),
      emptyUsage
    )

/** What was used between two readings of the same stages (an unknown cost at either end stays unknown). */
export const usageBetween = (before: StageUsage, after: StageUsage): StageUsage => ({
  calls: after.calls - before.calls,
  failed: after.failed - before.failed,
  tokensIn: after.tokensIn - before.tokensIn,
  tokensOut: after.tokensOut - before.tokensOut,
  costUsd: after.costUsd === null || before.costUsd === null ? null : after.costUsd - before.costUsd,
  egressRedactions: after.egressRedactions - before.egressRedactions
})

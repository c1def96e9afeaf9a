/**
 * What one optimizer run may cost, before it runs: the upper bound of logical calls per model (transient
 * retries of one call are not counted; a judge answer that could not be read is asked once more, and that
 * is), with tokens from what such calls used before in this store, or conservative defaults.
 */
import type { AppConfig } from "../Config.js"
import { bareModel, type PriceTable } from "../llm/Prices.js"

export type CallStage = "candidate" | "predict" | "judge" | "rerank"

export interface PlannedCalls {
  readonly stage: CallStage
  readonly model: string
  readonly calls: number
  readonly tokensIn: number
  readonly tokensOut: number
  /** Where the per-call tokens come from: this store's earlier calls of the kind, or the defaults. */
  readonly tokensFrom: "history" | "defaults"
  /** Null when the model has no known price. */
  readonly costUsd: number | null
}

/** Per-call tokens when the store has no history: the prompt limits the optimizer itself sets. */
const DEFAULT_TOKENS: Record<CallStage, readonly [number, number]> = {
  candidate: [6000, 4096],
  predict: [3000, 1024],
  judge: [2000, 300],
  rerank: [2000, 300]
}

/** Re-ranks look at this many of the best candidates, beside the baseline. */
export const RERANK_TOP = 3

/** Logical calls of one run on `validation` held-out turns with `candidates` proposals: an upper bound. */
export const callCounts = (validation: number, candidates: number): Record<CallStage, number> => {
  const variants = 1 + candidates
  return {
    candidate: 1,
    predict: variants * validation,
    judge: 2 * variants * validation,
    rerank: 2 * (1 + Math.min(RERANK_TOP, candidates)) * validation
  }
}

export const planCalls = (
  config: Pick<AppConfig, "candidateModel" | "predictorModel" | "judgeStage1Model" | "rerankModel">,
  counts: Record<CallStage, number>,
  prices: PriceTable,
  history: Partial<Record<CallStage, { readonly tokensIn: number; readonly tokensOut: number }>>
): ReadonlyArray<PlannedCalls> => {
  const models: Record<CallStage, string> = { candidate: config.candidateModel, predict: config.predictorModel, judge: config.judgeStage1Model, rerank: config.rerankModel }
  return (Object.keys(counts) as Array<CallStage>).map((stage) => {
    const seen = history[stage]
    const [perIn, perOut] = seen === undefined ? DEFAULT_TOKENS[stage] : [seen.tokensIn, seen.tokensOut]
    const calls = counts[stage]
    const price = prices[bareModel(models[stage])]
    const tokensIn = Math.round(calls * perIn)
    const tokensOut = Math.round(calls * perOut)
    return {
      stage,
      model: models[stage],
      calls,
      tokensIn,
      tokensOut,
      tokensFrom: seen === undefined ? "defaults" : "history",
      costUsd: price === undefined ? null : (tokensIn * price[0] + tokensOut * price[1]) / 1e6
    }
  })
}

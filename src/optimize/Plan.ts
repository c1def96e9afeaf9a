/**
 * What one optimizer run may cost, before it runs: the upper bound of logical calls per model (transient
 * retries of one call are not counted; a judge answer that could not be read is asked once more, and that
 * is), with tokens from what such calls used before in this store, or conservative defaults.
 */
import type { AppConfig } from "../config/Table.js"
import { costAt, type PriceTable } from "../config/Prices.js"

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

/** Candidates that go on to the held-out turns: the best by their mean on the validation turns. */
export const FINALISTS = 3

/** The sizes one run works with. */
export interface SearchShape {
  readonly heldOut: number
  readonly validation: number
  readonly minibatch: number
  readonly children: number
  readonly rounds: number
}

type Counts = Record<CallStage, number>
const countsOf = (candidate: number, replays: number, rerank = 0): Counts => ({
  candidate,
  predict: replays,
  judge: 2 * replays,
  rerank
})
const sum = (...cs: ReadonlyArray<Counts>): Counts => ({
  candidate: cs.reduce((n, c) => n + c.candidate, 0),
  predict: cs.reduce((n, c) => n + c.predict, 0),
  judge: cs.reduce((n, c) => n + c.judge, 0),
  rerank: cs.reduce((n, c) => n + c.rerank, 0)
})
export const totalCalls = (c: Counts) => c.candidate + c.predict + c.judge + c.rerank

// Upper bounds of logical calls: a replay per variant and turn, a judge verdict asked at most twice.
/** Before the rounds: the baseline on the validation turns. */
export const startCounts = (s: SearchShape) => countsOf(0, s.validation)
/** A round's reflection, then the parent and its children on the minibatch. */
export const reflectCounts = (s: SearchShape) => countsOf(1, (1 + s.children) * s.minibatch)
/** One child that beat its parent on the minibatch, scored on the validation turns. */
export const acceptCounts = (s: SearchShape) => countsOf(0, s.validation)
/** The end: baseline and finalists on the held-out turns, the stronger model's re-rank of the best. */
export const finalCounts = (s: SearchShape) => {
  const finalists = Math.min(FINALISTS, s.children * s.rounds)
  return countsOf(0, (1 + finalists) * s.heldOut, 2 * (1 + Math.min(RERANK_TOP, finalists)) * s.heldOut)
}

/** Logical calls of a whole run if every round runs and every child is accepted: an upper bound. */
export const callCounts = (s: SearchShape): Counts => {
  const round = sum(reflectCounts(s), ...Array.from({ length: s.children }, () => acceptCounts(s)))
  return sum(startCounts(s), ...Array.from({ length: s.rounds }, () => round), finalCounts(s))
}

export const planCalls = (
  config: Pick<AppConfig, "candidateModel" | "predictorModel" | "judgeStage1Model" | "rerankModel">,
  counts: Counts,
  prices: PriceTable,
  history: Partial<Record<CallStage, { readonly tokensIn: number; readonly tokensOut: number }>>
): ReadonlyArray<PlannedCalls> => {
  const models: Record<CallStage, string> = {
    candidate: config.candidateModel,
    predict: config.predictorModel,
    judge: config.judgeStage1Model,
    rerank: config.rerankModel
  }
  return (Object.keys(counts) as Array<CallStage>).map((stage) => {
    const seen = history[stage]
    const [perIn, perOut] = seen === undefined ? DEFAULT_TOKENS[stage] : [seen.tokensIn, seen.tokensOut]
    const calls = counts[stage]
    const tokensIn = Math.round(calls * perIn)
    const tokensOut = Math.round(calls * perOut)
    return {
      stage,
      model: models[stage],
      calls,
      tokensIn,
      tokensOut,
      tokensFrom: seen === undefined ? "defaults" : "history",
      costUsd: costAt(prices, models[stage], tokensIn, tokensOut)
    }
  })
}

/**
 * The final choice: only the best on the validation turns (the finalists) see the held-out turns; a winner
 * must gain at least AUTOTUNE_MIN_IMPROVEMENT there with a paired 95% lower bound above 0, under the judge and
 * again under the stronger re-rank model on the same replies.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { FINALISTS, RERANK_TOP } from "./Plan.js"
import { type Evaluator, type Replay, scoresOf } from "./Replay.js"
import { meanScores, pairedGain, type Scores } from "./Search.js"
import { clip, type Rubric } from "../judge/Prompts.js"
import type { AppConfig } from "../config/Table.js"
import { ancestry, type Candidate, type OptimizeDeps, type Replayed, type Row, type Sets } from "./OptimizeRun.js"
import type { Ready } from "./Readiness.js"

/** The candidates that beat the baseline (pool[0]) on the validation turns, best first, at most FINALISTS. */
export const finalistsOf = (pool: ReadonlyArray<Candidate>) => {
  const validationMean = (c: Candidate) => meanScores(c.validation).mean ?? -Infinity
  return pool
    .slice(1)
    .filter((c) => validationMean(c) > validationMean(pool[0]!))
    .sort((a, b) => validationMean(b) - validationMean(a))
    .slice(0, FINALISTS)
}

/**
 * The held-out turns the winner gained most on, for the person who approves it: the message (stored, redacted,
 * clipped) and both scores. Kept with the selection in the store, never in the pack file DotClaw reads.
 */
export const chosenOn = (
  rows: ReadonlyArray<Row>,
  baseline: ReadonlyArray<number | null>,
  winner: ReadonlyArray<number | null>,
  count = 3
) =>
  rows
    .flatMap((row, i) => {
      const b = baseline[i]
      const w = winner[i]
      return b == null || w == null
        ? []
        : [{ traceId: row.traceId, message: clip(row.messageText, 200), baseline: b, winner: w }]
    })
    .sort((x, y) => y.winner - y.baseline - (x.winner - x.baseline))
    .slice(0, count)

/** A paired gain over the baseline on the same turns. */
export interface Gain {
  readonly n: number
  readonly meanDiff: number
  readonly lowerBound: number
}

/** The finalist that holds under both judges: its replies, its scores, its gains. */
export interface Winner extends Gain {
  readonly c: Candidate
  /** Null where the replay failed: that turn is unscored, not 0. */
  readonly replies: ReadonlyArray<Replayed | null>
  readonly scores: Scores
  readonly rerank: Gain
}

/**
 * The selection as stored for `autotune approve`: the pack's body (instructions, the turns it gained most on,
 * the metric DotClaw shows) and its lineage (how it was found, by which models, under which rubric).
 */
export const selectionOf = (s: {
  readonly config: AppConfig
  readonly rubric: Rubric
  readonly runId: string
  readonly at: string
  readonly ready: Ready
  readonly pool: ReadonlyArray<Candidate>
  readonly rounds: number
  readonly kept: number
  readonly winner: Winner
  readonly baselineScores: Scores
  readonly heldOut: ReadonlyArray<Row>
  readonly baseScores: ReadonlyArray<number | null>
}) => {
  const { config, winner } = s
  const lineage = {
    runId: s.runId,
    at: s.at,
    baselineVersion: s.ready.baselineVersion,
    round: winner.c.round,
    parents: winner.c.parents,
    ancestry: ancestry(s.pool, winner.c.id),
    rounds: s.rounds,
    validation: {
      n: winner.n,
      baselineMean: s.baselineScores.mean,
      winnerMean: winner.scores.mean,
      meanDiff: winner.meanDiff,
      lowerBound: winner.lowerBound,
      rerankMeanDiff: winner.rerank.meanDiff,
      rerankLowerBound: winner.rerank.lowerBound
    },
    models: {
      candidate: config.candidateModel,
      predictor: config.predictorModel,
      judge: config.judgeStage1Model,
      rerank: config.rerankModel
    },
    rubric: s.rubric.version,
    candidates: s.kept
  }
  const examples = chosenOn(s.heldOut, s.baseScores, scoresOf(winner.replies))
  const body = {
    instructions: winner.c.instructions,
    lineage,
    baselineInstructions: s.ready.baseline,
    examples,
    metric: { name: s.rubric.version, model: config.judgeStage1Model, score: winner.scores.mean ?? 0 }
  }
  return { body, lineage }
}

export const makeChoice = ({ config }: Pick<OptimizeDeps, "config">, { rerankScores }: Replay) => {
  /** The finalists ranked on the held-out turns against the baseline, and the winner if one holds under both judges. */
  const heldOutChoice = (
    behavior: Behavior,
    pool: ReadonlyArray<Candidate>,
    finalists: ReadonlyArray<Candidate>,
    sets: Sets,
    run: Evaluator
  ) =>
    Effect.gen(function* () {
      const baseline = pool[0]!
      const baseReplies = yield* run.evaluate(baseline, sets.heldOut)
      const baseScores = scoresOf(baseReplies)
      const replies = yield* Effect.forEach(finalists, (c) => run.evaluate(c, sets.heldOut), {
        concurrency: "unbounded"
      })
      const ranked = finalists
        .map((c, i) => ({
          c,
          replies: replies[i]!,
          scores: meanScores(scoresOf(replies[i]!)),
          ...pairedGain(scoresOf(replies[i]!), baseScores)
        }))
        .sort((a, b) => b.meanDiff - a.meanDiff)
      const baselineScores = meanScores(baseScores)
      const heldOut = ranked.map((r) => ({
        candidate: pool.indexOf(r.c),
        id: r.c.id,
        ...r.scores,
        meanDiff: r.meanDiff,
        lowerBound: r.lowerBound
      }))
      // The stronger model re-ranks the best finalists on the same replies; its paired gain must hold as well.
      const rerankBase = yield* rerankScores(behavior, sets.heldOut, baseReplies)
      const reranked = yield* Effect.forEach(ranked.slice(0, RERANK_TOP), (r) =>
        Effect.map(rerankScores(behavior, sets.heldOut, r.replies), (scores) => ({
          ...r,
          rerank: pairedGain(scores, rerankBase)
        }))
      )
      const winner: Winner | undefined = reranked
        .filter(
          (r) =>
            r.meanDiff >= config.minImprovement &&
            r.lowerBound > 0 &&
            r.rerank.meanDiff >= config.minImprovement &&
            r.rerank.lowerBound > 0
        )
        .sort((a, b) => b.rerank.meanDiff - a.rerank.meanDiff)[0]
      return { ranked, heldOut, baselineScores, baseScores, winner }
    })

  return { heldOutChoice } as const
}

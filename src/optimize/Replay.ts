/**
 * Replay: the predictor answers a stored turn under candidate instructions and the judge scores the reply; each
 * (candidate, turn) once per run. A call that fails is no reply (null) or unscored, never a score.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import type { Verdict } from "../judge/Tasks.js"
import { clip, judgeTraceOf } from "../judge/Prompts.js"
import type { Candidate, OptimizeDeps, Replayed, Row } from "./OptimizeRun.js"

export const scoreOf = (v: Verdict) => (v.status === "scored" ? v.score : null)
export const scoresOf = (xs: ReadonlyArray<Replayed | null>) => xs.map((x) => x?.score ?? null)

/** One run's replays of candidates on turns, each (candidate, turn) made once. */
export interface Evaluator {
  /** Each turn's replay and score under the candidate's instructions (null: no reply). */
  readonly evaluate: (
    c: Pick<Candidate, "id" | "instructions">,
    rows: ReadonlyArray<Row>
  ) => Effect.Effect<Array<Replayed | null>>
  /** The turns among `rows` this candidate was already scored on, with its own replies and the judge's reasons. */
  readonly replays: (c: Pick<Candidate, "id">, rows: ReadonlyArray<Row>) => ReadonlyArray<Row>
  /** Every reply and judge's reason of the run: conversation text, for the provenance check. */
  readonly texts: () => ReadonlyArray<string>
}

/** Replays for the optimizer: an evaluator per behavior, and the stronger model's scores for replies made. */
export interface Replay {
  readonly evaluator: (behavior: Behavior) => Evaluator
  readonly rerankScores: (
    behavior: Behavior,
    rows: ReadonlyArray<Row>,
    replies: ReadonlyArray<Replayed | null>
  ) => Effect.Effect<Array<number | null>>
}

export const makeReplay = ({
  runner,
  judge,
  config,
  rubrics
}: Pick<OptimizeDeps, "runner" | "judge" | "config" | "rubrics">): Replay => {
  /** A judge verdict on a reply made for a stored turn; a failed call is unscored, never a score. */
  const judgeReply = (behavior: Behavior, row: Row, reply: string, model: string, kind: "judge" | "rerank") =>
    judge
      .verdict(rubrics[behavior], judgeTraceOf({ ...row, outputText: reply }), model, `optimize:${behavior}:${kind}`)
      .pipe(
        Effect.catchTag("LlmError", (e): Effect.Effect<Verdict> =>
          Effect.succeed({ status: "unscored", reason: e.message })
        )
      )

  /** The predictor replays one turn under some instructions, and the judge scores the reply (null: no reply). */
  const replayed = (behavior: Behavior, instructions: string, row: Row) =>
    Effect.gen(function* () {
      const response = yield* runner.call({
        stage: `optimize:${behavior}:predict`,
        model: config.predictorModel,
        system: instructions,
        messages: [{ role: "user", content: clip(row.inputText, 6000) }],
        maxTokens: 1024,
        temperature: 0
      })
      const verdict = yield* judgeReply(behavior, row, response.text, config.judgeStage1Model, "judge")
      return { reply: response.text, score: scoreOf(verdict), reason: verdict.reason } satisfies Replayed
    }).pipe(Effect.catchTag("LlmError", () => Effect.succeed(null)))

  /** Replays candidates on turns, each (candidate, turn) once per run, and remembers what it replayed. */
  const evaluator = (behavior: Behavior): Evaluator => {
    const seen = new Map<string, Replayed | null>()
    const keyOf = (c: Pick<Candidate, "id">, row: Row) => `${c.id}\n${row.traceId}`
    const evaluate = (c: Pick<Candidate, "id" | "instructions">, rows: ReadonlyArray<Row>) =>
      Effect.forEach(
        rows,
        (row) => {
          const key = keyOf(c, row)
          return seen.has(key)
            ? Effect.succeed(seen.get(key)!)
            : Effect.tap(replayed(behavior, c.instructions, row), (r) => Effect.sync(() => seen.set(key, r)))
        },
        { concurrency: "unbounded" }
      )
    /** The turns among `rows` this candidate was already scored on, with its own replies and the judge's reasons. */
    const replays = (c: Pick<Candidate, "id">, rows: ReadonlyArray<Row>): ReadonlyArray<Row> =>
      rows.flatMap((row) => {
        const r = seen.get(keyOf(c, row))
        return r === undefined || r === null || r.score === null
          ? []
          : [{ ...row, outputText: r.reply, score: r.score, reason: r.reason }]
      })
    /** Every reply replayed and every reason the judge gave in this run: conversation text, for the provenance check. */
    const texts = () => [...seen.values()].flatMap((x) => (x === null ? [] : [x.reply, x.reason]))
    return { evaluate, replays, texts }
  }

  /** The stronger model's scores for replies already made. */
  const rerankScores = (behavior: Behavior, rows: ReadonlyArray<Row>, replies: ReadonlyArray<Replayed | null>) =>
    Effect.forEach(
      replies,
      (r, i) =>
        r === null
          ? Effect.succeed(null)
          : Effect.map(judgeReply(behavior, rows[i]!, r.reply, config.rerankModel, "rerank"), scoreOf),
      { concurrency: "unbounded" }
    )

  return { evaluator, rerankScores }
}

/**
 * Judging now: one stage-1 request per group, each rubric's verdict read from it (one retry for an unreadable
 * one), stage 2 when stage 1 was unsure or the turn is audited, then the store.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import type { StoreError } from "../Domain/Errors.js"
import { LlmError, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import {
  combinedPrompt,
  combinedTool,
  type JudgeTrace,
  judgePrompt,
  judgeTraceOf,
  type Rubric,
  SCORE_TOOL
} from "./Prompts.js"
import type { Storage } from "./Storage.js"
import {
  auditDraw,
  type Group,
  judgeStage,
  type JudgeDeps,
  type Outcome,
  readAnswer,
  type Task,
  type Verdict
} from "./Tasks.js"

/** A behavior's outcome for one judged turn. */
export interface Judged {
  readonly behavior: Behavior
  readonly outcome: Outcome
}

/** The judge's calls made now: one verdict, stage-1 requests and answers, stage 2 where it is due, and the store. */
export interface Direct {
  readonly verdict: (
    rubric: Rubric,
    trace: JudgeTrace,
    model: string,
    stage: string,
    attempts?: number
  ) => Effect.Effect<Verdict, LlmError>
  readonly stage1Request: (group: Group) => LlmRequest
  readonly stage1Verdicts: (group: Group, response: LlmResponse) => Effect.Effect<Array<Verdict | LlmError>, StoreError>
  readonly finish: (task: Task, first: Verdict | LlmError) => Effect.Effect<Outcome, StoreError>
  readonly failedAll: (group: Group, error: LlmError) => Array<Judged>
  readonly judgeGroup: (group: Group) => Effect.Effect<Array<Judged>, StoreError>
}

export const makeDirect = ({ runner, config }: JudgeDeps, { store }: Storage): Direct => {
  /** One judge call with its one retry for an unreadable answer. LLM failures stay failures. */
  const verdict = Effect.fn("Judge.verdict")(function* (
    rubric: Rubric,
    trace: JudgeTrace,
    model: string,
    stage: string,
    attempts = 2
  ) {
    yield* Effect.annotateCurrentSpan({
      "autotune.behavior": rubric.behavior,
      "autotune.stage": stage,
      "gen_ai.request.model": model
    })
    let last: Verdict = { status: "unscored", reason: "no answer" }
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const prompt = judgePrompt(rubric, trace)
      const response = yield* runner.call({
        stage,
        model,
        system: prompt.system,
        messages: [{ role: "user", content: prompt.user }],
        maxTokens: config.judgeMaxOutputTokens,
        temperature: config.judgeTemperature,
        output: SCORE_TOOL
      })
      last = readAnswer([rubric.behavior], response)[0]!
      if (last.status === "scored") return last
    }
    return last
  })

  const stage1Request = (group: Group): LlmRequest => {
    const trace = judgeTraceOf(group.tasks[0]!.row)
    const rubrics = group.tasks.map((t) => t.rubric)
    const single = rubrics.length === 1
    const prompt = single ? judgePrompt(rubrics[0]!, trace) : combinedPrompt(rubrics, trace)
    return {
      stage: judgeStage(single ? rubrics[0]!.behavior : "combined", 1, group.need),
      model: config.judgeStage1Model,
      system: prompt.system,
      messages: [{ role: "user", content: prompt.user }],
      maxTokens: config.judgeMaxOutputTokens * rubrics.length,
      temperature: config.judgeTemperature,
      output: single ? SCORE_TOOL : combinedTool(rubrics)
    }
  }

  /**
   * Stage 1's verdicts from one answer, per rubric. A rubric that cannot be read from it gets one request of
   * its own (for a single rubric, the one retry it always had); still unreadable, it is unscored, and the
   * other rubrics of the answer keep their scores.
   */
  const stage1Verdicts = (group: Group, response: LlmResponse) =>
    Effect.forEach(
      readAnswer(
        group.tasks.map((t) => t.rubric.behavior),
        response
      ),
      (read, i): Effect.Effect<Verdict | LlmError, StoreError> => {
        if (read.status === "scored") return Effect.succeed(read)
        const rubric = group.tasks[i]!.rubric
        return verdict(
          rubric,
          judgeTraceOf(group.tasks[i]!.row),
          config.judgeStage1Model,
          judgeStage(rubric.behavior, 1, group.tasks[i]!.row.need),
          1
        ).pipe(Effect.catchTag("LlmError", (error) => Effect.succeed(error)))
      }
    )

  /** Stage 2 when stage 1 was unsure (or audited), then the store: the task's outcome. */
  const finish = (task: Task, first: Verdict | LlmError) =>
    Effect.gen(function* () {
      const { rubric, row } = task
      if (first instanceof LlmError)
        return { kind: "failed", error: first, canary: row.isCanary === 1, need: row.need } satisfies Outcome as Outcome
      const trace = judgeTraceOf(row)
      const canary = row.isCanary === 1
      const unsure = first.status === "scored" && task.escalate.escalate(first.score)
      const audited = first.status === "scored" && auditDraw(trace.traceId, rubric.behavior) < config.judgeAuditShare
      // A stage-2 failure leaves the stage-1 verdict standing; it is not worth losing the paid-for score.
      const second =
        unsure || audited
          ? yield* verdict(rubric, trace, config.judgeStage2Model, judgeStage(rubric.behavior, 2, row.need)).pipe(
              Effect.option
            )
          : undefined
      const secondVerdict = second?._tag === "Some" ? second.value : undefined
      yield* store(rubric, row, first, secondVerdict, trace.masked ?? 0)
      const final = secondVerdict?.status === "scored" ? secondVerdict : first
      const need = row.need
      if (final.status !== "scored") return { kind: "unscored", canary, need } satisfies Outcome as Outcome
      const gap =
        first.status === "scored" && secondVerdict?.status === "scored"
          ? Math.abs(first.score - secondVerdict.score)
          : null
      return {
        kind: "scored",
        score: final.score,
        stage2: secondVerdict !== undefined,
        gap,
        canary,
        need
      } satisfies Outcome as Outcome
    })

  const failedAll = (group: Group, error: LlmError) =>
    group.tasks.map((t) => ({
      behavior: t.rubric.behavior,
      outcome: { kind: "failed", error, canary: t.row.isCanary === 1, need: t.row.need } satisfies Outcome as Outcome
    }))

  /** Judges one group now: one stage-1 request for its rubrics, then each rubric on its own. */
  const judgeGroup = (group: Group) =>
    runner.call(stage1Request(group)).pipe(
      Effect.flatMap((response) => stage1Verdicts(group, response)),
      Effect.flatMap((firsts) =>
        Effect.forEach(group.tasks, (task, i) =>
          Effect.map(finish(task, firsts[i]!), (outcome) => ({ behavior: task.rubric.behavior, outcome }))
        )
      ),
      Effect.catchTag("LlmError", (error) => Effect.succeed(failedAll(group, error)))
    )

  return { verdict, stage1Request, stage1Verdicts, finish, failedAll, judgeGroup }
}

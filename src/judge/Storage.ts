/** The judge's verdicts into the store: every stage's answer, and the final score of a turn (store/Scores.ts). */
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import type { Effect } from "effect"
import type { StoreError } from "../Domain/Errors.js"
import { storeVerdicts } from "../store/Scores.js"
import type { Rubric } from "./Prompts.js"
import type { JudgeDeps, Row, Verdict } from "./Tasks.js"

/** Where a turn's verdicts go. */
export interface Storage {
  /** `masked`: sentences masked as addressed to the evaluator in the turn the judge read (Addressed.ts). */
  readonly store: (
    rubric: Rubric,
    turn: Row,
    first: Verdict,
    second: Verdict | undefined,
    masked: number
  ) => Effect.Effect<void, StoreError>
}

export const makeStorage = ({ sql, config }: Pick<JudgeDeps, "sql" | "config">): Storage => {
  // A judge can quote the trace back: its reason is cleaned like trace text.
  const stage = (n: 1 | 2, model: string, v: Verdict) => ({
    stage: n,
    model,
    score: v.status === "scored" ? v.score : null,
    reason: redactIf(config.redact, v.reason)
  })

  /** `masked`: sentences masked as addressed to the evaluator in the turn the judge read (Addressed.ts). */
  const store = (rubric: Rubric, turn: Row, first: Verdict, second: Verdict | undefined, masked: number) =>
    storeVerdicts(sql, {
      traceId: turn.traceId,
      behavior: rubric.behavior,
      rubricVersion: rubric.version,
      turnAt: turn.turnAt,
      packVersion: turn.packVersion,
      stages: [
        stage(1, config.judgeStage1Model, first),
        ...(second === undefined ? [] : [stage(2, config.judgeStage2Model, second)])
      ],
      masked,
      redactionVersion: storedVersion(config.redact)
    })

  return { store }
}

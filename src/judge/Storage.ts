/** The judge's verdicts into the store: every stage's answer, and the final score of a turn. */
import { Effect } from "effect"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { storeError, writeTransaction } from "../store/Db.js"
import { upsert } from "../store/Dialect.js"
import type { Rubric } from "./Rubrics.js"
import type { JudgeDeps, Row, Verdict } from "./Work.js"

export const makeStorage = ({ sql, config }: Pick<JudgeDeps, "sql" | "config">) => {
  /** `masked`: sentences masked as addressed to the evaluator in the turn the judge read (Addressed.ts). */
  const store = (rubric: Rubric, turn: Row, first: Verdict, second: Verdict | undefined, masked: number) =>
    writeTransaction(sql,
      Effect.gen(function* () {
        const now = Date.now()
        const row = (stage: number, model: string, v: Verdict) => ({
          trace_id: turn.traceId,
          behavior: rubric.behavior,
          rubric_version: rubric.version,
          stage,
          model,
          status: v.status,
          score: v.status === "scored" ? v.score : null,
          // A judge can quote the trace back: its reason is cleaned like trace text.
          reason: redactIf(config.redact, v.reason),
          created_at: now,
          redaction_version: storedVersion(config.redact),
          addressed_masked: masked
        })
        const rows = [row(1, config.judgeStage1Model, first), ...(second === undefined ? [] : [row(2, config.judgeStage2Model, second)])]
        yield* upsert(sql, "judge_scores", rows, ["trace_id", "behavior", "rubric_version", "stage", "model"])
        const final = second?.status === "scored" ? second : first.status === "scored" ? first : undefined
        if (final !== undefined && final.status === "scored") {
          yield* upsert(sql, "trace_scores", {
            trace_id: turn.traceId,
            behavior: rubric.behavior,
            rubric_version: rubric.version,
            turn_at: turn.turnAt,
            pack_version: turn.packVersion,
            score: final.score,
            stage1_score: first.status === "scored" ? first.score : null,
            stage2_score: second?.status === "scored" ? second.score : null,
            reason: redactIf(config.redact, final.reason),
            created_at: now,
            redaction_version: storedVersion(config.redact)
          }, ["trace_id", "behavior", "rubric_version"])
        }
      })
    ).pipe(Effect.mapError(storeError("store judge scores")))

  return { store } as const
}

/**
 * Whether the judge agrees with the people it stands in for, per behavior: its scores against users' reactions
 * (AUC) and against a person's grades, as Agreement.ts measures them.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { gradeScores, reactionScores } from "../store/Reactions.js"
import { type Agreement, agreement, type LabelAgreement, labelAgreement, splitOf } from "./Agreement.js"
import { Rubrics } from "./RubricBook.js"

/**
 * Whether the judge agrees with the people it stands in for: its scores of the turns users reacted to (the
 * reactions ingest/Feedback.ts imports), per behavior, as the AUC of Agreement.ts.
 */
export class JudgeAgreement extends Effect.Service<JudgeAgreement>()("autotune/JudgeAgreement", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const book = yield* Rubrics
    const rubrics = book.current
    /**
     * Whether a turn's human signal may measure the current rubric: a rubric amended by alignment was chosen on the
     * alignment split, so its agreement (and calibration) is measured on the other turns only.
     */
    const fresh = (behavior: Behavior) => {
      const aligned =
        book
          .history(behavior)
          .find((v) => v.status === "active")
          ?.source.startsWith("aligned") === true
      return (traceId: string) => !aligned || splitOf(traceId) === "held-out"
    }

    /** Judge scores of the turns users reacted to (their latest reaction), split by reaction. */
    const agreementFor = (behavior: Behavior) =>
      reactionScores(sql, behavior, rubrics[behavior].version).pipe(
        Effect.map((all) => {
          const rows = all.filter((r) => fresh(behavior)(r.traceId))
          return agreement(
            rows.filter((r) => r.negative === 0).map((r) => r.score),
            rows.filter((r) => r.negative === 1).map((r) => r.score)
          )
        })
      )

    /** Per configured behavior, quietly: for views that show it. */
    const agreements = Effect.fn("JudgeAgreement.agreements")(function* () {
      const out: Record<string, Agreement> = {}
      for (const behavior of config.behaviors) out[behavior] = yield* agreementFor(behavior)
      return out
    })

    /** Per configured behavior; a warning for each the judge demonstrably disagrees with users on. */
    const humanAgreement = Effect.fn("JudgeAgreement.humanAgreement")(function* () {
      const out = yield* agreements()
      for (const [behavior, a] of Object.entries(out)) {
        if (a.disagrees) {
          yield* Effect.logWarning(
            `the judge disagrees with users on ${behavior}: AUC ${a.auc!.toFixed(2)} [${a.low!.toFixed(2)}, ${a.high!.toFixed(2)}] over ${a.positive} 👍 and ${a.negative} 👎 turns; check the rubric and the judge model`
          )
        }
      }
      return out
    })

    /** Per configured behavior: the judge's scores against a person's grades (`autotune label`), current rubric. */
    const labelAgreements = Effect.fn("JudgeAgreement.labelAgreements")(function* () {
      const out: Record<string, LabelAgreement> = {}
      for (const behavior of config.behaviors) {
        const pairs = yield* gradeScores(sql, behavior, rubrics[behavior].version)
        out[behavior] = labelAgreement(
          pairs.filter((p) => fresh(behavior)(p.traceId)).map((p) => ({ grade: p.grade, score: p.score }))
        )
      }
      return out
    })

    return { agreements, humanAgreement, labelAgreements, fresh } as const
  })
}) {}

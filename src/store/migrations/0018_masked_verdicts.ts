/**
 * The count of turns whose text addressed the evaluator (status, the report, per behavior over a week) read every
 * stage-1 verdict of the window: 0.9-3.0 s a behavior on a store of 1.8 million verdicts. Such turns are few; an
 * index on them alone answers the count from a handful of entries and costs the other writes nothing. The count
 * over every behavior (status) names the six, so that it reads the index one behavior after another.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(
  `CREATE INDEX IF NOT EXISTS judge_scores_masked ON judge_scores (behavior, created_at, trace_id) WHERE stage = 1 AND addressed_masked > 0`
)

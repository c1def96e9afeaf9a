/**
 * Sentences of a judged turn addressed to whoever scores it ("note to the grader: full marks") are masked
 * before the judge reads them (judge/Addressed.ts); each verdict keeps how many, for status and the report.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(
  `ALTER TABLE judge_scores ADD COLUMN addressed_masked INTEGER NOT NULL DEFAULT 0`
)

/**
 * Alignment of the rubrics with the people (align/Align.ts): its attempts, and who reacted to a turn (DotClaw's
 * user_feedback.user_id). `tested` marks an attempt that spent part of the rubric's error budget on the
 * held-out turns.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(
  `ALTER TABLE feedback ADD COLUMN user_id TEXT`,
  `CREATE TABLE align_attempts (
    id TEXT PRIMARY KEY,
    behavior TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    at BIGINT NOT NULL,
    signal_turns INTEGER NOT NULL,
    tested INTEGER NOT NULL,
    alpha DOUBLE PRECISION,
    outcome TEXT NOT NULL,
    candidate_version TEXT,
    detail_json TEXT NOT NULL
  )`,
  `CREATE INDEX align_attempts_behavior ON align_attempts (behavior, rubric_version, at)`
)

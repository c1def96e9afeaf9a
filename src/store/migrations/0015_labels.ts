/**
 * A person's grades (1-5) of judged turns, per behavior and rubric version (`autotune label`): the judge is
 * measured against them. They go with their turn when retention prunes it: a grade of text no longer kept
 * cannot be checked against the judge again.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(
  `CREATE TABLE labels (
    trace_id TEXT NOT NULL,
    behavior TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    grade INTEGER NOT NULL,
    source TEXT NOT NULL,
    labeled_at BIGINT NOT NULL,
    PRIMARY KEY (trace_id, behavior, rubric_version)
  )`,
  `CREATE INDEX labels_behavior ON labels (behavior, rubric_version, labeled_at)`
)

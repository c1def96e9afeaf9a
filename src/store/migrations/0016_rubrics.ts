/**
 * The judge's rubrics as data (judge/RubricBook.ts): every version of a behavior's criteria, where it came from
 * (a file of the operator's, or a rollback), and which one is active. The built-in rubric is the version no
 * row stands for.
 */
import { type Migration, same } from "./Migration.js"

export const { sqlite, pg }: Migration = same(`CREATE TABLE rubrics (
  behavior TEXT NOT NULL,
  version TEXT NOT NULL,
  title TEXT NOT NULL,
  criteria TEXT NOT NULL,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (behavior, version)
)`)

/**
 * What `report` draws, readable without touching the big tables row by row. A score carries its turn's
 * time and the pack version that served it; the daily trend per version was a join of trace_packs to
 * trace_scores (1.3 s per behavior on 200,000 traces), then a scan of a covering index (0.22 s), and is
 * now a read of score_daily (under 1 ms), which triggers keep equal to trace_scores through inserts,
 * replacements, updates and retention's deletes. Spend and verdicts are rolled up per day the same way.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { type MigrationEffect, NONE } from "./Migration.js"

/**
 * score_daily follows trace_scores: a row that arrives adds itself, one that leaves takes itself out. An
 * INSERT OR REPLACE removes the old row without firing delete triggers (recursive_triggers is off), so a
 * BEFORE INSERT trigger takes the row about to be replaced out first. (An upsert from a SELECT needs its
 * WHERE: SQLite's grammar would read ON CONFLICT as a join constraint otherwise.)
 */
const scoreDailyUpsert = (row: string, sign: 1 | -1, from = "", where = "") => `
  INSERT INTO score_daily SELECT ${row}.behavior, ${row}.rubric_version, date(${row}.turn_at / 1000, 'unixepoch'), COALESCE(${row}.pack_version, ''),
    ${sign}, ${sign} * ${row}.score, ${sign} * ${row}.score * ${row}.score, ${sign} * (${row}.stage2_score IS NOT NULL),
    ${sign} * COALESCE(ABS(${row}.stage1_score - ${row}.stage2_score), 0)
  ${from} WHERE ${where} ${row}.turn_at IS NOT NULL
  ON CONFLICT (behavior, rubric_version, day, version) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
    sum_sq = sum_sq + excluded.sum_sq, both = both + excluded.both, gap_sum = gap_sum + excluded.gap_sum;`

const scoreDailyTriggers = (sql: SqlClient.SqlClient) => [
  sql.unsafe(
    `CREATE TRIGGER trace_scores_daily_insert AFTER INSERT ON trace_scores BEGIN ${scoreDailyUpsert("NEW", 1)} END`
  ),
  sql.unsafe(
    `CREATE TRIGGER trace_scores_daily_replace BEFORE INSERT ON trace_scores BEGIN ${scoreDailyUpsert(
      "o",
      -1,
      "FROM trace_scores o",
      "o.trace_id = NEW.trace_id AND o.behavior = NEW.behavior AND o.rubric_version = NEW.rubric_version AND"
    )} END`
  ),
  sql.unsafe(
    `CREATE TRIGGER trace_scores_daily_delete AFTER DELETE ON trace_scores BEGIN ${scoreDailyUpsert("OLD", -1)} END`
  ),
  sql.unsafe(`CREATE TRIGGER trace_scores_daily_update AFTER UPDATE OF score, stage1_score, stage2_score, turn_at, pack_version ON trace_scores
    BEGIN ${scoreDailyUpsert("OLD", -1)} ${scoreDailyUpsert("NEW", 1)} END`)
]

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`ALTER TABLE trace_scores ADD COLUMN turn_at INTEGER`,
      sql`ALTER TABLE trace_scores ADD COLUMN pack_version TEXT`,
      sql`UPDATE trace_scores SET turn_at = (SELECT t.created_at FROM traces t WHERE t.trace_id = trace_scores.trace_id)`,
      sql`UPDATE trace_scores SET pack_version = p.version FROM trace_packs p
        WHERE p.trace_id = trace_scores.trace_id AND p.behavior IN (trace_scores.behavior, '*') AND p.created_at = trace_scores.turn_at`,
      // The lowest-scored recent turns: a range of turn times, scores read from the index.
      sql`CREATE INDEX trace_scores_turn ON trace_scores (behavior, rubric_version, turn_at, score)`,
      sql`CREATE TABLE score_daily (
      behavior TEXT NOT NULL, rubric_version TEXT NOT NULL, day TEXT NOT NULL, version TEXT NOT NULL,
      n INTEGER NOT NULL, sum REAL NOT NULL, sum_sq REAL NOT NULL, both INTEGER NOT NULL, gap_sum REAL NOT NULL,
      PRIMARY KEY (behavior, rubric_version, day, version)
    ) WITHOUT ROWID`,
      sql`INSERT INTO score_daily SELECT behavior, rubric_version, date(turn_at / 1000, 'unixepoch'), COALESCE(pack_version, ''),
        COUNT(*), SUM(score), SUM(score * score), COUNT(stage2_score), COALESCE(SUM(ABS(stage1_score - stage2_score)), 0)
        FROM trace_scores WHERE turn_at IS NOT NULL GROUP BY 1, 2, 3, 4`,
      ...scoreDailyTriggers(sql),
      sql`CREATE TABLE llm_daily (
      day TEXT NOT NULL, stage TEXT NOT NULL, model TEXT NOT NULL,
      calls INTEGER NOT NULL, failed INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
      cost_usd REAL NOT NULL, unknown_cost INTEGER NOT NULL, structured INTEGER NOT NULL, unparsed INTEGER NOT NULL,
      egress_redactions INTEGER NOT NULL,
      PRIMARY KEY (day, stage, model)
    ) WITHOUT ROWID`,
      sql`INSERT INTO llm_daily SELECT date(created_at / 1000, 'unixepoch'), stage, model, COUNT(*), SUM(outcome != 'ok'),
        SUM(tokens_in), SUM(tokens_out), SUM(cost_usd), SUM(cost_known = 0), COUNT(parsed), COALESCE(SUM(parsed = 0), 0), SUM(egress_redactions)
        FROM llm_calls GROUP BY 1, 2, 3`,
      sql`CREATE TRIGGER llm_calls_daily AFTER INSERT ON llm_calls BEGIN
        INSERT INTO llm_daily VALUES (date(NEW.created_at / 1000, 'unixepoch'), NEW.stage, NEW.model, 1, NEW.outcome != 'ok',
          NEW.tokens_in, NEW.tokens_out, NEW.cost_usd, NEW.cost_known = 0, NEW.parsed IS NOT NULL, COALESCE(NEW.parsed = 0, 0), NEW.egress_redactions)
        ON CONFLICT (day, stage, model) DO UPDATE SET calls = calls + 1, failed = failed + excluded.failed,
          tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, cost_usd = cost_usd + excluded.cost_usd,
          unknown_cost = unknown_cost + excluded.unknown_cost, structured = structured + excluded.structured, unparsed = unparsed + excluded.unparsed,
          egress_redactions = egress_redactions + excluded.egress_redactions;
      END`,
      sql`CREATE TABLE judge_daily (
      day TEXT NOT NULL, behavior TEXT NOT NULL, stage INTEGER NOT NULL, scored INTEGER NOT NULL, unscored INTEGER NOT NULL,
      PRIMARY KEY (day, behavior, stage)
    ) WITHOUT ROWID`,
      sql`INSERT INTO judge_daily SELECT date(created_at / 1000, 'unixepoch'), behavior, stage, SUM(status = 'scored'), SUM(status != 'scored')
        FROM judge_scores GROUP BY 1, 2, 3`,
      sql`CREATE TRIGGER judge_scores_daily AFTER INSERT ON judge_scores BEGIN
        INSERT INTO judge_daily VALUES (date(NEW.created_at / 1000, 'unixepoch'), NEW.behavior, NEW.stage, NEW.status = 'scored', NEW.status != 'scored')
        ON CONFLICT (day, behavior, stage) DO UPDATE SET scored = scored + excluded.scored, unscored = unscored + excluded.unscored;
      END`
    ],
    { discard: true }
  )
)

// In 0001's PostgreSQL form: PostgreSQL stores began at this shape.
export const pg: MigrationEffect = NONE

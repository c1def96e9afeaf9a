/**
 * PostgreSQL's first migration: the shape the SQLite store had reached at migration 0011, in PostgreSQL's
 * words (BIGINT epoch milliseconds, DOUBLE PRECISION, a PL/pgSQL trigger where SQLite has four).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { MigrationEffect } from "./Migration.js"

const day = (ms: string) => `to_char(to_timestamp(${ms} / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
const flag = (condition: string) => `(CASE WHEN ${condition} THEN 1 ELSE 0 END)`

/** score_daily follows trace_scores as in the SQLite store: a row that arrives adds itself, one that leaves takes itself out. */
const scoreDailyUpsert = (row: "NEW" | "OLD", sign: 1 | -1) => `
  IF ${row}.turn_at IS NOT NULL THEN
    INSERT INTO score_daily VALUES (${row}.behavior, ${row}.rubric_version, ${day(`${row}.turn_at`)}, COALESCE(${row}.pack_version, ''),
      ${sign}, ${sign} * ${row}.score, ${sign} * ${row}.score * ${row}.score, ${sign} * ${flag(`${row}.stage2_score IS NOT NULL`)},
      ${sign} * COALESCE(ABS(${row}.stage1_score - ${row}.stage2_score), 0))
    ON CONFLICT (behavior, rubric_version, day, version) DO UPDATE SET n = score_daily.n + excluded.n, sum = score_daily.sum + excluded.sum,
      sum_sq = score_daily.sum_sq + excluded.sum_sq, "both" = score_daily."both" + excluded."both", gap_sum = score_daily.gap_sum + excluded.gap_sum;
  END IF;`

const SCHEMA = [
  `CREATE TABLE traces (
    trace_id TEXT PRIMARY KEY, ts TEXT NOT NULL, created_at BIGINT NOT NULL,
    chat_id TEXT, group_folder TEXT, user_id TEXT, model_id TEXT, source TEXT,
    input_text TEXT NOT NULL, message_text TEXT NOT NULL, output_text TEXT, memory_summary TEXT,
    memory_facts_json TEXT NOT NULL DEFAULT '[]', memory_recall_json TEXT NOT NULL DEFAULT '[]',
    session_recall_json TEXT NOT NULL DEFAULT '[]', tool_calls_json TEXT NOT NULL DEFAULT '[]',
    tool_call_count INTEGER NOT NULL DEFAULT 0, tool_failure_count INTEGER NOT NULL DEFAULT 0,
    latency_ms DOUBLE PRECISION, tokens_prompt BIGINT, tokens_completion BIGINT, cost_usd DOUBLE PRECISION,
    error_code TEXT, is_error INTEGER NOT NULL, extra_json TEXT NOT NULL DEFAULT '{}',
    file TEXT NOT NULL, byte_offset BIGINT NOT NULL, line_no BIGINT NOT NULL, ingested_at BIGINT NOT NULL,
    redaction_version INTEGER NOT NULL DEFAULT 1, sample_draw DOUBLE PRECISION NOT NULL DEFAULT 0
  )`,
  `CREATE INDEX traces_created_draw ON traces (created_at, sample_draw)`,
  `CREATE TABLE trace_packs (
    behavior TEXT NOT NULL, version TEXT NOT NULL, created_at BIGINT NOT NULL, trace_id TEXT NOT NULL,
    PRIMARY KEY (behavior, version, created_at, trace_id)
  )`,
  `CREATE TABLE ingest_positions (
    host_id TEXT NOT NULL, file TEXT NOT NULL, file_id TEXT NOT NULL, byte_offset BIGINT NOT NULL, line_no BIGINT NOT NULL,
    head_hash TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (host_id, file)
  )`,
  `CREATE TABLE malformed_lines (
    line_hash TEXT PRIMARY KEY, file TEXT NOT NULL, line_no BIGINT NOT NULL, byte_offset BIGINT NOT NULL,
    reason TEXT NOT NULL, excerpt TEXT NOT NULL, seen_at BIGINT NOT NULL, redaction_version INTEGER NOT NULL DEFAULT 1
  )`,
  `CREATE TABLE llm_calls (
    id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, stage TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    tokens_in BIGINT NOT NULL DEFAULT 0, tokens_out BIGINT NOT NULL DEFAULT 0, cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, outcome TEXT NOT NULL, error TEXT, created_at BIGINT NOT NULL,
    cost_known INTEGER NOT NULL DEFAULT 1, parsed INTEGER, egress_redactions INTEGER NOT NULL DEFAULT 0
  )`,
  `CREATE INDEX llm_calls_run ON llm_calls (run_id)`,
  `CREATE INDEX llm_calls_created ON llm_calls (created_at)`,
  `CREATE TABLE judge_scores (
    trace_id TEXT NOT NULL, behavior TEXT NOT NULL, rubric_version TEXT NOT NULL, stage INTEGER NOT NULL, model TEXT NOT NULL,
    status TEXT NOT NULL, score DOUBLE PRECISION, reason TEXT NOT NULL, created_at BIGINT NOT NULL,
    redaction_version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (trace_id, behavior, rubric_version, stage, model)
  )`,
  `CREATE TABLE trace_scores (
    trace_id TEXT NOT NULL, behavior TEXT NOT NULL, rubric_version TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
    stage1_score DOUBLE PRECISION, stage2_score DOUBLE PRECISION, reason TEXT NOT NULL, created_at BIGINT NOT NULL,
    redaction_version INTEGER NOT NULL DEFAULT 1, turn_at BIGINT, pack_version TEXT,
    PRIMARY KEY (trace_id, behavior, rubric_version)
  )`,
  `CREATE INDEX trace_scores_behavior ON trace_scores (behavior, score)`,
  `CREATE INDEX trace_scores_turn ON trace_scores (behavior, rubric_version, turn_at, score)`,
  `CREATE TABLE packs (
    version TEXT PRIMARY KEY, behavior TEXT NOT NULL, body_json TEXT NOT NULL, lineage_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL, created_at BIGINT NOT NULL
  )`,
  `CREATE INDEX packs_behavior ON packs (behavior, created_at)`,
  `CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY, behavior TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL,
    detail_json TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL
  )`,
  `CREATE INDEX deployments_behavior ON deployments (behavior, created_at)`,
  `CREATE TABLE canary_decisions (
    id BIGSERIAL PRIMARY KEY, behavior TEXT NOT NULL, canary_version TEXT NOT NULL, active_version TEXT, action TEXT NOT NULL,
    reason TEXT NOT NULL, figures_json TEXT NOT NULL, created_at BIGINT NOT NULL
  )`,
  `CREATE INDEX canary_decisions_behavior ON canary_decisions (behavior, created_at)`,
  `CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, command TEXT NOT NULL, started_at BIGINT NOT NULL, finished_at BIGINT, status TEXT NOT NULL,
    summary_json TEXT NOT NULL DEFAULT '{}'
  )`,
  `CREATE TABLE optimize_runs (
    id BIGSERIAL PRIMARY KEY, behavior TEXT NOT NULL, baseline_version TEXT NOT NULL, outcome TEXT NOT NULL,
    detail_json TEXT NOT NULL, created_at BIGINT NOT NULL, redaction_version INTEGER NOT NULL DEFAULT 1
  )`,
  `CREATE INDEX optimize_runs_behavior ON optimize_runs (behavior, baseline_version, created_at)`,
  `CREATE TABLE feedback (
    id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, feedback_type TEXT NOT NULL, reason TEXT, created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL, imported_at BIGINT NOT NULL, redaction_version INTEGER NOT NULL DEFAULT 1
  )`,
  `CREATE INDEX feedback_trace ON feedback (trace_id, created_ms)`,
  `CREATE INDEX feedback_created ON feedback (created_at)`,
  `CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE score_daily (
    behavior TEXT NOT NULL, rubric_version TEXT NOT NULL, day TEXT NOT NULL, version TEXT NOT NULL,
    n BIGINT NOT NULL, sum DOUBLE PRECISION NOT NULL, sum_sq DOUBLE PRECISION NOT NULL, "both" BIGINT NOT NULL, gap_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (behavior, rubric_version, day, version)
  )`,
  `CREATE TABLE llm_daily (
    day TEXT NOT NULL, stage TEXT NOT NULL, model TEXT NOT NULL, calls BIGINT NOT NULL, failed BIGINT NOT NULL,
    tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, unknown_cost BIGINT NOT NULL,
    structured BIGINT NOT NULL, unparsed BIGINT NOT NULL, egress_redactions BIGINT NOT NULL,
    PRIMARY KEY (day, stage, model)
  )`,
  `CREATE TABLE judge_daily (
    day TEXT NOT NULL, behavior TEXT NOT NULL, stage INTEGER NOT NULL, scored BIGINT NOT NULL, unscored BIGINT NOT NULL,
    PRIMARY KEY (day, behavior, stage)
  )`,
  `CREATE TABLE llm_batches (
    batch_id TEXT PRIMARY KEY, provider TEXT NOT NULL, stage TEXT NOT NULL, requests INTEGER NOT NULL,
    estimated_usd DOUBLE PRECISION NOT NULL, submitted_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, status TEXT NOT NULL,
    collected_at BIGINT, succeeded INTEGER, errored INTEGER, expired INTEGER
  )`,
  `CREATE INDEX llm_batches_status ON llm_batches (status)`,
  `CREATE TABLE judge_batch_items (
    batch_id TEXT NOT NULL, custom_id TEXT NOT NULL, trace_id TEXT NOT NULL, behavior TEXT NOT NULL, rubric_version TEXT NOT NULL,
    model TEXT NOT NULL, need TEXT NOT NULL, is_canary INTEGER NOT NULL, pack_version TEXT,
    PRIMARY KEY (batch_id, custom_id, behavior)
  )`,
  `CREATE INDEX judge_batch_items_trace ON judge_batch_items (trace_id, behavior)`,
  // The daily roll-ups, kept by triggers as in the SQLite store. An upsert that updates fires the update
  // trigger, where SQLite's INSERT OR REPLACE fired the insert one: both count the new verdict.
  `CREATE FUNCTION llm_calls_daily() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO llm_daily VALUES (${day("NEW.created_at")}, NEW.stage, NEW.model, 1, ${flag("NEW.outcome <> 'ok'")},
      NEW.tokens_in, NEW.tokens_out, NEW.cost_usd, ${flag("NEW.cost_known = 0")}, ${flag("NEW.parsed IS NOT NULL")}, ${flag("NEW.parsed = 0")}, NEW.egress_redactions)
    ON CONFLICT (day, stage, model) DO UPDATE SET calls = llm_daily.calls + 1, failed = llm_daily.failed + excluded.failed,
      tokens_in = llm_daily.tokens_in + excluded.tokens_in, tokens_out = llm_daily.tokens_out + excluded.tokens_out,
      cost_usd = llm_daily.cost_usd + excluded.cost_usd, unknown_cost = llm_daily.unknown_cost + excluded.unknown_cost,
      structured = llm_daily.structured + excluded.structured, unparsed = llm_daily.unparsed + excluded.unparsed,
      egress_redactions = llm_daily.egress_redactions + excluded.egress_redactions;
    RETURN NULL;
  END $$`,
  `CREATE TRIGGER llm_calls_daily AFTER INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION llm_calls_daily()`,
  `CREATE FUNCTION judge_scores_daily() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO judge_daily VALUES (${day("NEW.created_at")}, NEW.behavior, NEW.stage, ${flag("NEW.status = 'scored'")}, ${flag("NEW.status <> 'scored'")})
    ON CONFLICT (day, behavior, stage) DO UPDATE SET scored = judge_daily.scored + excluded.scored, unscored = judge_daily.unscored + excluded.unscored;
    RETURN NULL;
  END $$`,
  `CREATE TRIGGER judge_scores_daily AFTER INSERT OR UPDATE ON judge_scores FOR EACH ROW EXECUTE FUNCTION judge_scores_daily()`,
  `CREATE FUNCTION trace_scores_daily() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN ${scoreDailyUpsert("OLD", -1)} END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN ${scoreDailyUpsert("NEW", 1)} END IF;
    RETURN NULL;
  END $$`,
  `CREATE TRIGGER trace_scores_daily AFTER INSERT OR UPDATE OR DELETE ON trace_scores FOR EACH ROW EXECUTE FUNCTION trace_scores_daily()`
]

export const PG_INIT: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.forEach(SCHEMA, (statement) => sql.unsafe(statement), { discard: true })
)

/**
 * The first shape of the store. PostgreSQL support came when SQLite had reached migration 0011, so its
 * form here (0001_init.pg.ts) is that shape at once, and its forms of 0002 to 0011 are NONE.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { PG_INIT } from "./0001_init.pg.js"
import type { MigrationEffect } from "./Migration.js"

export const sqlite: MigrationEffect = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all(
    [
      sql`CREATE TABLE traces (
      trace_id TEXT PRIMARY KEY,
      ts TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      chat_id TEXT, group_folder TEXT, user_id TEXT, model_id TEXT, source TEXT,
      input_text TEXT NOT NULL,
      message_text TEXT NOT NULL,
      output_text TEXT,
      memory_summary TEXT,
      memory_facts_json TEXT NOT NULL DEFAULT '[]',
      memory_recall_json TEXT NOT NULL DEFAULT '[]',
      session_recall_json TEXT NOT NULL DEFAULT '[]',
      tool_calls_json TEXT NOT NULL DEFAULT '[]',
      tool_call_count INTEGER NOT NULL DEFAULT 0,
      tool_failure_count INTEGER NOT NULL DEFAULT 0,
      latency_ms REAL, tokens_prompt INTEGER, tokens_completion INTEGER, cost_usd REAL,
      error_code TEXT,
      is_error INTEGER NOT NULL,
      extra_json TEXT NOT NULL DEFAULT '{}',
      file TEXT NOT NULL, byte_offset INTEGER NOT NULL, line_no INTEGER NOT NULL,
      ingested_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX traces_created_at ON traces (created_at)`,
      // One row per (trace, behavior): which pack version served that behavior. The canary joins on it.
      sql`CREATE TABLE trace_packs (
      trace_id TEXT NOT NULL REFERENCES traces(trace_id),
      behavior TEXT NOT NULL,
      version TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (trace_id, behavior)
    )`,
      sql`CREATE INDEX trace_packs_behavior_version ON trace_packs (behavior, version, created_at)`,
      sql`CREATE TABLE ingest_positions (
      file TEXT PRIMARY KEY,
      file_id TEXT NOT NULL,
      byte_offset INTEGER NOT NULL,
      line_no INTEGER NOT NULL,
      head_hash TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
      sql`CREATE TABLE malformed_lines (
      line_hash TEXT PRIMARY KEY,
      file TEXT NOT NULL, line_no INTEGER NOT NULL, byte_offset INTEGER NOT NULL,
      reason TEXT NOT NULL,
      excerpt TEXT NOT NULL,
      seen_at INTEGER NOT NULL
    )`,
      sql`CREATE TABLE llm_calls (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      run_id TEXT NOT NULL,
      stage TEXT NOT NULL,
      provider TEXT NOT NULL,
      model TEXT NOT NULL,
      tokens_in INTEGER NOT NULL DEFAULT 0,
      tokens_out INTEGER NOT NULL DEFAULT 0,
      cost_usd REAL NOT NULL DEFAULT 0,
      latency_ms INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 1,
      outcome TEXT NOT NULL,
      error TEXT,
      created_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX llm_calls_run ON llm_calls (run_id)`,
      // Every judge answer, per stage; status 'unscored' keeps score NULL: never a fake 0.
      sql`CREATE TABLE judge_scores (
      trace_id TEXT NOT NULL,
      behavior TEXT NOT NULL,
      rubric_version TEXT NOT NULL,
      stage INTEGER NOT NULL,
      model TEXT NOT NULL,
      status TEXT NOT NULL,
      score REAL,
      reason TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (trace_id, behavior, rubric_version, stage, model)
    )`,
      // The score a trace counts with for a behavior: stage 2's where there is one.
      sql`CREATE TABLE trace_scores (
      trace_id TEXT NOT NULL,
      behavior TEXT NOT NULL,
      rubric_version TEXT NOT NULL,
      score REAL NOT NULL,
      stage1_score REAL,
      stage2_score REAL,
      reason TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (trace_id, behavior, rubric_version)
    )`,
      sql`CREATE INDEX trace_scores_behavior ON trace_scores (behavior, score)`,
      sql`CREATE TABLE packs (
      version TEXT PRIMARY KEY,
      behavior TEXT NOT NULL,
      body_json TEXT NOT NULL,
      lineage_json TEXT NOT NULL DEFAULT '{}',
      status TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX packs_behavior ON packs (behavior, created_at)`,
      sql`CREATE TABLE deployments (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      behavior TEXT NOT NULL,
      version TEXT NOT NULL,
      action TEXT NOT NULL,
      detail_json TEXT NOT NULL DEFAULT '{}',
      created_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX deployments_behavior ON deployments (behavior, created_at)`,
      sql`CREATE TABLE canary_decisions (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      behavior TEXT NOT NULL,
      canary_version TEXT NOT NULL,
      active_version TEXT,
      action TEXT NOT NULL,
      reason TEXT NOT NULL,
      figures_json TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`,
      sql`CREATE INDEX canary_decisions_behavior ON canary_decisions (behavior, created_at)`,
      sql`CREATE TABLE runs (
      run_id TEXT PRIMARY KEY,
      command TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      status TEXT NOT NULL,
      summary_json TEXT NOT NULL DEFAULT '{}'
    )`
    ],
    { discard: true }
  )
)

export const pg: MigrationEffect = PG_INIT

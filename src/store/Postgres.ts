/**
 * The PostgreSQL store (AUTOTUNE_DATABASE_URL=postgres://…), for several DotClaw hosts sharing one autotune.
 * Same tables and meaning as the SQLite store (Db.ts); its schema starts at the SQLite store's current shape,
 * so its migrations are its own list. Times are epoch milliseconds in BIGINT, read back as numbers.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { SqlClient, type SqlError } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeDirs, MODES } from "./FileModes.js"
import { settleStoreIdentity } from "./Identity.js"
import { maskSecret } from "../config/Config.js"
import pg from "pg"
import { ConfigError, StoreError } from "../Domain/Errors.js"
import { ALIGN_TABLES, LABELS_TABLES, METRIC_TOTALS_TABLE, RUBRICS_TABLE } from "./Totals.js"

// Epoch milliseconds, counts and sums come back as numbers, not strings: BIGINT (int8) and NUMERIC (what
// SUM and AVG of integers give) both fit a double for every value the store holds.
const INT8 = 20
const NUMERIC = 1700
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 || oid === NUMERIC ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser
}

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

// Migrations are numbered and append-only, as in the SQLite store.
export const PG_MIGRATIONS: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> = {
  "0001_init": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(SCHEMA, (statement) => sql.unsafe(statement), { discard: true })),
  // Which installation uses each host id: two machines that both default to the same hostname (two
  // "raspberrypi"s) would otherwise overwrite each other's file positions.
  "0002_fleet_hosts": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE fleet_hosts (host_id TEXT PRIMARY KEY, install_id TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL)`),
  // As the SQLite store's 0012: how many sentences of a judged turn were masked as addressed to the evaluator.
  "0003_addressed_masked": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE judge_scores ADD COLUMN addressed_masked INTEGER NOT NULL DEFAULT 0`),
  // As the SQLite store's 0013: running totals for /metrics.
  "0004_metric_totals": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(METRIC_TOTALS_TABLE)),
  // As the SQLite store's 0014: a person's grades of judged turns.
  "0005_labels": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(LABELS_TABLES, (statement) => sql.unsafe(statement), { discard: true })),
  // As the SQLite store's 0015: rubric versions.
  "0006_rubrics": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(RUBRICS_TABLE)),
  // As the SQLite store's 0016: alignment's attempts, and who reacted to a turn.
  "0007_align": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(ALIGN_TABLES, (statement) => sql.unsafe(statement), { discard: true }))
}

/** A fixed key for PostgreSQL's advisory locks: migrations take it per transaction, the leader per session. */
export const MIGRATE_LOCK = 0x61757475 // "autu"
export const LEADER_LOCK = 0x61757476

/**
 * Runs `effect` while this process holds a session advisory lock, on a connection kept aside for it (the work
 * itself runs on the pool). "wait" queues behind another holder; "try" gives None at once when one holds it.
 * The lock goes with the session, so a killed process never leaves it held.
 */
export const withAdvisoryLock = <A, E, R>(sql: SqlClient.SqlClient, key: number, mode: "wait" | "try", effect: Effect.Effect<A, E, R>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const locked = Effect.gen(function* () {
        const conn = yield* sql.reserve
        if (mode === "wait") yield* conn.executeRaw("SELECT pg_advisory_lock($1)", [key])
        else {
          const rows = yield* conn.execute("SELECT pg_try_advisory_lock($1) AS held", [key], undefined)
          if (rows[0]?.held !== true) return undefined
        }
        return conn
      }).pipe(Effect.mapError((e) => new StoreError({ operation: "take an advisory lock in the PostgreSQL store", detail: describePgCause(e.cause ?? e) })))
      const conn = yield* locked
      if (conn === undefined) return Option.none<A>()
      return yield* effect.pipe(
        Effect.map(Option.some),
        Effect.ensuring(Effect.ignore(conn.executeRaw("SELECT pg_advisory_unlock($1)", [key])))
      )
    })
  )

/** The server's own words for a failed connection, shortened to what a person can act on. */
export const describePgCause = (cause: unknown): string => {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown }
  const text = typeof message === "string" ? message : String(cause)
  if (code === "ECONNREFUSED") return `nothing listens there (${text}): is PostgreSQL running?`
  if (code === "28P01" || code === "28000") return `authentication failed (${text}): check the user and password in AUTOTUNE_DATABASE_URL`
  if (code === "3D000") return `the database does not exist (${text}): create it first (createdb)`
  return text
}

/**
 * This installation's id: random, made once and kept in its home (0600). A host id another installation
 * already holds in the store is refused, before anything is read or written under it.
 */
export const installId = (home: string): string => {
  const file = path.join(home, "install-id")
  if (!fs.existsSync(file)) {
    makeDirs(home, MODES.private.dir)
    try {
      fs.writeFileSync(file, `${randomUUID()}\n`, { mode: MODES.private.file, flag: "wx" })
    } catch (error) {
      // Another process of this installation made it first: its id is the one.
      if ((error as { code?: unknown }).code !== "EEXIST") throw error
    }
  }
  return fs.readFileSync(file, "utf8").trim()
}

const claimHost = (sql: SqlClient.SqlClient, hostId: string, install: string) =>
  Effect.gen(function* () {
    const now = Date.now()
    const claimed = yield* sql<{ host_id: string }>`
      INSERT INTO fleet_hosts VALUES (${hostId}, ${install}, ${now}, ${now})
      ON CONFLICT (host_id) DO UPDATE SET last_seen = EXCLUDED.last_seen WHERE fleet_hosts.install_id = EXCLUDED.install_id
      RETURNING host_id`
    if (claimed.length === 0) {
      return yield* new ConfigError({
        key: "hostId",
        source: "AUTOTUNE_HOST_ID (default: the hostname)",
        detail: `"${hostId}" is already used in this store by another autotune installation; give this host its own AUTOTUNE_HOST_ID`
      })
    }
  })

export const makePgLayer = (url: string, host?: { readonly hostId: string; readonly home: string }) => {
  const client = PgClient.layer({ url: Redacted.make(url), types, maxConnections: 8, connectTimeout: "10 seconds", applicationName: "autotune" })
  // Several hosts may start together: the advisory lock makes one migrate while the others wait for it.
  // Then this host's id is claimed (or refused) before any command reads or writes under it.
  const migrated = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.zipRight(
        withAdvisoryLock(sql, MIGRATE_LOCK, "wait", PgMigrator.run({ loader: PgMigrator.fromRecord(PG_MIGRATIONS) })),
        host === undefined
          ? Effect.void
          : Effect.try({
              try: () => installId(host.home),
              catch: (cause) => new StoreError({ operation: `keep this installation's id in ${host.home}`, detail: cause instanceof Error ? cause.message : String(cause) })
            }).pipe(
              Effect.flatMap((install) => claimHost(sql, host.hostId, install)),
              // The store's id against the home's record (store/Identity.ts): a database dropped and made again is a swap.
              Effect.zipRight(settleStoreIdentity(sql, host.home, maskSecret(url)))
            )
      )
    )
  ).pipe(Layer.provide(NodeContext.layer))
  return migrated.pipe(
    Layer.provideMerge(client),
    Layer.catchAll((error): Layer.Layer<unknown, ConfigError | StoreError> => {
      if (error instanceof ConfigError || error instanceof StoreError) return Layer.fail(error)
      const cause = (error as { cause?: unknown }).cause ?? error
      return Layer.fail(new StoreError({ operation: "open the PostgreSQL store", detail: describePgCause(cause) }))
    })
  )
}

import * as NodeContext from "@effect/platform-node/NodeContext"
import Database from "better-sqlite3"
import { SqlClient, SqlError } from "@effect/sql"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import * as path from "node:path"
import { Settings } from "../config/Config.js"
import { ALIGN_TABLES, LABELS_TABLES, METRIC_TOTALS_TABLE, RUBRICS_TABLE } from "./Totals.js"
import { defaultHostId } from "../config/Table.js"
import { ConfigError, StoreError } from "../Domain/Errors.js"
import { isBusyCode } from "./BulkRows.js"
import { secureSidecars, secureStore } from "./FileModes.js"
import { makePgLayer } from "./Postgres.js"
import { withRunLock } from "./RunLock.js"
import { checkSqliteStore, settleStoreIdentity } from "./Identity.js"
import { sampleDraw } from "../Domain/Trace.js"

// Migrations are numbered and append-only: never edit one that has shipped, add the next.
export const MIGRATIONS: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> = {
  "0001_init": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
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
    ], { discard: true })),
  "0002_optimize_runs": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      // One row per optimization attempt, so a baseline that just failed to improve is not retried every hour.
      sql`CREATE TABLE optimize_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        behavior TEXT NOT NULL,
        baseline_version TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail_json TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      sql`CREATE INDEX optimize_runs_behavior ON optimize_runs (behavior, baseline_version, created_at)`
    ], { discard: true })),
  // A call to a model without a known price has an unknown cost: never counted as $0 in a total.
  // `parsed`: for a call that asked for a structured answer, whether the answer could be used (NULL otherwise).
  "0003_llm_cost_known": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`ALTER TABLE llm_calls ADD COLUMN cost_known INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE llm_calls ADD COLUMN parsed INTEGER`
    ], { discard: true })),
  // Users' reactions from DotClaw's user_feedback, keyed by DotClaw's id; joined to traces by trace_id.
  "0004_feedback": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE feedback (
        id TEXT PRIMARY KEY,
        trace_id TEXT NOT NULL,
        feedback_type TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        imported_at INTEGER NOT NULL
      )`,
      sql`CREATE INDEX feedback_trace ON feedback (trace_id, created_ms)`,
      sql`CREATE INDEX feedback_created ON feedback (created_at)`
    ], { discard: true })),
  // Which rule set redacted each stored row of free text (0 = stored unredacted, 1 = autotune 2.0's first
  // set), so `redact --rescan` finds what an older set left; what the egress guard replaced per call; and
  // one small key/value table for store-wide facts such as the rule set the whole store was last cleaned with.
  "0005_redaction_version": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`ALTER TABLE traces ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE malformed_lines ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE judge_scores ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE trace_scores ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE feedback ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE optimize_runs ADD COLUMN redaction_version INTEGER NOT NULL DEFAULT 1`,
      sql`ALTER TABLE llm_calls ADD COLUMN egress_redactions INTEGER NOT NULL DEFAULT 0`,
      sql`CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`
    ], { discard: true })),
  // trace_packs keyed the way it is read and written: by (behavior, version, created_at). DotClaw's trace ids
  // are random uuids; a key led by them put every insert on a different page of two B-trees (measured: 200,000
  // traces with two packs each, 27.6 s against 13.0 s keyed this way). Lookups by trace carry created_at too.
  "0006_trace_packs_by_version": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE trace_packs_v2 (
        behavior TEXT NOT NULL,
        version TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        PRIMARY KEY (behavior, version, created_at, trace_id)
      ) WITHOUT ROWID`,
      sql`INSERT OR IGNORE INTO trace_packs_v2 (behavior, version, created_at, trace_id) SELECT behavior, version, created_at, trace_id FROM trace_packs`,
      sql`DROP TABLE trace_packs`,
      sql`ALTER TABLE trace_packs_v2 RENAME TO trace_packs`
    ], { discard: true })),
  // llm_calls is history and is never pruned: the daily budget and status read it by time.
  "0007_llm_calls_created": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE INDEX llm_calls_created ON llm_calls (created_at)`),
  // What `report` draws, readable without touching the big tables row by row. A score carries its turn's
  // time and the pack version that served it; the daily trend per version was a join of trace_packs to
  // trace_scores (1.3 s per behavior on 200,000 traces), then a scan of a covering index (0.22 s), and is
  // now a read of score_daily (under 1 ms), which triggers keep equal to trace_scores through inserts,
  // replacements, updates and retention's deletes. Spend and verdicts are rolled up per day the same way.
  "0008_report_rollups": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
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
    ], { discard: true })),
  // The judge scores a sample of turns (judge/Sampling.ts): each turn's fixed draw, kept beside its time in
  // the index that already ordered traces by time, so the daily sample is read from the index alone.
  "0009_sample_draw": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.gen(function* () {
      yield* sql`ALTER TABLE traces ADD COLUMN sample_draw REAL NOT NULL DEFAULT 0`
      let after = 0
      for (;;) {
        const rows = yield* sql<{ id: number; traceId: string }>`SELECT rowid AS id, trace_id AS "traceId" FROM traces WHERE rowid > ${after} ORDER BY rowid LIMIT 5000`
        if (rows.length === 0) break
        for (const r of rows) yield* sql`UPDATE traces SET sample_draw = ${sampleDraw(r.traceId)} WHERE rowid = ${r.id}`
        after = rows[rows.length - 1]!.id
      }
      yield* sql`DROP INDEX traces_created_at`
      yield* sql`CREATE INDEX traces_created_draw ON traces (created_at, sample_draw)`
    })),
  // Requests sent through a provider's batch interface: answered within a day at half price. A pending
  // batch's most it can cost is held against the daily budget until its answers are collected; the judge
  // keeps which turns each request stands for, so they are neither judged twice nor lost.
  "0010_batches": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE llm_batches (
        batch_id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        stage TEXT NOT NULL,
        requests INTEGER NOT NULL,
        estimated_usd REAL NOT NULL,
        submitted_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        collected_at INTEGER,
        succeeded INTEGER,
        errored INTEGER,
        expired INTEGER
      )`,
      sql`CREATE INDEX llm_batches_status ON llm_batches (status)`,
      sql`CREATE TABLE judge_batch_items (
        batch_id TEXT NOT NULL,
        custom_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        behavior TEXT NOT NULL,
        rubric_version TEXT NOT NULL,
        model TEXT NOT NULL,
        need TEXT NOT NULL,
        is_canary INTEGER NOT NULL,
        pack_version TEXT,
        PRIMARY KEY (batch_id, custom_id, behavior)
      )`,
      sql`CREATE INDEX judge_batch_items_trace ON judge_batch_items (trace_id, behavior)`
    ], { discard: true })),
  // File positions per host (AUTOTUNE_HOST_ID), as a store shared by several hosts keeps them; the positions
  // saved so far are this machine's, under its default host id.
  "0011_ingest_positions_host": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE ingest_positions_v2 (
        host_id TEXT NOT NULL, file TEXT NOT NULL, file_id TEXT NOT NULL, byte_offset INTEGER NOT NULL, line_no INTEGER NOT NULL,
        head_hash TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (host_id, file)
      )`,
      sql`INSERT INTO ingest_positions_v2 SELECT ${defaultHostId()}, file, file_id, byte_offset, line_no, head_hash, updated_at FROM ingest_positions`,
      sql`DROP TABLE ingest_positions`,
      sql`ALTER TABLE ingest_positions_v2 RENAME TO ingest_positions`
    ], { discard: true })),
  // Sentences of a judged turn addressed to whoever scores it ("note to the grader: full marks") are masked
  // before the judge reads them (judge/Addressed.ts); each verdict keeps how many, for status and the report.
  "0012_addressed_masked": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE judge_scores ADD COLUMN addressed_masked INTEGER NOT NULL DEFAULT 0`),
  // Running totals for /metrics (store/Totals.ts): kept as sums, since retention deletes the rows they count.
  "0013_metric_totals": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(METRIC_TOTALS_TABLE)),
  // A person's grades of judged turns (`autotune label`), per rubric version: the judge is measured against them.
  "0014_labels": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(LABELS_TABLES, (statement) => sql.unsafe(statement), { discard: true })),
  // Rubric versions as data (judge/RubricBook.ts).
  "0015_rubrics": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(RUBRICS_TABLE)),
  // Alignment of the rubrics with the people (align/Align.ts): its attempts, and who reacted to a turn.
  "0016_align": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(ALIGN_TABLES, (statement) => sql.unsafe(statement), { discard: true }))
}

/** The newest migration's number: a store that reports less has not been migrated yet. */
const LATEST_MIGRATION = Math.max(...Object.keys(MIGRATIONS).map((name) => Number(name.slice(0, 4))))

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
  sql.unsafe(`CREATE TRIGGER trace_scores_daily_insert AFTER INSERT ON trace_scores BEGIN ${scoreDailyUpsert("NEW", 1)} END`),
  sql.unsafe(`CREATE TRIGGER trace_scores_daily_replace BEFORE INSERT ON trace_scores BEGIN ${scoreDailyUpsert("o", -1, "FROM trace_scores o",
    "o.trace_id = NEW.trace_id AND o.behavior = NEW.behavior AND o.rubric_version = NEW.rubric_version AND")} END`),
  sql.unsafe(`CREATE TRIGGER trace_scores_daily_delete AFTER DELETE ON trace_scores BEGIN ${scoreDailyUpsert("OLD", -1)} END`),
  sql.unsafe(`CREATE TRIGGER trace_scores_daily_update AFTER UPDATE OF score, stage1_score, stage2_score, turn_at, pack_version ON trace_scores
    BEGIN ${scoreDailyUpsert("OLD", -1)} ${scoreDailyUpsert("NEW", 1)} END`)
]

export const isBusy = (error: SqlError.SqlError) => isBusyCode((error.cause as { code?: unknown } | undefined)?.code)

/**
 * Another autotune process may hold the write lock; better-sqlite3 waits 5 s on its own, but a deferred
 * transaction that must upgrade to a writer gets SQLITE_BUSY at once. Retrying the whole transaction is
 * the correct answer to both, so no raw SQLITE_BUSY reaches the user.
 */
export const busyRetry = Schedule.exponential("50 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo(Duration.minutes(2))
)

/** Opening and migrating retry a busy store like a write, but give up after 40 tries with the error. */
const openRetry = Schedule.intersect(busyRetry, Schedule.recurs(40))

/**
 * Runs a write transaction, retrying it whole while another process holds the database. When SQLite has
 * already rolled back on its own (a full disk), @effect/sql's ROLLBACK fails too and dies: that is the same
 * store failure, so it comes back as a typed error, not as a silent crash.
 */
export const writeTransaction = <A, E, R>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E, R>) =>
  sql.withTransaction(effect).pipe(
    Effect.catchSomeDefect((defect) => (defect instanceof SqlError.SqlError ? Option.some(Effect.fail(defect)) : Option.none())),
    Effect.retry({
      schedule: busyRetry,
      while: (error) => error instanceof SqlError.SqlError && isBusy(error)
    })
  )

/** What a person should read for SQLite's and the file system's error codes. */
export const describeStoreCause = (cause: unknown): string => {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown }
  const text = typeof message === "string" ? message : String(cause)
  const c = typeof code === "string" ? code : ""
  if (c === "SQLITE_FULL" || c === "ENOSPC") return "the disk is full"
  if (c.startsWith("SQLITE_READONLY") || c === "EROFS") return `the database cannot be written (read-only file system or file; ${text})`
  if (c.startsWith("SQLITE_CORRUPT") || c === "SQLITE_NOTADB") return `the database file is damaged (${text}); move it aside and run \`autotune accept-store\`: a new store is built and the traces are read again from DotClaw's files`
  if (c.startsWith("SQLITE_CANTOPEN")) return `cannot open the database file (missing directory or no permission; ${text})`
  if (c === "SQLITE_PERM" || c === "EACCES" || c === "EPERM") return `permission denied (${text})`
  if (c.startsWith("SQLITE_IOERR")) return `disk I/O error (${text}): is the disk full or failing?`
  return text
}

/** How many rows a statement run with `.raw` changed. */
export const rowsChanged = (result: unknown) => {
  // better-sqlite3 says `changes`, node-postgres `rowCount`.
  const r = result as { changes?: number; rowCount?: number | null } | undefined
  return Number(r?.changes ?? r?.rowCount ?? 0)
}

/** Maps a SqlError to the one-line StoreError a user sees. */
export const storeError = (operation: string) => (error: SqlError.SqlError) =>
  new StoreError({ operation, detail: describeStoreCause(error.cause ?? error) })

export const makeDbLayer = (filename: string, home?: string) => {
  // WAL with synchronous=NORMAL: a crash of the process never loses a commit; only a power cut can lose
  // the last few, and never corrupts. FULL would fsync on every ingest batch for no gain in our use.
  const client = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      // Incremental auto-vacuum takes effect on a new file (before its first table) and lets retention give
      // pages back; an older store is converted by retention's first prune.
      Effect.zipRight(
        Effect.zipRight(sql`PRAGMA auto_vacuum = INCREMENTAL`, sql`PRAGMA synchronous = NORMAL`).pipe(
          Effect.retry({ schedule: openRetry, while: isBusy })
        ),
        Effect.forEach(secureSidecars(filename), (w) => Effect.logWarning(w), { discard: true })
      )
    )
  ).pipe(
    // WAL is switched on by walMode below, with retries: the client's own switch runs inside its constructor,
    // where a busy database is an untyped crash.
    Layer.provideMerge(SqliteClient.layer({ filename, disableWAL: true }))
  )
  // @effect/sql's migrator treats any failure to claim a migration (SQLITE_BUSY included) as "another process
  // is migrating" and carries on before that process has committed: two first runs side by side would then
  // query tables that do not exist yet. A lock file beside the database makes the second one wait instead.
  // It also returns quietly when the claim fails because the other process merely holds the write lock for a
  // moment (its WAL switch, its first ingest batch): then nothing ran. So the store itself is asked whether every
  // migration is there, and a store still behind is retried like a busy one (seen: 1 run in 10 of two first
  // `ingest`s side by side failed with "no such table: ingest_positions").
  const migrate = Effect.gen(function* () {
    yield* SqliteMigrator.run({ loader: SqliteMigrator.fromRecord(MIGRATIONS) })
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ id: number | null }>`SELECT MAX(migration_id) AS id FROM effect_sql_migrations`
    if (Number(row?.id ?? 0) < LATEST_MIGRATION) {
      return yield* new SqlError.SqlError({ cause: { code: "SQLITE_BUSY" }, message: `the store is at migration ${row?.id ?? 0} of ${LATEST_MIGRATION}: another process holds it` })
    }
  })
  // The store's id against the home's record (store/Identity.ts), once the store is migrated.
  const identity = home === undefined || home === "" ? Effect.void : Effect.flatMap(SqlClient.SqlClient, (sql) => settleStoreIdentity(sql, home, filename, filename))
  const migrated = Layer.effectDiscard(Effect.zipRight(withRunLock(`${filename}.migrate.lock`, migrate, "2 minutes"), identity)).pipe(
    Layer.provide(NodeContext.layer),
    // A gone or swapped store is no busy store: it fails at once.
    Layer.retry(Schedule.intersect(openRetry, Schedule.recurWhile((e: unknown) => !(e instanceof StoreError))))
  )
  // Before anything creates the file: a store the home's record names that is gone or swapped stops here.
  const checked = home === undefined || home === "" ? Effect.void : Effect.flatMap(checkSqliteStore(home, filename), (note) => (note === undefined ? Effect.void : Effect.logWarning(note)))
  const secured = Effect.try({
    try: () => secureStore(filename, home),
    catch: (cause) => new StoreError({ operation: "open", detail: `cannot create ${path.dirname(filename)} or its database privately: ${describeStoreCause(cause)}` })
  }).pipe(Effect.flatMap((warnings) => Effect.forEach(warnings, (w) => Effect.logWarning(w), { discard: true })))
  return migrated.pipe(
    Layer.provideMerge(client),
    Layer.provideMerge(Layer.effectDiscard(checked.pipe(Effect.zipRight(secured), Effect.zipRight(walMode(filename))))),
    Layer.catchAll((error) =>
      Layer.fail(error instanceof StoreError ? error : new StoreError({ operation: `open ${filename}`, detail: describe(error) }))
    )
  )
}

const describe = (error: unknown): string => {
  const cause = (error as { cause?: unknown }).cause
  return describeStoreCause(cause instanceof Error ? cause : error)
}

/**
 * Puts the database in WAL mode before the SQL client opens it (the client is told not to). The client's own
 * switch runs synchronously in its constructor, where SQLITE_BUSY from a second process (opening a new store,
 * or recovering the WAL while another writes) is an untyped crash: "unexpected failure: database is locked",
 * seen in CI with two ingests started together. Here the switch is retried like any busy write.
 */
const walMode = (filename: string) =>
  Effect.try({
    try: () => {
      const db = new Database(filename)
      try {
        // Before anything writes the file's first page: only a new file takes incremental auto-vacuum.
        db.pragma("auto_vacuum = INCREMENTAL")
        db.pragma("journal_mode = WAL")
      } finally {
        db.close()
      }
    },
    catch: (cause) => new SqlError.SqlError({ cause, message: "switch to WAL mode" })
  }).pipe(Effect.retry({ schedule: openRetry, while: isBusy }))

/** The store: PostgreSQL at AUTOTUNE_DATABASE_URL when set (a fleet), else SQLite at AUTOTUNE_DB_PATH. */
export const DbLive: Layer.Layer<SqlClient.SqlClient, StoreError | ConfigError, Settings> = Layer.unwrapEffect(
  Effect.map(Settings, (s): Layer.Layer<SqlClient.SqlClient, StoreError | ConfigError> =>
    s.config.databaseUrl !== "" ? makePgLayer(s.config.databaseUrl, { hostId: s.config.hostId, home: s.config.home }) : makeDbLayer(s.config.dbPath, s.config.home)
  )
)

/**
 * The pack versions traces were served with for a behavior (its own and '*' packs), by a loose index scan:
 * one seek per distinct version on trace_packs' (behavior, version, ...) key instead of reading every row.
 */
export const servedVersions = (sql: SqlClient.SqlClient, behavior: string) =>
  sql<{ version: string }>`
    WITH RECURSIVE v(behavior, version) AS (
      SELECT b.value, (SELECT MIN(version) FROM trace_packs WHERE behavior = b.value) FROM (SELECT CAST(${behavior} AS TEXT) AS value UNION ALL SELECT '*') b
      UNION ALL
      SELECT v.behavior, (SELECT MIN(version) FROM trace_packs WHERE behavior = v.behavior AND version > v.version) FROM v WHERE v.version IS NOT NULL
    )
    SELECT DISTINCT version FROM v WHERE version IS NOT NULL`.pipe(
    Effect.map((rows) => rows.map((r) => r.version)),
    Effect.mapError(storeError("read served pack versions"))
  )

/**
 * A deployed canary's shares of traffic over its life, oldest first: the share it went out at ('canary') and
 * every step since ('canary_step'), in percent. Empty for a canary placed by hand.
 */
export const canaryShareRows = (sql: SqlClient.SqlClient, behavior: string, version: string) =>
  sql<{ at: number; detailJson: string }>`
    SELECT created_at AS "at", detail_json AS "detailJson" FROM deployments
    WHERE behavior = ${behavior} AND version = ${version} AND action IN ('canary', 'canary_step')
    ORDER BY created_at, id`.pipe(
    Effect.map((rows) =>
      rows.flatMap((r) => {
        const detail = JSON.parse(r.detailJson) as { canaryPercent?: unknown; to?: unknown; reason?: unknown }
        const percent = typeof detail.to === "number" ? detail.to : detail.canaryPercent
        const reason = typeof detail.reason === "string" ? detail.reason : "deployed"
        return typeof percent === "number" ? [{ at: Number(r.at), percent, reason }] : []
      })
    ),
    Effect.mapError(storeError("read the canary's shares"))
  )

/**
 * The stored trace as the capabilities read it: the columns of a turn the judge and the optimizer see, decoded
 * (its JSON columns with `Schema.parseJson`), which turns carry what a behavior's rubric needs, and the queries
 * that choose turns to judge. The write side is TraceRows.ts (ingest's rows) and the bulk writers.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { jsonArrayLength } from "./Dialect.js"
import { decodeFirst, decodeRows, NullableNumber } from "./Rows.js"

const Texts = Schema.parseJson(Schema.Array(Schema.String))
const ToolCalls = Schema.parseJson(
  Schema.Array(
    Schema.Struct({
      name: Schema.String,
      ok: Schema.Boolean,
      args: Schema.optionalWith(Schema.Unknown, { exact: true }),
      error: Schema.optionalWith(Schema.String, { exact: true }),
      durationMs: Schema.optionalWith(Schema.Number, { exact: true })
    })
  )
)

/** A stored turn as the judge reads it: already redacted at ingest, its lists decoded. */
export const StoredTurn = Schema.Struct({
  traceId: Schema.String,
  inputText: Schema.String,
  messageText: Schema.String,
  outputText: Schema.String,
  toolCalls: ToolCalls,
  memorySummary: Schema.NullOr(Schema.String),
  memoryFacts: Texts,
  memoryRecall: Texts,
  sessionRecall: Texts
})
export type StoredTurn = typeof StoredTurn.Type

/** The columns of `traces t` that make a StoredTurn, for the store's queries that read turns. */
export const TURN_COLUMNS = `t.trace_id AS "traceId", t.input_text AS "inputText", t.message_text AS "messageText",
  t.output_text AS "outputText", t.tool_calls_json AS "toolCalls", t.memory_summary AS "memorySummary",
  t.memory_facts_json AS "memoryFacts", t.memory_recall_json AS "memoryRecall", t.session_recall_json AS "sessionRecall"`

/**
 * Which stored turns a behavior's rubric can judge at all, as a condition on `traces t`: a tool-outcome rubric
 * needs tool calls, the memory rubrics need memory. The rest judge every answered turn.
 */
const APPLIES: Readonly<Record<Behavior, string>> = {
  "task-extraction": "1 = 1",
  "response-quality": "1 = 1",
  "tool-calling": "1 = 1",
  "tool-outcome": "t.tool_call_count > 0",
  "memory-policy": "(t.memory_facts_json != '[]' OR t.memory_summary IS NOT NULL)",
  "memory-recall": "(t.memory_recall_json != '[]' OR t.session_recall_json != '[]')"
}

export const appliesTo = (sql: SqlClient.SqlClient, behavior: Behavior) => sql.unsafe(APPLIES[behavior])

/** Why a turn is judged, in the order a budget spends on them (judge/Tasks.ts). */
export const Need = Schema.Literal("canary", "pair", "human", "trend")
export type Need = typeof Need.Type

/** A turn chosen for the judge: the turn, why, and which pack served it. */
export const QueuedTurn = Schema.Struct({
  ...StoredTurn.fields,
  need: Need,
  isCanary: Schema.Number,
  turnAt: Schema.Number,
  /** The pack version that served this behavior for the turn, if any: the report's trend per version. */
  packVersion: Schema.NullOr(Schema.String)
})
export type QueuedTurn = typeof QueuedTurn.Type

/** What a judge queue query needs to know of the rubric: its behavior and version, and the stage-1 model. */
export interface JudgeKey {
  readonly behavior: Behavior
  readonly rubricVersion: string
  readonly stage1Model: string
}

/** Answered turns this rubric applies to that its stage 1 has not judged and no pending batch holds. */
const notJudged = (
  sql: SqlClient.SqlClient,
  k: JudgeKey
) => sql`t.output_text IS NOT NULL AND ${appliesTo(sql, k.behavior)}
  AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${k.behavior}
                  AND j.rubric_version = ${k.rubricVersion} AND j.stage = 1 AND j.model = ${k.stage1Model})
  AND NOT EXISTS (SELECT 1 FROM judge_batch_items b WHERE b.trace_id = t.trace_id AND b.behavior = ${k.behavior})`

/** A pair draw: every turn, or turns whose fixed draw is under the rate in force when each was served. */
export type PairDraw =
  "all" | { readonly first: number; readonly later: ReadonlyArray<{ readonly at: number; readonly rate: number }> }

const pairDraw = (sql: SqlClient.SqlClient, draw: PairDraw) => {
  if (draw === "all") return sql`1 = 1`
  if (draw.later.length === 0) return sql`t.sample_draw < ${draw.first}`
  // Newest change first: the first WHEN that holds is the rate in force.
  const cases = [...draw.later].reverse().map((c) => sql`WHEN p.created_at >= ${c.at} THEN ${c.rate}`)
  return sql`t.sample_draw < (CASE ${sql.join(" ", false)(cases)} ELSE ${draw.first} END)`
}

/** The turns one pack version served for the behavior since `since`, oldest first, not yet judged. */
export const turnsServedBy = (
  sql: SqlClient.SqlClient,
  k: JudgeKey,
  q: {
    readonly version: string
    readonly since: number
    readonly draw: PairDraw
    readonly need: "canary" | "pair"
    readonly limit: number
  }
) =>
  sql`
    SELECT ${sql.unsafe(TURN_COLUMNS)}, t.created_at AS "turnAt", ${sql.literal(q.need === "canary" ? "1" : "0")} AS "isCanary", p.version AS "packVersion", ${q.need} AS need
    FROM trace_packs p JOIN traces t ON t.trace_id = p.trace_id
    WHERE p.behavior IN (${k.behavior}, '*') AND p.version = ${q.version} AND p.created_at >= ${q.since} AND ${pairDraw(sql, q.draw)} AND ${notJudged(sql, k)}
    ORDER BY p.created_at LIMIT ${q.limit}`.pipe(decodeRows(QueuedTurn, "select traces to judge"))

/**
 * The trend sample: turns since `since` whose fixed draw falls under the rate, newest first, not yet judged. With
 * `human`, the turns a person gave a signal on (a user's reaction, a grade) instead, read by key.
 */
export const sampledTurns = (
  sql: SqlClient.SqlClient,
  k: JudgeKey,
  q: {
    readonly since: number
    readonly rate: number
    readonly canary: string | undefined
    readonly versions: ReadonlyArray<string>
    readonly human: boolean
    readonly limit: number
  }
) =>
  sql`
    SELECT ${sql.unsafe(TURN_COLUMNS)}, t.created_at AS "turnAt",
           CASE WHEN EXISTS (SELECT 1 FROM trace_packs p WHERE p.behavior IN (${k.behavior}, '*') AND p.version = ${q.canary ?? "\u0001none"}
                   AND p.created_at = t.created_at AND p.trace_id = t.trace_id) THEN 1 ELSE 0 END AS "isCanary",
           (SELECT p.version FROM trace_packs p WHERE p.behavior IN (${k.behavior}, '*') AND p.version IN ${sql.in(q.versions.length === 0 ? ["\u0001none"] : q.versions)}
                   AND p.created_at = t.created_at AND p.trace_id = t.trace_id LIMIT 1) AS "packVersion", ${q.human ? "human" : "trend"} AS need
    FROM traces t
    WHERE ${
      q.human
        ? sql`t.trace_id IN (SELECT f.trace_id FROM feedback f UNION SELECT l.trace_id FROM labels l WHERE l.behavior = ${k.behavior})`
        : sql`t.sample_draw < ${q.rate}`
    } AND t.created_at >= ${q.since} AND ${notJudged(sql, k)}
    ORDER BY t.created_at DESC
    LIMIT ${q.limit}`.pipe(decodeRows(QueuedTurn, "select traces to judge"))

/** The newest stored turn's time (0 for an empty store). */
export const newestTurnAt = (sql: SqlClient.SqlClient) =>
  sql`SELECT MAX(created_at) AS at FROM traces`.pipe(
    decodeFirst(Schema.Struct({ at: NullableNumber }), "read the newest turn"),
    Effect.map((r) => r?.at ?? 0)
  )

/** How many answered turns since `since` a behavior's rubric applies to, and the first one's time. */
export const applicableVolume = (sql: SqlClient.SqlClient, behavior: Behavior, since: number) =>
  sql`
    SELECT COUNT(*) AS n, MIN(t.created_at) AS first FROM traces t
    WHERE t.created_at >= ${since} AND t.output_text IS NOT NULL AND ${appliesTo(sql, behavior)}`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number, first: NullableNumber }), "count the turns to sample"),
    Effect.map((r) => ({ n: r?.n ?? 0, first: r?.first ?? null }))
  )

/** When a pack version first served the behavior, if it has. */
export const firstServedAt = (sql: SqlClient.SqlClient, behavior: Behavior, version: string) =>
  sql`SELECT MIN(created_at) AS at FROM trace_packs WHERE behavior IN (${behavior}, '*') AND version = ${version}`.pipe(
    decodeFirst(Schema.Struct({ at: NullableNumber }), "read when a pack first served"),
    Effect.map((r) => r?.at ?? undefined)
  )

/** The most recent answered turns since `since`, newest first. */
export const recentAnsweredTurns = (sql: SqlClient.SqlClient, since: number, limit: number) =>
  sql`
    SELECT ${sql.unsafe(TURN_COLUMNS)} FROM traces t
    WHERE t.output_text IS NOT NULL AND t.created_at >= ${since} ORDER BY t.created_at DESC LIMIT ${limit}`.pipe(
    decodeRows(StoredTurn, "read recent turns")
  )

/**
 * The pack versions traces were served with for a behavior (its own and '*' packs), by a loose index scan:
 * one seek per distinct version on trace_packs' (behavior, version, ...) key instead of reading every row.
 */
export const servedVersions = (sql: SqlClient.SqlClient, behavior: string) =>
  sql`
    WITH RECURSIVE v(behavior, version) AS (
      SELECT b.value, (SELECT MIN(version) FROM trace_packs WHERE behavior = b.value) FROM (SELECT CAST(${behavior} AS TEXT) AS value UNION ALL SELECT '*') b
      UNION ALL
      SELECT v.behavior, (SELECT MIN(version) FROM trace_packs WHERE behavior = v.behavior AND version > v.version) FROM v WHERE v.version IS NOT NULL
    )
    SELECT DISTINCT version FROM v WHERE version IS NOT NULL`.pipe(
    decodeRows(Schema.Struct({ version: Schema.String }), "read served pack versions"),
    Effect.map((rows) => rows.map((r) => r.version))
  )

/** Whether a turn of this id is stored. */
export const turnExists = (sql: SqlClient.SqlClient, traceId: string) =>
  sql`SELECT COUNT(*) AS n FROM traces WHERE trace_id = ${traceId}`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "look up a turn"),
    Effect.map((r) => (r?.n ?? 0) > 0)
  )

const RecentBehavior = Schema.Struct({
  n: Schema.Number,
  err: NullableNumber,
  latency: NullableNumber,
  chars: NullableNumber,
  tools: NullableNumber,
  toolCalls: NullableNumber,
  toolFails: NullableNumber,
  facts: NullableNumber
})
export type RecentBehavior = typeof RecentBehavior.Type

/** The agent's behavior over its latest turns since `since` (at most `cap`): what behavior tuning reads. */
export const recentBehavior = (sql: SqlClient.SqlClient, since: number, cap: number) =>
  sql`
    WITH recent AS (SELECT * FROM traces WHERE created_at >= ${since} ORDER BY created_at DESC LIMIT ${cap})
    SELECT COUNT(*) AS n, AVG(is_error) AS err, AVG(latency_ms) AS latency, AVG(LENGTH(output_text)) AS chars,
           AVG(tool_call_count) AS tools, SUM(tool_call_count) AS "toolCalls", SUM(tool_failure_count) AS "toolFails",
           AVG(${jsonArrayLength(sql, "memory_facts_json")}) AS facts
    FROM recent`.pipe(
    decodeFirst(RecentBehavior, "read behavior metrics"),
    Effect.map(
      (r): RecentBehavior =>
        r ?? { n: 0, err: null, latency: null, chars: null, tools: null, toolCalls: null, toolFails: null, facts: null }
    )
  )

/** Turns stored since `since`. */
export const turnsSince = (sql: SqlClient.SqlClient, since: number) =>
  sql`SELECT COUNT(*) AS n FROM traces WHERE created_at >= ${since}`.pipe(
    decodeFirst(Schema.Struct({ n: Schema.Number }), "count turns"),
    Effect.map((r) => r?.n ?? 0)
  )

const AgentSpendRow = Schema.Struct({ turns: Schema.Number, priced: Schema.Number, usd: NullableNumber })

/** The agent's own spend since `since`, from what DotClaw wrote on each turn (`cost_total_usd`). */
export const agentSpendSince = (sql: SqlClient.SqlClient, since: number) =>
  sql`SELECT COUNT(*) AS turns, COUNT(cost_usd) AS priced, SUM(cost_usd) AS usd FROM traces WHERE created_at >= ${since}`.pipe(
    decodeFirst(AgentSpendRow, "read the agent's spend"),
    Effect.map((r) => ({ turns: r?.turns ?? 0, priced: r?.priced ?? 0, usd: r?.usd ?? 0 }))
  )

/** The agent's own spend per UTC day since `since` (days as YYYY-MM-DD), oldest first. */
export const agentSpendByDay = (sql: SqlClient.SqlClient, since: number) =>
  // Whole days by integer division: the same in both dialects, where their date functions are not.
  sql`
    SELECT created_at / 86400000 AS d, COUNT(*) AS turns, COUNT(cost_usd) AS priced, SUM(cost_usd) AS usd
    FROM traces WHERE created_at >= ${since} GROUP BY created_at / 86400000 ORDER BY d`.pipe(
    decodeRows(Schema.Struct({ d: Schema.Number, ...AgentSpendRow.fields }), "read the agent's daily spend"),
    Effect.map((rows) =>
      rows.map((r) => ({
        day: new Date(r.d * 86_400_000).toISOString().slice(0, 10),
        turns: r.turns,
        priced: r.priced,
        usd: r.usd ?? 0
      }))
    )
  )

/** Per host, how many DotClaw files it reads and when it last read one (`ingest_positions`). */
export const ingestHosts = (sql: SqlClient.SqlClient) =>
  sql`SELECT host_id AS host, COUNT(*) AS files, MAX(updated_at) AS at FROM ingest_positions GROUP BY host_id ORDER BY host_id`.pipe(
    decodeRows(Schema.Struct({ host: Schema.String, files: Schema.Number, at: Schema.Number }), "read the hosts")
  )

/** Whether the store holds any turn. */
export const anyTurn = (sql: SqlClient.SqlClient) =>
  sql`SELECT CASE WHEN EXISTS (SELECT 1 FROM traces) THEN 1 ELSE 0 END AS traces`.pipe(
    decodeFirst(Schema.Struct({ traces: Schema.Number }), "look for turns"),
    Effect.map((r) => r?.traces === 1)
  )

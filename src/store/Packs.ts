/**
 * Packs and their deployments as stored: each pack's body and status (`packs`), every deployment action
 * (`deployments`), and what can be read from them: a behavior's history, the pack a role holds, when a canary
 * went out, and the shares of requests it served over its life.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Option, Schema } from "effect"
import { Behavior } from "../Domain/Behavior.js"
import { PromptPack } from "../Domain/Pack.js"
import { fromPercent, type ShareChange } from "../Domain/Share.js"
import { storeError, writeTransaction } from "./Db.js"
import { jsonField } from "./Dialect.js"
import { decodeFirst, decodeRows, JsonObject, NullableNumber } from "./Rows.js"

const encodePack = Schema.encodeSync(PromptPack)

/** A pack's status in the store: chosen but not shipped, out as a canary, active, or done with. */
export type PackStatus = "selected" | "canary" | "active" | "retired" | "rolled_back" | "rejected" | (string & {})

/**
 * A pack chosen but not shipped (the optimizer's winner, or behavior tuning's pack under manual approval):
 * `deploy` or `autotune approve` ships it, `autotune reject` discards it.
 */
export const recordSelection = (
  sql: SqlClient.SqlClient,
  selection: {
    readonly version: string
    readonly behavior: Behavior
    readonly body: Record<string, unknown>
    readonly lineage: Record<string, unknown>
  }
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO packs ${sql.insert({ version: selection.version, behavior: selection.behavior, body_json: JSON.stringify(selection.body), lineage_json: JSON.stringify(selection.lineage), status: "selected", created_at: now })}`
    ).pipe(Effect.mapError(storeError("record the selected pack")))
  )

/** One deployment action on record (`canary`, `canary_step`, `promoted`, `rolled_back`, …) with its detail. */
export const recordDeployment = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  version: string,
  action: string,
  detail: Record<string, unknown>
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO deployments ${sql.insert({ behavior, version, action, detail_json: JSON.stringify(detail), created_at: now })}`
    ).pipe(Effect.mapError(storeError("record deployment")))
  )

/** A pack as it was written, with its status; a version already stored takes the new status and body. */
export const savePack = (
  sql: SqlClient.SqlClient,
  pack: PromptPack,
  status: PackStatus,
  lineage: Record<string, unknown>
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO packs ${sql.insert({
        version: pack.version,
        behavior: pack.behavior,
        body_json: JSON.stringify(encodePack(pack)),
        lineage_json: JSON.stringify(lineage),
        status,
        created_at: now
      })} ON CONFLICT (version) DO UPDATE SET status = excluded.status, body_json = excluded.body_json`
    ).pipe(Effect.mapError(storeError("record pack")))
  )

export const setPackStatus = (sql: SqlClient.SqlClient, version: string, status: PackStatus) =>
  sql`UPDATE packs SET status = ${status} WHERE version = ${version}`.pipe(
    Effect.mapError(storeError("update pack status"))
  )

const HistoryRow = Schema.Struct({
  behavior: Schema.String,
  version: Schema.String,
  action: Schema.String,
  detail: JsonObject,
  createdAt: Schema.Number,
  status: Schema.NullOr(Schema.String),
  lineage: Schema.NullOr(JsonObject)
})
export type DeploymentRow = typeof HistoryRow.Type

/** The last 200 deployment actions, newest first, of one behavior or all. */
export const deploymentHistory = (sql: SqlClient.SqlClient, behavior?: Behavior) =>
  sql`
    SELECT d.behavior, d.version, d.action, d.detail_json AS "detail", d.created_at AS "createdAt", p.status, p.lineage_json AS "lineage"
    FROM deployments d LEFT JOIN packs p ON p.version = d.version
    ${behavior === undefined ? sql`` : sql`WHERE d.behavior = ${behavior}`}
    ORDER BY d.created_at DESC, d.id DESC LIMIT 200`.pipe(decodeRows(HistoryRow, "read pack history"))

/** When a canary of this version went out, by its deployment (undefined for a canary placed by hand). */
export const canaryDeployedAt = (sql: SqlClient.SqlClient, behavior: Behavior, version: string) =>
  sql`SELECT MIN(created_at) AS "at" FROM deployments WHERE behavior = ${behavior} AND version = ${version} AND action = 'canary'`.pipe(
    decodeFirst(Schema.Struct({ at: NullableNumber }), "read deployments"),
    Effect.map((row) => row?.at ?? undefined)
  )

const PackBody = Schema.Struct({ body: Schema.parseJson(PromptPack) })

/** The store's pack for a behavior in a role: the canary out, or the active pack the last activation chose. */
export const storedPack = (sql: SqlClient.SqlClient, behavior: Behavior, role: "active" | "canary") =>
  (role === "canary"
    ? sql`SELECT body_json AS "body" FROM packs WHERE behavior = ${behavior} AND status = 'canary' ORDER BY created_at DESC LIMIT 1`
    : sql`
        SELECT p.body_json AS "body" FROM deployments d JOIN packs p ON p.version = d.version
        WHERE d.behavior = ${behavior} AND d.action IN ('baseline', 'deployed_active', 'promoted', 'restored') AND p.status = 'active'
        ORDER BY d.created_at DESC, d.id DESC LIMIT 1`
  ).pipe(
    decodeFirst(PackBody, "read the packs in the store"),
    Effect.map((row) => row?.body)
  )

const ShareRow = Schema.Struct({
  at: Schema.Number,
  detail: Schema.parseJson(
    Schema.Struct({
      canaryPercent: Schema.optional(Schema.Unknown),
      to: Schema.optional(Schema.Unknown),
      reason: Schema.optional(Schema.Unknown)
    })
  )
})

/**
 * A deployed canary's shares of requests over its life, oldest first: the share it went out at ('canary') and
 * every step since ('canary_step'), with why. Empty for a canary placed by hand. The one place the recorded
 * history is read.
 */
export const canaryShares = (sql: SqlClient.SqlClient, behavior: string, version: string) =>
  sql`
    SELECT created_at AS "at", detail_json AS "detail" FROM deployments
    WHERE behavior = ${behavior} AND version = ${version} AND action IN ('canary', 'canary_step')
    ORDER BY created_at, id`.pipe(
    decodeRows(ShareRow, "read the canary's shares"),
    Effect.map((rows) =>
      rows.flatMap((r): Array<ShareChange & { readonly reason: string }> => {
        const percent = typeof r.detail.to === "number" ? r.detail.to : r.detail.canaryPercent
        const reason = typeof r.detail.reason === "string" ? r.detail.reason : "deployed"
        return typeof percent === "number" ? [{ at: r.at, share: fromPercent(percent), reason }] : []
      })
    )
  )

const SelectionRow = Schema.Struct({
  version: Schema.String,
  behavior: Behavior,
  body: Schema.parseJson(
    Schema.Struct({
      instructions: Schema.String,
      lineage: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
      baselineInstructions: Schema.String,
      metric: Schema.optional(Schema.Struct({ name: Schema.String, model: Schema.String, score: Schema.Number })),
      // A behavior pack (behavior/, under manual approval) carries the share it was proposed at, in percent.
      canaryPercent: Schema.optional(Schema.Number)
    })
  )
})

/** Selected packs waiting for deployment, oldest first, with what the Deployer needs. */
export const pendingSelections = (sql: SqlClient.SqlClient) =>
  sql`SELECT version, behavior, body_json AS "body" FROM packs WHERE status = 'selected' ORDER BY created_at`.pipe(
    decodeRows(SelectionRow, "read selected packs"),
    Effect.map((rows) =>
      rows.map(({ body: { canaryPercent, ...body }, ...r }) => ({
        ...r,
        ...body,
        ...(canaryPercent === undefined ? {} : { share: fromPercent(canaryPercent) })
      }))
    )
  )

/** A behavior's pack of this version as the store keeps it, if it does. */
export const packOf = (sql: SqlClient.SqlClient, behavior: Behavior, version: string) =>
  sql`SELECT body_json AS "body" FROM packs WHERE version = ${version} AND behavior = ${behavior}`.pipe(
    decodeFirst(PackBody, "find pack"),
    Effect.map((row) => row?.body)
  )

const RejectedBody = Schema.Struct({
  body: Schema.parseJson(Schema.Struct({ instructions: Schema.String, baselineInstructions: Schema.String }))
})

/** What the operator rejected for the behavior (`autotune reject`): each pack's instructions and the baseline it changed. */
export const rejectedPacks = (sql: SqlClient.SqlClient, behavior: Behavior) =>
  sql`SELECT body_json AS "body" FROM packs WHERE behavior = ${behavior} AND status = 'rejected'`.pipe(
    Effect.mapError(storeError("read rejected packs")),
    // A rejected pack of another shape (a behavior pack) has nothing the optimizer could propose again: left out.
    Effect.map((rows) =>
      rows.flatMap((row) => {
        const decoded = decodeRejected(row)
        return decoded._tag === "Right" ? [decoded.right.body] : []
      })
    )
  )
const decodeRejected = Schema.decodeUnknownEither(RejectedBody)

/** The behavior's selected pack waiting for deployment, if any. */
export const pendingVersion = (sql: SqlClient.SqlClient, behavior: Behavior) =>
  sql`SELECT version FROM packs WHERE behavior = ${behavior} AND status = 'selected' LIMIT 1`.pipe(
    decodeFirst(Schema.Struct({ version: Schema.String }), "read packs"),
    Effect.map((r) => r?.version)
  )

/** The optimizer's last attempt on this baseline, if any. */
export const lastOptimizeRun = (sql: SqlClient.SqlClient, behavior: Behavior, baselineVersion: string) =>
  sql`
    SELECT created_at AS "createdAt", outcome FROM optimize_runs WHERE behavior = ${behavior} AND baseline_version = ${baselineVersion}
    ORDER BY created_at DESC LIMIT 1`.pipe(
    decodeFirst(Schema.Struct({ createdAt: Schema.Number, outcome: Schema.String }), "read optimize runs")
  )

/** One optimizer attempt on a baseline, with its outcome as the optimizer reported it. */
export const recordOptimizeRun = (
  sql: SqlClient.SqlClient,
  r: {
    readonly behavior: Behavior
    readonly baselineVersion: string
    readonly outcome: string
    readonly detail: unknown
    readonly redactionVersion: number
  }
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    writeTransaction(
      sql,
      sql`INSERT INTO optimize_runs ${sql.insert({ behavior: r.behavior, baseline_version: r.baselineVersion, outcome: r.outcome, detail_json: JSON.stringify(r.detail), created_at: now, redaction_version: r.redactionVersion })}`
    ).pipe(Effect.asVoid, Effect.mapError(storeError("record the optimizer run")))
  )

const HeldOutFigure = Schema.Struct({
  candidate: Schema.optional(Schema.Number),
  id: Schema.optional(Schema.String),
  n: Schema.Number,
  mean: NullableNumber,
  meanDiff: Schema.Number,
  lowerBound: Schema.Number
})

/**
 * An optimizer run's stored outcome, as far as the report reads it. Runs recorded by older versions lack the
 * later fields: every field is optional, and a record that does not read at all shows as a run without figures.
 */
const RunDetail = Schema.Struct({
  why: Schema.optional(Schema.String),
  baseline: Schema.optional(Schema.Struct({ n: Schema.Number, mean: NullableNumber })),
  heldOut: Schema.optional(Schema.Array(HeldOutFigure)),
  winner: Schema.optional(HeldOutFigure),
  best: Schema.optional(HeldOutFigure),
  rounds: Schema.optional(Schema.Array(Schema.Unknown)),
  stopped: Schema.optional(Schema.String),
  linted: Schema.optional(Schema.Array(Schema.String)),
  calls: Schema.optional(Schema.Number),
  costUsd: Schema.optional(NullableNumber),
  version: Schema.optional(Schema.String)
})

const OptimizeRunRow = Schema.Struct({
  at: Schema.Number,
  outcome: Schema.String,
  baselineVersion: Schema.String,
  detail: Schema.String,
  body: Schema.NullOr(
    Schema.parseJson(
      Schema.Struct({
        instructions: Schema.optional(Schema.String),
        baselineInstructions: Schema.optional(Schema.String)
      })
    )
  )
})

/** A behavior's optimizer runs since `since`, newest first (at most `limit`), each with the pack it selected, if any. */
export const optimizeRuns = (sql: SqlClient.SqlClient, behavior: Behavior, since: number, limit: number) =>
  sql`
    SELECT o.created_at AS at, o.outcome, o.baseline_version AS "baselineVersion", o.detail_json AS "detail", p.body_json AS "body"
    FROM optimize_runs o LEFT JOIN packs p ON p.version = ${jsonField(sql, "o.detail_json", "version")}
    WHERE o.behavior = ${behavior} AND o.created_at >= ${since} ORDER BY o.created_at DESC LIMIT ${limit}`.pipe(
    decodeRows(OptimizeRunRow, "read optimizer runs"),
    Effect.map((rows) =>
      rows.map((r) => ({
        ...r,
        detail: Option.getOrElse(decodeRunDetail(r.detail), (): typeof RunDetail.Type => ({}))
      }))
    )
  )
const decodeRunDetail = Schema.decodeUnknownOption(Schema.parseJson(RunDetail))

/** A behavior's deployments and rubric changes since `since`, oldest first: the report's events. */
export const deploymentEvents = (sql: SqlClient.SqlClient, behavior: Behavior, since: number) =>
  sql`
    SELECT created_at AS at, version, action FROM deployments WHERE behavior = ${behavior} AND created_at >= ${since}
    UNION ALL SELECT created_at AS at, version, 'rubric ' || status AS action FROM rubrics WHERE behavior = ${behavior} AND created_at >= ${since}
    ORDER BY 1`.pipe(
    decodeRows(Schema.Struct({ at: Schema.Number, version: Schema.String, action: Schema.String }), "read deployments")
  )

const SelectedBody = Schema.parseJson(
  Schema.Struct({
    instructions: Schema.String,
    baselineInstructions: Schema.String,
    lineage: Schema.Struct({
      validation: Schema.optional(
        Schema.Struct({ meanDiff: Schema.optional(Schema.Number), lowerBound: Schema.optional(Schema.Number) })
      )
    }),
    examples: Schema.optionalWith(
      Schema.Array(
        Schema.Struct({
          traceId: Schema.String,
          message: Schema.String,
          baseline: Schema.Number,
          winner: Schema.Number
        })
      ),
      { default: () => [] }
    )
  })
)
const decodeSelected = Schema.decodeUnknownOption(SelectedBody)

/** The behavior's newest selected pack with its body, if one waits (a body of another shape reads as none). */
export const selectedPack = (sql: SqlClient.SqlClient, behavior: Behavior) =>
  sql`SELECT version, body_json AS "body" FROM packs WHERE behavior = ${behavior} AND status = 'selected' ORDER BY created_at DESC LIMIT 1`.pipe(
    decodeFirst(Schema.Struct({ version: Schema.String, body: Schema.String }), "read the selected pack"),
    Effect.map((row) => {
      if (row === undefined) return undefined
      const body = decodeSelected(row.body)
      return body._tag === "None" ? undefined : { version: row.version, ...body.value }
    })
  )

const PackRecord = Schema.Struct({
  behavior: Behavior,
  status: Schema.String,
  body: Schema.parseJson(
    Schema.Struct({ instructions: Schema.String, baselineInstructions: Schema.optional(Schema.String) })
  ),
  lineage: Schema.NullOr(Schema.String)
})
const decodeLineage = Schema.decodeUnknownOption(
  Schema.parseJson(Schema.Struct({ baselineVersion: Schema.optional(Schema.String) }))
)

/** Any stored pack by version: its behavior, status, instructions (and the baseline a selection records), and the baseline its lineage names. */
export const packRecord = (sql: SqlClient.SqlClient, version: string) =>
  sql`SELECT behavior, status, body_json AS "body", lineage_json AS "lineage" FROM packs WHERE version = ${version}`.pipe(
    decodeFirst(PackRecord, "read the pack"),
    Effect.map((row) => {
      if (row === undefined) return undefined
      const lineage = row.lineage === null ? undefined : decodeLineage(row.lineage)
      return { ...row, baselineVersion: lineage?._tag === "Some" ? lineage.value.baselineVersion : undefined }
    })
  )

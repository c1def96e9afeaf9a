/**
 * The judge's rubrics as data (`rubrics`): every stored version of a behavior's criteria, where it came from (the
 * operator's file, alignment, a rollback) and its status. At most one version per behavior is active; the
 * built-in rubric is the version no row stands for.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { storeError, writeTransaction } from "./Db.js"
import { decodeRows } from "./Rows.js"

export type RubricStatus = "active" | "retired" | "pending" | "rolled_back" | "rejected"

export const StoredRubric = Schema.Struct({
  behavior: Schema.String,
  version: Schema.String,
  title: Schema.String,
  criteria: Schema.String,
  source: Schema.String,
  status: Schema.Literal("active", "retired", "pending", "rolled_back", "rejected"),
  createdAt: Schema.Number
})
export type StoredRubric = typeof StoredRubric.Type

/** Every stored version, oldest first. */
export const storedRubrics = (sql: SqlClient.SqlClient) =>
  sql`SELECT behavior, version, title, criteria, source, status, created_at AS "createdAt" FROM rubrics ORDER BY created_at, version`.pipe(
    decodeRows(StoredRubric, "read the rubrics")
  )

const retireActive = (sql: SqlClient.SqlClient, behavior: Behavior) =>
  sql`UPDATE rubrics SET status = 'retired' WHERE behavior = ${behavior} AND status = 'active'`

const insert = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  v: { readonly version: string; readonly title: string; readonly criteria: string; readonly source: string },
  status: RubricStatus
) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      sql`INSERT INTO rubrics ${sql.insert({ behavior, version: v.version, title: v.title, criteria: v.criteria, source: v.source, status, created_at: now })}`
  )

/** A version from the operator's file becomes the active one, once: a version already stored (even rolled back) is left as it is. */
export const adoptFileRubric = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  v: { readonly version: string; readonly title: string; readonly criteria: string }
) =>
  writeTransaction(
    sql,
    Effect.gen(function* () {
      const known = yield* sql`SELECT 1 AS one FROM rubrics WHERE behavior = ${behavior} AND version = ${v.version}`
      if (known.length > 0) return
      yield* retireActive(sql, behavior)
      yield* insert(sql, behavior, { ...v, source: "file" }, "active")
    })
  ).pipe(Effect.mapError(storeError("record a rubric from AUTOTUNE_RUBRICS_PATH")))

/** A new version, active at once (the active one retires) or pending; a version of the same name is replaced. */
export const recordRubric = (
  sql: SqlClient.SqlClient,
  behavior: Behavior,
  v: { readonly version: string; readonly title: string; readonly criteria: string; readonly source: string },
  status: "active" | "pending"
) =>
  writeTransaction(
    sql,
    Effect.gen(function* () {
      if (status === "active") yield* retireActive(sql, behavior)
      yield* sql`DELETE FROM rubrics WHERE behavior = ${behavior} AND version = ${v.version}`
      yield* insert(sql, behavior, v, status)
    })
  ).pipe(Effect.mapError(storeError("record a rubric version")))

/** Back one version: `from` is rolled back and `to` active again (`to` undefined: the built-in rubric, no row). */
export const rollBackRubric = (sql: SqlClient.SqlClient, behavior: Behavior, from: string, to: string | undefined) =>
  writeTransaction(
    sql,
    Effect.gen(function* () {
      yield* sql`UPDATE rubrics SET status = 'rolled_back' WHERE behavior = ${behavior} AND version = ${from}`
      if (to !== undefined)
        yield* sql`UPDATE rubrics SET status = 'active' WHERE behavior = ${behavior} AND version = ${to}`
    })
  ).pipe(Effect.mapError(storeError("roll back a rubric")))

export const rejectRubric = (sql: SqlClient.SqlClient, behavior: Behavior, version: string) =>
  sql`UPDATE rubrics SET status = 'rejected' WHERE behavior = ${behavior} AND version = ${version}`.pipe(
    Effect.asVoid,
    Effect.mapError(storeError("reject a rubric version"))
  )

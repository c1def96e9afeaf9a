/**
 * Rows read through their schema. A query's rows are decoded, JSON columns included (`Schema.parseJson`), so
 * a capability gets typed values, never a cast; a row that does not read as its schema says is a StoreError
 * naming what was read, not a crash somewhere later.
 */
import type { SqlError } from "@effect/sql"
import { Effect, ParseResult, Schema } from "effect"
import { StoreError } from "../Domain/Errors.js"
import { storeError } from "./Db.js"

/** The first thing wrong with a row, as "path: what" (the whole tree would spell out the row's type). */
const firstIssue = (e: ParseResult.ParseError): string => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(e)
  return issue === undefined
    ? e.message
    : `${issue.path.length === 0 ? "" : `${issue.path.join(".")}: `}${issue.message}`
}

/** Decodes a query's rows with `row`; SQL failures and undecodable rows both become one StoreError. */
export const decodeRows = <A, I>(row: Schema.Schema<A, I>, operation: string) => {
  const decode = Schema.decodeUnknown(Schema.Array(row))
  return <E extends SqlError.SqlError, R>(
    query: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<ReadonlyArray<A>, StoreError, R> =>
    query.pipe(
      Effect.mapError(storeError(operation)),
      Effect.flatMap((rows) =>
        Effect.mapError(
          decode(rows),
          (e) => new StoreError({ operation, detail: `a stored row does not read as expected: ${firstIssue(e)}` })
        )
      )
    )
}

/** The first decoded row, if any. */
export const decodeFirst = <A, I>(row: Schema.Schema<A, I>, operation: string) => {
  const all = decodeRows(row, operation)
  return <E extends SqlError.SqlError, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
    Effect.map(all(query), (rows) => rows[0])
}

/** A number column that may be NULL (an aggregate over no rows). */
export const NullableNumber = Schema.NullOr(Schema.Number)

/** A stored JSON object column, its keys as they were written. */
export const JsonObject = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))

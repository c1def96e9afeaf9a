/**
 * The store's one list of migrations: every store either dialect has today, at every earlier step, upgrades in
 * place to the same schema a fresh store gets, with nothing re-run or skipped; and the list itself is whole.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BEHAVIORS } from "../src/Domain/Behavior.js"
import { makeDbLayer } from "../src/store/Db.js"
import { LATEST_MIGRATION, MIGRATIONS, placeRecorded } from "../src/store/migrations/index.js"
import { NONE } from "../src/store/migrations/Migration.js"
import { makePgLayer } from "../src/store/Postgres.js"
import { tempHome } from "./helpers/app.js"
import { LEGACY_PG_MIGRATIONS, LEGACY_SQLITE_MIGRATIONS } from "./fixtures/legacyMigrations.js"
import { type Cluster, startPostgres } from "./helpers/postgres.js"

const firstOf = <A>(record: Record<string, A>, n: number) =>
  Object.fromEntries(
    Object.entries(record)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, n)
  )

const open = <A>(layer: Layer.Layer<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Layer.build(layer).pipe(Effect.asVoid)))

const expectedRecord = MIGRATIONS.map(([id, name]) => ({ id, name }))

/** What the schema gained since 2.0 (each migration after 0017): a fresh store is 2.0's plus exactly these. */
const SINCE_2_0 = new Set(["judge_scores_masked"])
const without2_1 = <A extends { readonly name?: string; readonly indexname?: string }>(objects: ReadonlyArray<A>) =>
  objects.filter((o) => !SINCE_2_0.has(o.name ?? o.indexname ?? ""))

describe("the list of migrations", () => {
  it("holds every numbered file of store/migrations, in order, with both dialects' forms", () => {
    const dir = path.join(import.meta.dirname, "..", "src", "store", "migrations")
    const files = fs
      .readdirSync(dir)
      .filter((f) => /^\d{4}_[a-z0-9_]+\.ts$/.test(f))
      .sort()
    expect(files.map((f) => f.replace(/\.ts$/, ""))).toEqual(
      MIGRATIONS.map(([id, name]) => `${String(id).padStart(4, "0")}_${name}`)
    )
    expect(MIGRATIONS.map(([id]) => id)).toEqual(MIGRATIONS.map((_, i) => i + 1))
    for (const [id, name, m] of MIGRATIONS) {
      expect(Effect.isEffect(m.sqlite), `${id} ${name}: sqlite`).toBe(true)
      expect(Effect.isEffect(m.pg), `${id} ${name}: pg`).toBe(true)
      expect(m.sqlite === NONE && m.pg === NONE, `${id} ${name} does nothing in either dialect`).toBe(false)
    }
  })

  it("places a store's recorded migrations on the list by name, or says why it cannot", () => {
    // PostgreSQL 2.0 at its 0003: init, fleet_hosts, addressed_masked.
    const pgOld = placeRecorded("pg", [
      { id: 1, name: "init" },
      { id: 2, name: "fleet_hosts" },
      { id: 3, name: "addressed_masked" }
    ])
    expect(pgOld).toEqual({
      rows: MIGRATIONS.filter(([id]) => id <= 13).map(([id, name]) => [id, name]),
      changed: true
    })
    // SQLite 2.0 at its 0011 is already on the list.
    expect(placeRecorded("sqlite", expectedRecord.slice(0, 11))).toMatchObject({ changed: false })
    expect(
      placeRecorded("sqlite", [
        { id: 1, name: "init" },
        { id: 2, name: "mystery" }
      ])
    ).toEqual({ error: expect.stringContaining('"mystery", which this autotune does not know') })
    // A change SQLite needs cannot be missing below one it has.
    expect(
      placeRecorded("sqlite", [
        { id: 1, name: "init" },
        { id: 3, name: "llm_cost_known" }
      ])
    ).toEqual({ error: expect.stringContaining('not 2 "optimize_runs"') })
    // A newer autotune's migration is kept as recorded.
    const newer = placeRecorded("sqlite", [...expectedRecord, { id: LATEST_MIGRATION + 1, name: "from_the_future" }])
    expect(newer).toMatchObject({ changed: false })
  })
})

/**
 * What a SQLite store is made of: every table, index and trigger with its statement (spaces and line breaks
 * aside: SQLite keeps a statement's text as it was written), and each table's columns as SQLite reads them.
 */
const sqliteSchema = (file: string) => {
  const db = new Database(file, { readonly: true })
  try {
    const objects = db
      .prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'effect_sql_migrations' ORDER BY type, name"
      )
      .all() as Array<{ type: string; name: string; sql: string | null }>
    return {
      objects: objects.map((o) => ({
        ...o,
        sql: o.sql?.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")")
      })),
      columns: objects
        .filter((o) => o.type === "table")
        .map((o) => [o.name, db.prepare(`PRAGMA table_xinfo(${o.name})`).all()]),
      recorded: db.prepare("SELECT migration_id AS id, name FROM effect_sql_migrations ORDER BY migration_id").all()
    }
  } finally {
    db.close()
  }
}

describe("SQLite stores upgrade in place", () => {
  const home = tempHome()
  const fresh = path.join(home, "fresh.db")
  const legacyFresh = path.join(home, "legacy-fresh.db")

  const legacyStore = (file: string, steps: number) =>
    open(
      Layer.effectDiscard(
        SqliteMigrator.run({ loader: SqliteMigrator.fromRecord(firstOf(LEGACY_SQLITE_MIGRATIONS, steps)) })
      ).pipe(Layer.provide(SqliteClient.layer({ filename: file })), Layer.provide(NodeContext.layer))
    )

  it("a fresh store is the schema 2.0 built and what came since, recorded on the one list", async () => {
    await open(makeDbLayer(fresh))
    await legacyStore(legacyFresh, 16)
    const objects = sqliteSchema(fresh).objects
    expect(without2_1(objects)).toEqual(sqliteSchema(legacyFresh).objects)
    expect(objects.filter((o) => SINCE_2_0.has(o.name)).map((o) => o.name)).toEqual([...SINCE_2_0])
    expect(sqliteSchema(fresh).recorded).toEqual(expectedRecord)
  })

  it("answers the count of masked turns (store/Scores.ts) from its partial index, for one behavior or all", () => {
    const db = new Database(fresh, { readonly: true })
    const all = `behavior IN (${BEHAVIORS.map((b) => `'${b}'`).join(", ")})`
    for (const behavior of ["behavior = 'response-quality'", all]) {
      const plan = db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT COUNT(DISTINCT trace_id) AS n FROM judge_scores WHERE ${behavior} AND stage = 1 AND addressed_masked > 0 AND created_at >= 0`
        )
        .all() as Array<{ detail: string }>
      expect(plan.map((p) => p.detail).join("; "), behavior).toContain("USING INDEX judge_scores_masked")
    }
    db.close()
  })

  it.each(Array.from({ length: 16 }, (_, i) => i + 1))("from 2.0's migration %i, keeping its rows", async (steps) => {
    const file = path.join(home, `at-${steps}.db`)
    await legacyStore(file, steps)
    const db = new Database(file)
    db.prepare(
      "INSERT INTO traces (trace_id, ts, created_at, input_text, message_text, is_error, file, byte_offset, line_no, ingested_at) VALUES ('trace-kept', '', 1, 'hi', 'hi', 0, 'f', 0, 0, 0)"
    ).run()
    db.close()
    await open(makeDbLayer(file))
    // Opened twice: the second finds nothing to do.
    await open(makeDbLayer(file))
    const upgraded = sqliteSchema(file)
    expect(upgraded.objects).toEqual(sqliteSchema(fresh).objects)
    expect(upgraded.recorded).toEqual(expectedRecord)
    const check = new Database(file, { readonly: true })
    expect(check.prepare("SELECT trace_id FROM traces").all()).toEqual([{ trace_id: "trace-kept" }])
    check.close()
  })
})

describe("PostgreSQL stores upgrade in place", () => {
  let cluster: Cluster
  beforeAll(async () => {
    cluster = await startPostgres()
  }, 60_000)
  afterAll(() => cluster?.stop())

  const query = async (url: string, text: string) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return (await client.query(text)).rows
    } finally {
      await client.end()
    }
  }

  /** Tables' columns, indexes, triggers and functions as PostgreSQL's catalog describes them. */
  const pgSchema = async (url: string) => ({
    columns: await query(
      url,
      `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name != 'effect_sql_migrations' ORDER BY table_name, ordinal_position`
    ),
    indexes: await query(
      url,
      "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
    ),
    triggers: await query(
      url,
      "SELECT event_object_table, trigger_name, event_manipulation, action_statement FROM information_schema.triggers ORDER BY 1, 2, 3"
    ),
    functions: await query(
      url,
      "SELECT proname, prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY proname"
    ),
    recorded: await query(url, "SELECT migration_id AS id, name FROM effect_sql_migrations ORDER BY migration_id")
  })

  const legacyStore = (url: string, steps: number) =>
    open(
      Layer.effectDiscard(PgMigrator.run({ loader: PgMigrator.fromRecord(firstOf(LEGACY_PG_MIGRATIONS, steps)) })).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url) })),
        Layer.provide(NodeContext.layer)
      )
    )

  it("a fresh store is the schema 2.0 built and what came since; each of 2.0's steps upgrades to it", async () => {
    const fresh = await cluster.database("fresh")
    const legacyFresh = await cluster.database("legacy_fresh")
    await open(makePgLayer(Redacted.make(fresh)))
    await legacyStore(legacyFresh, 7)
    const want = await pgSchema(fresh)
    const { recorded: _, ...legacyShape } = await pgSchema(legacyFresh)
    const { recorded, ...shape } = want
    expect({ ...shape, indexes: without2_1(shape.indexes) }).toEqual(legacyShape)
    expect(shape.indexes.filter((i) => SINCE_2_0.has(i.indexname)).map((i) => i.indexname)).toEqual([...SINCE_2_0])
    expect(recorded).toEqual(expectedRecord)
    for (let steps = 1; steps <= 7; steps++) {
      const url = await cluster.database(`at_${steps}`)
      await legacyStore(url, steps)
      await query(
        url,
        "INSERT INTO traces (trace_id, ts, created_at, input_text, message_text, is_error, file, byte_offset, line_no, ingested_at) VALUES ('trace-kept', '', 1, 'hi', 'hi', 0, 'f', 0, 0, 0)"
      )
      await open(makePgLayer(Redacted.make(url)))
      await open(makePgLayer(Redacted.make(url)))
      expect(await pgSchema(url), `from PostgreSQL 2.0's migration ${steps}`).toEqual(want)
      expect(await query(url, "SELECT trace_id FROM traces")).toEqual([{ trace_id: "trace-kept" }])
    }
  }, 120_000)
})

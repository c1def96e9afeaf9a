/**
 * The packs, on disk and in the store: writing a pack file atomically after checking it against DotClaw's
 * rules, each pack's record and status, the deployments log, and the packs the store says a host serves.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import type { AppConfig } from "../config/Table.js"
import type { Behavior } from "../Domain/Behavior.js"
import { FileError } from "../Domain/Errors.js"
import { canaryPath, PromptPack } from "../Domain/Pack.js"
import { storeError, writeTransaction } from "../store/Db.js"
import { describeFsError, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { type NewPack, newVersion, packName } from "./Versions.js"

const encodePack = Schema.encodeSync(PromptPack)

/**
 * A pack chosen but not shipped (the optimizer's winner, or behavior tuning's pack under manual approval):
 * `deploy` or `autotune approve` ships it, `autotune reject` discards it.
 */
export const recordSelection = (sql: SqlClient.SqlClient, selection: { readonly version: string; readonly behavior: Behavior; readonly body: Record<string, unknown>; readonly lineage: Record<string, unknown> }) =>
  writeTransaction(sql,
    sql`INSERT INTO packs ${sql.insert({ version: selection.version, behavior: selection.behavior, body_json: JSON.stringify(selection.body), lineage_json: JSON.stringify(selection.lineage), status: "selected", created_at: Date.now() })}`
  ).pipe(Effect.mapError(storeError("record the selected pack")))

export const makePackStore = ({ sql, config }: { readonly sql: SqlClient.SqlClient; readonly config: AppConfig }) => {
  /** Writes a pack after checking it against DotClaw's own rules, atomically. */
  const writePack = (file: string, behavior: Behavior, pack: PromptPack) =>
    Effect.gen(function* () {
      if (pack.behavior !== behavior) return yield* Effect.die(new Error(`pack for ${pack.behavior} written as ${behavior}`))
      const body = JSON.stringify(encodePack(pack), null, 2) + "\n"
      yield* writeFileAtomic(file, body, MODES.shared)
    })

  const record = (behavior: Behavior, version: string, action: string, detail: Record<string, unknown>) =>
    writeTransaction(sql, sql`INSERT INTO deployments ${sql.insert({ behavior, version, action, detail_json: JSON.stringify(detail), created_at: Date.now() })}`).pipe(
      Effect.mapError(storeError("record deployment"))
    )

  const savePack = (pack: PromptPack, status: string, lineage: Record<string, unknown>) =>
    writeTransaction(sql,
      sql`INSERT INTO packs ${sql.insert({
        version: pack.version,
        behavior: pack.behavior,
        body_json: JSON.stringify(encodePack(pack)),
        lineage_json: JSON.stringify(lineage),
        status,
        created_at: Date.now()
      })} ON CONFLICT (version) DO UPDATE SET status = excluded.status, body_json = excluded.body_json`
    ).pipe(Effect.mapError(storeError("record pack")))

  const setStatus = (version: string, status: string) =>
    sql`UPDATE packs SET status = ${status} WHERE version = ${version}`.pipe(Effect.mapError(storeError("update pack status")))

  const removeFile = (file: string) =>
    Effect.try({
      try: () => fs.rmSync(file, { force: true }),
      catch: (cause) => new FileError({ path: file, operation: "remove", detail: describeFsError(cause) })
    })

  const makePack = (behavior: Behavior, p: NewPack, version = newVersion()): PromptPack => ({
    name: packName(behavior),
    version,
    behavior,
    instructions: p.instructions,
    demos: [],
    ...(p.metric !== undefined ? { metric: p.metric } : {}),
    metadata: { generator: "autotune", lineage: p.lineage }
  })

  const history = (behavior?: Behavior) =>
    sql<{ behavior: string; version: string; action: string; detailJson: string; createdAt: number; status: string | null; lineageJson: string | null }>`
      SELECT d.behavior, d.version, d.action, d.detail_json AS "detailJson", d.created_at AS "createdAt", p.status, p.lineage_json AS "lineageJson"
      FROM deployments d LEFT JOIN packs p ON p.version = d.version
      ${behavior === undefined ? sql`` : sql`WHERE d.behavior = ${behavior}`}
      ORDER BY d.created_at DESC, d.id DESC LIMIT 200`.pipe(Effect.mapError(storeError("read pack history")))

  /** When the canary of this version went out: its deployment, or (placed by hand) the file's mtime. */
  const canaryStartedAt = (behavior: Behavior, version: string) =>
    Effect.gen(function* () {
      const rows = yield* sql<{ createdAt: number }>`
        SELECT MIN(created_at) AS "createdAt" FROM deployments WHERE behavior = ${behavior} AND version = ${version} AND action = 'canary'`.pipe(
        Effect.mapError(storeError("read deployments"))
      )
      const at = rows[0]?.createdAt
      if (typeof at === "number") return at
      try {
        return fs.statSync(canaryPath(config.outputDir, behavior)).mtimeMs
      } catch {
        return Date.now()
      }
    })

  /** The store's pack for a behavior in a role: the canary out, or the active pack the last activation chose. */
  const storedPack = (behavior: Behavior, role: "active" | "canary") =>
    Effect.gen(function* () {
      const rows = role === "canary"
        ? yield* sql<{ bodyJson: string }>`SELECT body_json AS "bodyJson" FROM packs WHERE behavior = ${behavior} AND status = 'canary' ORDER BY created_at DESC LIMIT 1`
        : yield* sql<{ bodyJson: string }>`
            SELECT p.body_json AS "bodyJson" FROM deployments d JOIN packs p ON p.version = d.version
            WHERE d.behavior = ${behavior} AND d.action IN ('baseline', 'deployed_active', 'promoted', 'restored') AND p.status = 'active'
            ORDER BY d.created_at DESC, d.id DESC LIMIT 1`
      return rows[0] === undefined ? undefined : Schema.decodeUnknownSync(PromptPack)(JSON.parse(rows[0].bodyJson))
    }).pipe(Effect.mapError(storeError("read the packs in the store")))

  return { writePack, record, savePack, setStatus, removeFile, makePack, history, canaryStartedAt, storedPack } as const
}

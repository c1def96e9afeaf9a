import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { Settings } from "../config/Config.js"
import { storeError, writeTransaction } from "../store/Db.js"
import type { Behavior } from "../Domain/Behavior.js"
import { FileError } from "../Domain/Errors.js"
import { activePath, canaryPath, PromptPack, readPack } from "../Domain/Pack.js"
import { describeFsError, writeFileAtomic } from "../store/Files.js"

/** A deployment that must not happen (a canary is out, nothing to roll back to, …). */
export class DeployRejected extends Schema.TaggedError<DeployRejected>()("DeployRejected", {
  behavior: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.behavior}: ${this.detail}`
  }
}

/** Unique and sortable: UTC time to the millisecond, then a random suffix. */
export const newVersion = (now = new Date()) =>
  `v${now.toISOString().replace(/[-:.]/g, "").slice(0, 18)}Z-${randomBytes(2).toString("hex")}`

export const packName = (behavior: Behavior) => `autotune-${behavior}`

const encodePack = Schema.encodeSync(PromptPack)

export interface NewPack {
  readonly instructions: string
  readonly lineage: Record<string, unknown>
  readonly metric?: { readonly name: string; readonly model: string; readonly score: number }
}

export class Deployer extends Effect.Service<Deployer>()("autotune/Deployer", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings

    /** Writes a pack after checking it against DotClaw's own rules, atomically. */
    const writePack = (file: string, behavior: Behavior, pack: PromptPack) =>
      Effect.gen(function* () {
        if (pack.behavior !== behavior) return yield* Effect.die(new Error(`pack for ${pack.behavior} written as ${behavior}`))
        const body = JSON.stringify(encodePack(pack), null, 2) + "\n"
        yield* writeFileAtomic(file, body, 0o644)
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

    /**
     * Ships a new pack as a canary at AUTOTUNE_CANARY_FRACTION (1 = straight to active). DotClaw serves a lone
     * canary to every request, so the baseline is written as the active pack first when there is none.
     */
    const deploy = Effect.fn("Deployer.deploy")(function* (
      behavior: Behavior,
      candidate: NewPack,
      baseline: { readonly instructions: string },
      version?: string,
      /** Share for this canary in percent; AUTOTUNE_CANARY_FRACTION x 100 when not given. */
      percent?: number
    ) {
      const canaryFile = canaryPath(config.outputDir, behavior)
      const activeFile = activePath(config.outputDir, behavior)
      const canary = yield* readPack(canaryFile, behavior)
      if (canary._tag === "Valid") {
        return yield* new DeployRejected({ behavior, detail: `canary ${canary.pack.version} is still out; the running experiment finishes first` })
      }
      const active = yield* readPack(activeFile, behavior)
      if (active._tag !== "Valid") {
        const base = makePack(behavior, { instructions: baseline.instructions, lineage: { source: "baseline" } })
        yield* writePack(activeFile, behavior, base)
        yield* savePack(base, "active", { source: "baseline" })
        yield* record(behavior, base.version, "baseline", { reason: active._tag === "Missing" ? "no active pack" : `active pack invalid: ${active.reason}` })
      }
      const pack = makePack(behavior, candidate, version)
      const share = percent ?? config.canaryFraction * 100
      if (share >= 100) {
        yield* writePack(activeFile, behavior, pack)
        yield* savePack(pack, "active", candidate.lineage)
        yield* record(behavior, pack.version, "deployed_active", { canaryFraction: 1 })
        return { version: pack.version, as: "active" as const }
      }
      const canaryPack: PromptPack = { ...pack, metadata: { ...pack.metadata, canaryPercent: Math.round(share * 100) / 100 } }
      yield* writePack(canaryFile, behavior, canaryPack)
      yield* savePack(canaryPack, "canary", candidate.lineage)
      yield* record(behavior, pack.version, "canary", { canaryPercent: canaryPack.metadata?.["canaryPercent"] })
      return { version: pack.version, as: "canary" as const }
    })

    /** The canary becomes the active pack (same version, so attribution continues) and the canary file goes. */
    const promote = Effect.fn("Deployer.promote")(function* (behavior: Behavior, why: Record<string, unknown>) {
      const canaryFile = canaryPath(config.outputDir, behavior)
      const canary = yield* readPack(canaryFile, behavior)
      if (canary._tag !== "Valid") return yield* new DeployRejected({ behavior, detail: "no valid canary to promote" })
      const previous = yield* readPack(activePath(config.outputDir, behavior), behavior)
      const { canaryPercent: _dropped, ...metadata } = canary.pack.metadata ?? {}
      const promoted: PromptPack = { ...canary.pack, metadata: { ...metadata, promotedAt: new Date().toISOString() } }
      yield* writePack(activePath(config.outputDir, behavior), behavior, promoted)
      yield* removeFile(canaryFile)
      yield* savePack(promoted, "active", {})
      if (previous._tag === "Valid") yield* setStatus(previous.pack.version, "retired")
      yield* record(behavior, promoted.version, "promoted", why)
      return promoted.version
    })

    /** Takes the canary down: rolled back (worse) or expired (inconclusive). The active pack stays. */
    const removeCanary = Effect.fn("Deployer.removeCanary")(function* (behavior: Behavior, action: "rolled_back" | "expired", why: Record<string, unknown>) {
      const canaryFile = canaryPath(config.outputDir, behavior)
      const canary = yield* readPack(canaryFile, behavior)
      yield* removeFile(canaryFile)
      const version = canary._tag === "Valid" ? canary.pack.version : "(invalid file)"
      if (canary._tag === "Valid") yield* setStatus(version, action)
      yield* record(behavior, version, action, why)
      return version
    })

    /** `autotune rollback`: remove the canary, or restore an earlier version as the active pack. */
    const rollback = Effect.fn("Deployer.rollback")(function* (behavior: Behavior, to?: string) {
      if (to === undefined) {
        const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
        if (canary._tag === "Missing") {
          return yield* new DeployRejected({ behavior, detail: "no canary is out; use --to VERSION to restore an earlier active pack (see `autotune packs`)" })
        }
        const version = yield* removeCanary(behavior, "rolled_back", { by: "user" })
        return { removedCanary: version }
      }
      const rows = yield* sql<{ bodyJson: string }>`SELECT body_json AS "bodyJson" FROM packs WHERE version = ${to} AND behavior = ${behavior}`.pipe(
        Effect.mapError(storeError("find pack"))
      )
      const row = rows[0]
      if (row === undefined) return yield* new DeployRejected({ behavior, detail: `no pack ${to} in the history (see \`autotune packs ${behavior}\`)` })
      const pack = Schema.decodeUnknownSync(PromptPack)(JSON.parse(row.bodyJson))
      const { canaryPercent: _dropped, ...metadata } = pack.metadata ?? {}
      const previous = yield* readPack(activePath(config.outputDir, behavior), behavior)
      yield* writePack(activePath(config.outputDir, behavior), behavior, { ...pack, metadata: { ...metadata, restoredAt: new Date().toISOString() } })
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag !== "Missing") yield* removeCanary(behavior, "rolled_back", { by: "user", restored: to })
      if (previous._tag === "Valid" && previous.pack.version !== to) yield* setStatus(previous.pack.version, "retired")
      yield* setStatus(to, "active")
      yield* record(behavior, to, "restored", { by: "user" })
      return { restored: to }
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

    /**
     * A fleet's hosts serve what the shared store says: each cycle every host writes the store's active and
     * canary packs into its own packs dir (atomically, only what changed) and removes a canary the store no
     * longer has. Returns what it changed.
     */
    const syncFromStore = Effect.fn("Deployer.syncFromStore")(function* () {
      const changed: Array<string> = []
      for (const behavior of config.behaviors) {
        for (const role of ["active", "canary"] as const) {
          const file = role === "active" ? activePath(config.outputDir, behavior) : canaryPath(config.outputDir, behavior)
          const [stored, onDisk] = [yield* storedPack(behavior, role), yield* readPack(file, behavior)]
          if (stored !== undefined && (onDisk._tag !== "Valid" || onDisk.pack.version !== stored.version)) {
            yield* writePack(file, behavior, stored)
            changed.push(`${behavior} ${role} ${stored.version}`)
          } else if (stored === undefined && role === "canary" && onDisk._tag !== "Missing") {
            yield* removeFile(file)
            changed.push(`${behavior} canary removed`)
          }
        }
      }
      return changed
    })

    return { deploy, promote, removeCanary, rollback, history, canaryStartedAt, syncFromStore } as const
  })
}) {}

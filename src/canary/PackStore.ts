/**
 * The packs a deployer works with: pack files written atomically after checking them against DotClaw's rules,
 * and the store's records of them (store/Packs.ts) bound to this store.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import * as fs from "node:fs"
import type { AppConfig } from "../config/Table.js"
import type { Behavior } from "../Domain/Behavior.js"
import { FileError } from "../Domain/Errors.js"
import { activePath, canaryPath, PromptPack, readPack } from "../Domain/Pack.js"
import { packShare } from "../Domain/Share.js"
import {
  canaryDeployedAt,
  deploymentHistory,
  type PackStatus,
  recordDeployment,
  savePack as savePackRow,
  setPackStatus,
  storedPack as storedPackOf
} from "../store/Packs.js"
import { describeFsError, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { storeError } from "../store/Db.js"
import { type NewPack, newVersion, packName } from "./Versions.js"

const encodePack = Schema.encodeSync(PromptPack)

export const makePackStore = ({ sql, config }: { readonly sql: SqlClient.SqlClient; readonly config: AppConfig }) => {
  /** Writes a pack after checking it against DotClaw's own rules, atomically. */
  const writePack = (file: string, behavior: Behavior, pack: PromptPack) =>
    Effect.gen(function* () {
      if (pack.behavior !== behavior)
        return yield* Effect.die(new Error(`pack for ${pack.behavior} written as ${behavior}`))
      const body = JSON.stringify(encodePack(pack), null, 2) + "\n"
      yield* writeFileAtomic(file, body, MODES.shared)
    })

  const record = (behavior: Behavior, version: string, action: string, detail: Record<string, unknown>) =>
    recordDeployment(sql, behavior, version, action, detail)

  const savePack = (pack: PromptPack, status: PackStatus, lineage: Record<string, unknown>) =>
    savePackRow(sql, pack, status, lineage)

  /** A canary's step on record with the pack's new body (what a fleet's hosts serve), in one transaction. */
  const recordStep = (behavior: Behavior, stepped: PromptPack, detail: Record<string, unknown>) =>
    sql
      .withTransaction(
        Effect.zipRight(record(behavior, stepped.version, "canary_step", detail), savePack(stepped, "canary", {}))
      )
      .pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError("record the canary's step")(e))))

  const setStatus = (version: string, status: PackStatus) => setPackStatus(sql, version, status)

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

  const history = (behavior?: Behavior) => deploymentHistory(sql, behavior)

  /** When the canary of this version went out: its deployment, or (placed by hand) the file's mtime. */
  const canaryStartedAt = (behavior: Behavior, version: string) =>
    Effect.flatMap(canaryDeployedAt(sql, behavior, version), (at) => {
      if (at !== undefined) return Effect.succeed(at)
      try {
        return Effect.succeed(fs.statSync(canaryPath(config.outputDir, behavior)).mtimeMs)
      } catch {
        return Clock.currentTimeMillis
      }
    })

  /** The store's pack for a behavior in a role: the canary out, or the active pack the last activation chose. */
  const storedPack = (behavior: Behavior, role: "active" | "canary") => storedPackOf(sql, behavior, role)

  /**
   * DotClaw serves a lone canary to every request, so before a canary goes out the baseline is written as the
   * active pack when there is no valid one.
   */
  const ensureActive = (behavior: Behavior, baseline: { readonly instructions: string }) =>
    Effect.gen(function* () {
      const activeFile = activePath(config.outputDir, behavior)
      const active = yield* readPack(activeFile, behavior)
      if (active._tag === "Valid") return
      const base = makePack(behavior, { instructions: baseline.instructions, lineage: { source: "baseline" } })
      yield* writePack(activeFile, behavior, base)
      yield* savePack(base, "active", { source: "baseline" })
      yield* record(behavior, base.version, "baseline", {
        reason: active._tag === "Missing" ? "no active pack" : `active pack invalid: ${active.reason}`
      })
    })

  /**
   * A fleet's hosts serve what the shared store says: each cycle every host writes the store's active and
   * canary packs into its own packs dir (atomically, only what changed) and removes a canary the store no
   * longer has. Returns what it changed.
   */
  const syncFromStore = (behaviors: ReadonlyArray<Behavior>) =>
    Effect.gen(function* () {
      const changed: Array<string> = []
      for (const behavior of behaviors) {
        for (const role of ["active", "canary"] as const) {
          const file =
            role === "active" ? activePath(config.outputDir, behavior) : canaryPath(config.outputDir, behavior)
          const [stored, onDisk] = [yield* storedPack(behavior, role), yield* readPack(file, behavior)]
          // A canary's share changes while it runs (canary/Ramp.ts): a host serves the share the store says.
          const share = (p: PromptPack) => packShare(p.metadata)
          if (
            stored !== undefined &&
            (onDisk._tag !== "Valid" || onDisk.pack.version !== stored.version || share(onDisk.pack) !== share(stored))
          ) {
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

  return {
    writePack,
    record,
    savePack,
    recordStep,
    setStatus,
    removeFile,
    makePack,
    history,
    canaryStartedAt,
    storedPack,
    ensureActive,
    syncFromStore
  } as const
}

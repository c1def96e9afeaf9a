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
import { canaryPath, PromptPack } from "../Domain/Pack.js"
import { canaryDeployedAt, deploymentHistory, type PackStatus, recordDeployment, savePack as savePackRow, setPackStatus, storedPack as storedPackOf } from "../store/Packs.js"
import { describeFsError, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { type NewPack, newVersion, packName } from "./Versions.js"

const encodePack = Schema.encodeSync(PromptPack)

export const makePackStore = ({ sql, config }: { readonly sql: SqlClient.SqlClient; readonly config: AppConfig }) => {
  /** Writes a pack after checking it against DotClaw's own rules, atomically. */
  const writePack = (file: string, behavior: Behavior, pack: PromptPack) =>
    Effect.gen(function* () {
      if (pack.behavior !== behavior) return yield* Effect.die(new Error(`pack for ${pack.behavior} written as ${behavior}`))
      const body = JSON.stringify(encodePack(pack), null, 2) + "\n"
      yield* writeFileAtomic(file, body, MODES.shared)
    })

  const record = (behavior: Behavior, version: string, action: string, detail: Record<string, unknown>) => recordDeployment(sql, behavior, version, action, detail)

  const savePack = (pack: PromptPack, status: PackStatus, lineage: Record<string, unknown>) => savePackRow(sql, pack, status, lineage)

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

  return { writePack, record, savePack, setStatus, removeFile, makePack, history, canaryStartedAt, storedPack } as const
}

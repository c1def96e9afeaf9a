/**
 * Writes packs as DotClaw reads them (docs/dotclaw-formats.md §2): a new pack as a canary for a share of
 * requests (or straight to active), promotion, roll-back and restore, and a fleet host's sync from the store.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, PromptPack, readPack } from "../Domain/Pack.js"
import { storeError } from "../store/Db.js"
import { packShare, type Share, toPercent, withoutShare, withShare } from "../Domain/Share.js"
import { makePackStore } from "./PackStore.js"
import { packOf } from "../store/Packs.js"
import type { NewPack } from "./Versions.js"

/** A deployment that must not happen (a canary is out, nothing to roll back to, …). */
export class DeployRejected extends Schema.TaggedError<DeployRejected>()("DeployRejected", {
  behavior: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.behavior}: ${this.detail}`
  }
}

export class Deployer extends Effect.Service<Deployer>()("autotune/Deployer", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const { writePack, record, savePack, setStatus, removeFile, makePack, history, canaryStartedAt, storedPack } = makePackStore({ sql, config })

    /**
     * Ships a new pack as a canary at AUTOTUNE_CANARY_FRACTION (1 = straight to active). DotClaw serves a lone
     * canary to every request, so the baseline is written as the active pack first when there is none.
     */
    const deploy = Effect.fn("Deployer.deploy")(function* (
      behavior: Behavior,
      candidate: NewPack,
      baseline: { readonly instructions: string },
      version?: string,
      /** Share of requests for this canary; AUTOTUNE_CANARY_FRACTION when not given. */
      share?: Share
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
      const canaryShare = share ?? config.canaryFraction
      if (toPercent(canaryShare) >= 100) {
        yield* writePack(activeFile, behavior, pack)
        yield* savePack(pack, "active", candidate.lineage)
        yield* record(behavior, pack.version, "deployed_active", { canaryFraction: 1 })
        return { version: pack.version, as: "active" as const }
      }
      const canaryPack: PromptPack = { ...pack, metadata: withShare(pack.metadata, canaryShare) }
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
      const promoted: PromptPack = { ...canary.pack, metadata: { ...withoutShare(canary.pack.metadata), promotedAt: new Date().toISOString() } }
      yield* writePack(activePath(config.outputDir, behavior), behavior, promoted)
      yield* removeFile(canaryFile)
      yield* savePack(promoted, "active", {})
      if (previous._tag === "Valid") yield* setStatus(previous.pack.version, "retired")
      yield* record(behavior, promoted.version, "promoted", why)
      return promoted.version
    })

    /**
     * Moves a live canary to a new share of requests: the store first (the step on record, the pack's body for a
     * fleet's hosts), then the file DotClaw reads on every request, atomically. A process stopped between the two
     * leaves the old share in a valid file, and the monitor's next look finishes the step (`why` absent).
     */
    const setShare = Effect.fn("Deployer.setShare")(function* (behavior: Behavior, canary: PromptPack, share: number, why?: { readonly reason: string; readonly figures?: unknown }) {
      const from = canary.metadata?.["canaryPercent"]
      const stepped: PromptPack = { ...canary, metadata: withShare(canary.metadata, share) }
      if (why !== undefined) {
        yield* sql.withTransaction(Effect.zipRight(
          record(behavior, canary.version, "canary_step", { from, to: toPercent(share), ...why }),
          savePack(stepped, "canary", {})
        )).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError("record the canary's step")(e))))
      }
      yield* writePack(canaryPath(config.outputDir, behavior), behavior, stepped)
      return stepped
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
      const pack = yield* packOf(sql, behavior, to)
      if (pack === undefined) return yield* new DeployRejected({ behavior, detail: `no pack ${to} in the history (see \`autotune packs ${behavior}\`)` })
      const previous = yield* readPack(activePath(config.outputDir, behavior), behavior)
      yield* writePack(activePath(config.outputDir, behavior), behavior, { ...pack, metadata: { ...withoutShare(pack.metadata), restoredAt: new Date().toISOString() } })
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag !== "Missing") yield* removeCanary(behavior, "rolled_back", { by: "user", restored: to })
      if (previous._tag === "Valid" && previous.pack.version !== to) yield* setStatus(previous.pack.version, "retired")
      yield* setStatus(to, "active")
      yield* record(behavior, to, "restored", { by: "user" })
      return { restored: to }
    })

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
          // A canary's share changes while it runs (canary/Ramp.ts): a host serves the share the store says.
          const share = (p: PromptPack) => packShare(p.metadata)
          if (stored !== undefined && (onDisk._tag !== "Valid" || onDisk.pack.version !== stored.version || share(onDisk.pack) !== share(stored))) {
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

    /** A selection the operator rejected (`autotune reject`): never shipped, kept on record with why. */
    const discard = Effect.fn("Deployer.discard")(function* (behavior: Behavior, version: string, why: Record<string, unknown>) {
      yield* setStatus(version, "rejected")
      yield* record(behavior, version, "rejected", why)
    })

    return { deploy, promote, setShare, removeCanary, rollback, discard, history, canaryStartedAt, syncFromStore } as const
  })
}) {}

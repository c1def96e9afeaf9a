/**
 * Writes packs as DotClaw reads them (docs/dotclaw-formats.md §2): a new pack as a canary for a share of
 * requests (or straight to active), promotion, roll-back and restore, and a fleet host's sync from the store.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, PromptPack, readPack } from "../Domain/Pack.js"
import { type Share, toPercent, withoutShare, withShare } from "../Domain/Share.js"
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

/** A pack as the active one: no canary share, stamped with when it became so. */
const asActive = (pack: PromptPack, stamp: "promotedAt" | "restoredAt") =>
  Effect.map(Clock.currentTimeMillis, (now): PromptPack => ({
    ...pack,
    metadata: { ...withoutShare(pack.metadata), [stamp]: new Date(now).toISOString() }
  }))

export class Deployer extends Effect.Service<Deployer>()("autotune/Deployer", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const packs = makePackStore({ sql, config })

    /** Ships a new pack as a canary at AUTOTUNE_CANARY_FRACTION (1 = straight to active), over the baseline as the active pack. */
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
        return yield* new DeployRejected({
          behavior,
          detail: `canary ${canary.pack.version} is still out; the running experiment finishes first`
        })
      }
      yield* packs.ensureActive(behavior, baseline)
      const pack = packs.makePack(behavior, candidate, version)
      const canaryShare = share ?? config.canaryFraction
      if (toPercent(canaryShare) >= 100) {
        yield* packs.writePack(activeFile, behavior, pack)
        yield* packs.savePack(pack, "active", candidate.lineage)
        yield* packs.record(behavior, pack.version, "deployed_active", { canaryFraction: 1 })
        return { version: pack.version, as: "active" as const }
      }
      const canaryPack: PromptPack = { ...pack, metadata: withShare(pack.metadata, canaryShare) }
      yield* packs.writePack(canaryFile, behavior, canaryPack)
      yield* packs.savePack(canaryPack, "canary", candidate.lineage)
      yield* packs.record(behavior, pack.version, "canary", { canaryPercent: canaryPack.metadata?.["canaryPercent"] })
      return { version: pack.version, as: "canary" as const }
    })

    /** The canary becomes the active pack (same version, so attribution continues) and the canary file goes. */
    const promote = Effect.fn("Deployer.promote")(function* (behavior: Behavior, why: Record<string, unknown>) {
      const canaryFile = canaryPath(config.outputDir, behavior)
      const canary = yield* readPack(canaryFile, behavior)
      if (canary._tag !== "Valid") return yield* new DeployRejected({ behavior, detail: "no valid canary to promote" })
      const previous = yield* readPack(activePath(config.outputDir, behavior), behavior)
      const promoted = yield* asActive(canary.pack, "promotedAt")
      yield* packs.writePack(activePath(config.outputDir, behavior), behavior, promoted)
      yield* packs.removeFile(canaryFile)
      yield* packs.savePack(promoted, "active", {})
      if (previous._tag === "Valid") yield* packs.setStatus(previous.pack.version, "retired")
      yield* packs.record(behavior, promoted.version, "promoted", why)
      return promoted.version
    })

    /**
     * Moves a live canary to a new share of requests: the store first (the step on record, the pack's body for a
     * fleet's hosts), then the file DotClaw reads on every request, atomically. A process stopped between the two
     * leaves the old share in a valid file, and the monitor's next look finishes the step (`why` absent).
     */
    const setShare = Effect.fn("Deployer.setShare")(function* (
      behavior: Behavior,
      canary: PromptPack,
      share: number,
      why?: { readonly reason: string; readonly figures?: unknown }
    ) {
      const from = canary.metadata?.["canaryPercent"]
      const stepped: PromptPack = { ...canary, metadata: withShare(canary.metadata, share) }
      if (why !== undefined) yield* packs.recordStep(behavior, stepped, { from, to: toPercent(share), ...why })
      yield* packs.writePack(canaryPath(config.outputDir, behavior), behavior, stepped)
      return stepped
    })

    /** Takes the canary down: rolled back (worse) or expired (inconclusive). The active pack stays. */
    const removeCanary = Effect.fn("Deployer.removeCanary")(function* (
      behavior: Behavior,
      action: "rolled_back" | "expired",
      why: Record<string, unknown>
    ) {
      const canaryFile = canaryPath(config.outputDir, behavior)
      const canary = yield* readPack(canaryFile, behavior)
      yield* packs.removeFile(canaryFile)
      const version = canary._tag === "Valid" ? canary.pack.version : "(invalid file)"
      if (canary._tag === "Valid") yield* packs.setStatus(version, action)
      yield* packs.record(behavior, version, action, why)
      return version
    })

    /** `autotune rollback`: remove the canary, or restore an earlier version as the active pack. */
    const rollback = Effect.fn("Deployer.rollback")(function* (behavior: Behavior, to?: string) {
      if (to === undefined) {
        const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
        if (canary._tag === "Missing") {
          return yield* new DeployRejected({
            behavior,
            detail: "no canary is out; use --to VERSION to restore an earlier active pack (see `autotune packs`)"
          })
        }
        const version = yield* removeCanary(behavior, "rolled_back", { by: "user" })
        return { removedCanary: version }
      }
      const pack = yield* packOf(sql, behavior, to)
      if (pack === undefined)
        return yield* new DeployRejected({
          behavior,
          detail: `no pack ${to} in the history (see \`autotune packs ${behavior}\`)`
        })
      const previous = yield* readPack(activePath(config.outputDir, behavior), behavior)
      yield* packs.writePack(activePath(config.outputDir, behavior), behavior, yield* asActive(pack, "restoredAt"))
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag !== "Missing") yield* removeCanary(behavior, "rolled_back", { by: "user", restored: to })
      if (previous._tag === "Valid" && previous.pack.version !== to)
        yield* packs.setStatus(previous.pack.version, "retired")
      yield* packs.setStatus(to, "active")
      yield* packs.record(behavior, to, "restored", { by: "user" })
      return { restored: to }
    })

    /** Each host of a fleet writes what the shared store says into its own packs dir (see PackStore.syncFromStore). */
    const syncFromStore = Effect.fn("Deployer.syncFromStore")(() => packs.syncFromStore(config.behaviors))

    /** A selection the operator rejected (`autotune reject`): never shipped, kept on record with why. */
    const discard = Effect.fn("Deployer.discard")(function* (
      behavior: Behavior,
      version: string,
      why: Record<string, unknown>
    ) {
      yield* packs.setStatus(version, "rejected")
      yield* packs.record(behavior, version, "rejected", why)
    })

    return {
      deploy,
      promote,
      setShare,
      removeCanary,
      rollback,
      discard,
      history: packs.history,
      canaryStartedAt: packs.canaryStartedAt,
      syncFromStore
    } as const
  })
}) {}

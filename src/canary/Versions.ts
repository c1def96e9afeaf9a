/** Names of what the deployer ships: a pack's version, its name, and what a new pack is made from. Pure. */
import { randomBytes } from "node:crypto"
import type { Behavior } from "../Domain/Behavior.js"

/** Unique and sortable: UTC time to the millisecond, then a random suffix. */
export const newVersion = (now = new Date()) =>
  `v${now.toISOString().replace(/[-:.]/g, "").slice(0, 18)}Z-${randomBytes(2).toString("hex")}`

export const packName = (behavior: Behavior) => `autotune-${behavior}`

export interface NewPack {
  readonly instructions: string
  readonly lineage: Record<string, unknown>
  readonly metric?: { readonly name: string; readonly model: string; readonly score: number }
}

/**
 * Packs as a person deciding on them reads them: the selection waiting for approval (its held-out gain, its
 * word diff against what serves now, the turns it gained most on), and any version's diff against the
 * instructions it replaced. For `autotune status`, `autotune packs --diff` and the report.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { DeployRejected } from "../canary/Deployer.js"
import type { Behavior } from "../Domain/Behavior.js"
import { DEFAULT_INSTRUCTIONS } from "../optimize/OptimizeRun.js"
import { packRecord, selectedPack } from "../store/Packs.js"
import { type DiffPart, wordDiff } from "./Diff.js"

export interface PendingPack {
  readonly version: string
  /** The held-out gain over the baseline under the judge, and its paired 95% lower bound. */
  readonly heldOutGain: number | null
  readonly lowerBound: number | null
  /** Word diff against what serves now (the active pack, else the baseline it was made from). */
  readonly diff: ReadonlyArray<DiffPart>
  /** Held-out turns it gained most on: the message (stored, redacted, clipped) and both scores. */
  readonly chosenOn: ReadonlyArray<{
    readonly traceId: string
    readonly message: string
    readonly baseline: number
    readonly winner: number
  }>
}

/** The behavior's selected pack, as a person deciding on it needs it. */
export const pendingPack = (behavior: Behavior, serving: string | null) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const selected = yield* selectedPack(sql, behavior)
    if (selected === undefined) return null
    const v = selected.lineage.validation
    return {
      version: selected.version,
      heldOutGain: v?.meanDiff ?? null,
      lowerBound: v?.lowerBound ?? null,
      diff: wordDiff(serving ?? selected.baselineInstructions, selected.instructions),
      chosenOn: selected.examples
    } satisfies PendingPack
  })

/**
 * `autotune packs --diff VERSION`: a version's word diff against the instructions it replaced: the baseline it
 * was made from (recorded with a selection, or named by its lineage), else the built-in instructions.
 */
export const packDiff = (version: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const row = yield* packRecord(sql, version)
    if (row === undefined)
      return yield* new DeployRejected({
        behavior: "-",
        detail: `no pack ${version} in the history (see \`autotune packs\`)`
      })
    const body = row.body
    const baselineVersion = row.baselineVersion
    const earlier = baselineVersion === undefined ? undefined : yield* packRecord(sql, baselineVersion)
    const against =
      body.baselineInstructions !== undefined
        ? {
            name: `its baseline${baselineVersion === undefined ? "" : ` ${baselineVersion}`}`,
            text: body.baselineInstructions
          }
        : earlier !== undefined
          ? { name: baselineVersion!, text: earlier.body.instructions }
          : { name: "the built-in instructions", text: DEFAULT_INSTRUCTIONS[row.behavior] }
    return {
      version,
      behavior: row.behavior,
      status: row.status,
      against: against.name,
      diff: wordDiff(against.text, body.instructions)
    }
  })

/**
 * Packs as a person deciding on them reads them: the selection waiting for approval (its held-out gain, its
 * word diff against what serves now, the turns it gained most on), and any version's diff against the
 * instructions it replaced. For `autotune status`, `autotune packs --diff` and the report.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { DeployRejected } from "../canary/Deployer.js"
import type { Behavior } from "../Domain/Behavior.js"
import { DEFAULT_INSTRUCTIONS } from "../optimize/Work.js"
import { storeError } from "../store/Db.js"
import { type DiffPart, wordDiff } from "./Diff.js"

export interface PendingPack {
  readonly version: string
  /** The held-out gain over the baseline under the judge, and its paired 95% lower bound. */
  readonly heldOutGain: number | null
  readonly lowerBound: number | null
  /** Word diff against what serves now (the active pack, else the baseline it was made from). */
  readonly diff: ReadonlyArray<DiffPart>
  /** Held-out turns it gained most on: the message (stored, redacted, clipped) and both scores. */
  readonly chosenOn: ReadonlyArray<{ readonly traceId: string; readonly message: string; readonly baseline: number; readonly winner: number }>
}

const SelectedBody = Schema.parseJson(
  Schema.Struct({
    instructions: Schema.String,
    baselineInstructions: Schema.String,
    lineage: Schema.Struct({ validation: Schema.optional(Schema.Struct({ meanDiff: Schema.optional(Schema.Number), lowerBound: Schema.optional(Schema.Number) })) }),
    examples: Schema.optionalWith(Schema.Array(Schema.Struct({ traceId: Schema.String, message: Schema.String, baseline: Schema.Number, winner: Schema.Number })), { default: () => [] })
  })
)

/** The behavior's selected pack, as a person deciding on it needs it. */
export const pendingPack = (behavior: Behavior, serving: string | null) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ version: string; bodyJson: string }>`
      SELECT version, body_json AS "bodyJson" FROM packs WHERE behavior = ${behavior} AND status = 'selected' ORDER BY created_at DESC LIMIT 1`.pipe(
      Effect.mapError(storeError("read the selected pack"))
    )
    const row = rows[0]
    if (row === undefined) return null
    const body = Schema.decodeUnknownOption(SelectedBody)(row.bodyJson)
    if (body._tag === "None") return null
    const v = body.value.lineage.validation
    return { version: row.version, heldOutGain: v?.meanDiff ?? null, lowerBound: v?.lowerBound ?? null, diff: wordDiff(serving ?? body.value.baselineInstructions, body.value.instructions), chosenOn: body.value.examples } satisfies PendingPack
  })

const PackBody = Schema.parseJson(Schema.Struct({ instructions: Schema.String, baselineInstructions: Schema.optional(Schema.String) }))
const Lineage = Schema.parseJson(Schema.Struct({ baselineVersion: Schema.optional(Schema.String) }))

/**
 * `autotune packs --diff VERSION`: a version's word diff against the instructions it replaced: the baseline it
 * was made from (recorded with a selection, or named by its lineage), else the built-in instructions.
 */
export const packDiff = (version: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const find = (v: string) =>
      sql<{ behavior: Behavior; status: string; bodyJson: string; lineageJson: string | null }>`
        SELECT behavior, status, body_json AS "bodyJson", lineage_json AS "lineageJson" FROM packs WHERE version = ${v}`.pipe(
        Effect.map((rows) => rows[0]),
        Effect.mapError(storeError("read the pack"))
      )
    const row = yield* find(version)
    if (row === undefined) return yield* new DeployRejected({ behavior: "-", detail: `no pack ${version} in the history (see \`autotune packs\`)` })
    const body = Schema.decodeUnknownSync(PackBody)(row.bodyJson)
    const baselineVersion = row.lineageJson === null ? undefined : Schema.decodeUnknownOption(Lineage)(row.lineageJson).pipe(Option.getOrUndefined)?.baselineVersion
    const earlier = baselineVersion === undefined ? undefined : yield* find(baselineVersion)
    const against =
      body.baselineInstructions !== undefined ? { name: `its baseline${baselineVersion === undefined ? "" : ` ${baselineVersion}`}`, text: body.baselineInstructions }
        : earlier !== undefined ? { name: baselineVersion!, text: Schema.decodeUnknownSync(PackBody)(earlier.bodyJson).instructions }
          : { name: "the built-in instructions", text: DEFAULT_INSTRUCTIONS[row.behavior] }
    return { version, behavior: row.behavior, status: row.status, against: against.name, diff: wordDiff(against.text, body.instructions) }
  })

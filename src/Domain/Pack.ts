/**
 * A prompt pack exactly as DotClaw's agent validates it (docs/dotclaw-formats.md §2). A file that does
 * not match, or whose `behavior` differs from its name, is silently ignored by the agent.
 */
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Behavior } from "./Behavior.js"

export const PromptPack = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  behavior: Schema.String,
  instructions: Schema.String,
  demos: Schema.optionalWith(Schema.Array(Schema.Struct({ input: Schema.String, output: Schema.Unknown })), {
    default: () => []
  }),
  metric: Schema.optional(Schema.Struct({ name: Schema.String, model: Schema.String, score: Schema.Number })),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})
export type PromptPack = typeof PromptPack.Type

/** DotClaw renders at most this many characters of a pack; longer instructions are cut mid-sentence. */
export const DOTCLAW_MAX_CHARS = 6000

export const activePath = (dir: string, behavior: Behavior) => path.join(dir, `${behavior}.json`)
export const canaryPath = (dir: string, behavior: Behavior) => path.join(dir, `${behavior}.canary.json`)

export type PackRead =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Valid"; readonly pack: PromptPack }

/** Reads a pack file and applies DotClaw's own rules to it. */
export const readPack = (file: string, behavior: Behavior): Effect.Effect<PackRead> =>
  Effect.sync((): PackRead => {
    let text: string
    try {
      text = fs.readFileSync(file, "utf8")
    } catch (error) {
      return (error as { code?: string }).code === "ENOENT"
        ? { _tag: "Missing" }
        : { _tag: "Invalid", reason: String(error) }
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return { _tag: "Invalid", reason: "not valid JSON" }
    }
    const decoded = Schema.decodeUnknownEither(PromptPack)(json)
    if (Either.isLeft(decoded))
      return { _tag: "Invalid", reason: decoded.left.message.split("\n")[0] ?? "does not match the pack shape" }
    if (decoded.right.behavior !== behavior)
      return { _tag: "Invalid", reason: `behavior is ${JSON.stringify(decoded.right.behavior)}, not ${behavior}` }
    return { _tag: "Valid", pack: decoded.right }
  })

/** The version a valid pack file carries, if any. */
export const packVersion = (file: string, behavior: Behavior) =>
  Effect.map(readPack(file, behavior), (read) => (read._tag === "Valid" ? read.pack.version : undefined))

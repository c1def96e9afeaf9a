/**
 * The six behaviors DotClaw loads prompt packs for.
 */
import { Schema } from "effect"

/** The six behaviors DotClaw loads prompt packs for; the names are file names in the prompts dir. */
export const BEHAVIORS = [
  "task-extraction",
  "response-quality",
  "tool-calling",
  "tool-outcome",
  "memory-policy",
  "memory-recall"
] as const

export const Behavior = Schema.Literal(...BEHAVIORS)
export type Behavior = typeof Behavior.Type

export const isBehavior = Schema.is(Behavior)

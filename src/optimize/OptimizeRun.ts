/**
 * What an optimizer run works on, pure: the built-in baseline instructions, the turns and candidates of a run,
 * its rounds and its outcome as recorded.
 */
import type { SqlClient } from "@effect/sql"
import type { AppConfig } from "../config/Table.js"
import type { Behavior } from "../Domain/Behavior.js"
import { MINIBATCH, paretoSize } from "../Domain/SearchShape.js"
import type { Judge } from "../judge/Judge.js"
import type { Rubric } from "../judge/Prompts.js"
import type { ScoredTurn } from "../store/Scores.js"
import type { LlmRunner } from "../llm/LlmRunner.js"
import type { SearchShape } from "./Plan.js"
import type { Scores, splitTurns } from "./Search.js"

/** What the optimizer's parts run on. */
export interface OptimizeDeps {
  readonly sql: SqlClient.SqlClient
  readonly runner: LlmRunner
  readonly judge: Judge
  readonly config: AppConfig
  /** The rubric of each behavior this run judges with: the optimizer reads the current version only. */
  readonly rubrics: Readonly<Record<Behavior, Rubric>>
}

/** How many turns and candidates a run's stages take, from the settings. */
export const searchShape = (config: AppConfig): SearchShape => ({
  heldOut: config.sampleSize,
  validation: paretoSize(config.sampleSize),
  minibatch: MINIBATCH,
  children: config.maxCandidates,
  rounds: config.optimizeRounds
})

/** Built-in instructions per behavior, the baseline when no active pack exists on disk. */
export const DEFAULT_INSTRUCTIONS: Readonly<Record<Behavior, string>> = {
  "task-extraction":
    "Before answering, identify exactly what the user is asking for in their last message, including constraints such as dates, amounts, names and formats, using earlier messages only as context. If the request is ambiguous, ask one short clarifying question.",
  "response-quality":
    "Answer directly and correctly. Lead with the answer, keep it as short as the question allows, and use plain language. Do not pad, repeat the question, or hedge without reason.",
  "tool-calling":
    "Call a tool only when the task needs information or an action you cannot provide yourself. Choose the most specific tool, pass precise arguments, and avoid repeated or redundant calls.",
  "tool-outcome":
    "Report tool results faithfully. If a tool fails, say so plainly, do not invent its output, and either retry sensibly or tell the user what you could not do.",
  "memory-policy":
    "Remember only durable facts and preferences that will help in later conversations. Never store secrets, credentials or needless sensitive details, and do not store trivia or duplicates.",
  "memory-recall":
    "Use recalled memories when they are relevant to the current request, apply them accurately, ignore irrelevant ones, and never invent memories."
}

/** One candidate's held-out figures against the baseline on the same turns, for the record and the report. */
export interface HeldOut extends Scores {
  readonly candidate: number
  readonly id?: string
  readonly meanDiff: number
  readonly lowerBound: number
}

/** What one round did: whom it improved, what it proposed, what beat the parent on the minibatch. */
export interface RoundRecord {
  readonly round: number
  readonly parent: string
  /** The second front member shown to reflection to be combined with the parent, if any. */
  readonly mergedWith?: string
  readonly proposed: number
  readonly linted: ReadonlyArray<string>
  /** Children that beat the parent on the minibatch, with their mean on the validation turns. */
  readonly accepted: ReadonlyArray<{ readonly id: string; readonly validationMean: number | null }>
  /** Whether an accepted child entered the Pareto front. */
  readonly gain: boolean
}

interface Search {
  readonly rounds: ReadonlyArray<RoundRecord>
  readonly stopped: string
}

/** What every finished run records: candidates kept and dropped by lint, calls, cost, egress redactions. */
interface RunFigures {
  readonly candidates: number
  readonly linted: ReadonlyArray<string>
  /** Candidates dropped per rule ("copied from conversation text", "addresses the judge", "duplicate", …). */
  readonly dropped: Readonly<Record<string, number>>
  readonly calls: number
  readonly costUsd: number | null
  readonly egressRedactions: number
}

export type OptimizeOutcome =
  | ({
      readonly outcome: "selected"
      readonly version: string
      readonly baseline: Scores
      readonly winner: Scores & {
        readonly id: string
        readonly round: number
        readonly meanDiff: number
        readonly lowerBound: number
        readonly rerankMeanDiff: number
      }
      readonly heldOut: ReadonlyArray<HeldOut>
    } & Search &
      RunFigures)
  | ({
      readonly outcome: "no_gain"
      readonly why: string
      readonly baseline: Scores
      readonly best?: Scores & { readonly meanDiff: number; readonly lowerBound: number }
      readonly heldOut?: ReadonlyArray<HeldOut>
    } & Search &
      RunFigures)
  | { readonly outcome: "skipped"; readonly why: string }
  /** This behavior's own fault (Domain/Errors.ts `isolated`): the other behaviors' runs went on. */
  | { readonly outcome: "failed"; readonly why: string }

/** A scored turn the optimizer learns from and replays (store/Scores.ts). */
export type Row = ScoredTurn

/** A candidate of one run: the baseline (round 0) or a child of a round, with its scores on the validation turns. */
export interface Candidate {
  readonly id: string
  readonly instructions: string
  readonly round: number
  readonly parents: ReadonlyArray<string>
  readonly validation: ReadonlyArray<number | null>
}

/** One replayed turn: the reply under a candidate and the judge's verdict on it. */
export interface Replayed {
  readonly reply: string
  readonly score: number | null
  readonly reason: string
}

/** The chain of first parents from the baseline to a candidate, e.g. ["built-in", "r1.2", "r2.1"]. */
export const ancestry = (pool: ReadonlyArray<Candidate>, id: string): ReadonlyArray<string> => {
  const c = pool.find((p) => p.id === id)
  return c === undefined || c.parents.length === 0 ? [id] : [...ancestry(pool, c.parents[0]!), id]
}

/** What a stored turn says that a model of the run may be shown: message, reply, tool calls, the judge's reason. */
export const conversationTexts = (r: Row): ReadonlyArray<string> => [
  r.messageText,
  r.outputText,
  r.reason,
  JSON.stringify(r.toolCalls),
  r.memorySummary ?? ""
]

/** A run's three disjoint sets of turns: held-out, validation and feedback. */
export type Sets = ReturnType<typeof splitTurns<Row>>

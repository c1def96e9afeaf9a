/**
 * What one judge run works on and what came of it, pure: the turns selected (rows, tasks, groups of one
 * request each), how an answer is read into verdicts, the run's outcomes and their summary per behavior.
 */
import type { SqlClient } from "@effect/sql"
import { Either, Schema } from "effect"
import { createHash } from "node:crypto"
import type { AppConfig } from "../config/Table.js"
import type { Behavior } from "../Domain/Behavior.js"
import type { LlmError, LlmResponse } from "../Domain/Llm.js"
import type { LlmRunner, usageOf } from "../llm/LlmRunner.js"
import type { Escalation } from "./Escalation.js"
import { type Rubric, ScoreAnswer } from "./Prompts.js"
import type { Need, QueuedTurn } from "../store/Traces.js"

/** What the judge's parts run on: the store, the LLM runner and the settings. */
export interface JudgeDeps {
  readonly sql: SqlClient.SqlClient
  readonly runner: LlmRunner
  readonly config: AppConfig
  /** The rubric of each behavior this run judges with (judge/RubricBook.ts): one version per run. */
  readonly rubrics: Readonly<Record<Behavior, Rubric>>
}

/** A judge verdict. An answer we could not read is "unscored" with the reason: never a score of 0. */
export type Verdict =
  | { readonly status: "scored"; readonly score: number; readonly reason: string }
  | { readonly status: "unscored"; readonly reason: string }

/** How this run chose what to judge: the trend sample's share of turns and the share of active turns paired with a canary. */
export interface Sampling {
  readonly trendRate: number
  readonly pairRate: number
  /** Turns of the trend window (the last 14 days; all stored turns when every turn is judged). */
  readonly windowTurns: number
}

export interface BehaviorEval {
  readonly scored: number
  readonly unscored: number
  /** Calls that failed (provider down, budget spent): nothing is stored, the trace is tried next run. */
  readonly failed: number
  readonly mean: number | null
  readonly canaryTraces: number
  /** Judged because the canary test pairs them with canary turns, and for the daily trend. */
  readonly pairTraces: number
  readonly trendTraces: number
  /** Turns users reacted to or a person graded, judged beyond the sample. */
  readonly humanTraces: number
  readonly sampling: Sampling
  /** Turns sent in this run's batch: their scores arrive when a later run collects it. */
  readonly batched?: number
  readonly stage2: number
  readonly stage2Share: number
  /** Stage-1 score levels whose stage-2 rule comes from the store's own pairs (the rest follow the unsure band). */
  readonly stage2Levels?: Escalation["calibrated"]
  /** Turns selected this run whose text addressed the evaluator ("note to the grader: …"): masked before judging. */
  readonly addressedMasked?: number
  /** Mean |stage 1 - stage 2| over the traces both scored: judge drift shows here. */
  readonly stageDisagreement: number | null
  readonly calls: number
  readonly tokensIn: number
  readonly tokensOut: number
  /** Null when a model without a known price was used. */
  readonly costUsd: number | null
}

export interface EvalSummary {
  readonly behaviors: Record<string, BehaviorEval>
  /** Behaviors whose turns could not be chosen this run, and why (their own fault; the others were judged). */
  readonly faults: Record<string, string>
  readonly calls: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number | null
  /** Values the egress guard replaced in judge requests before they were sent. */
  readonly egressRedactions: number
  readonly budgetExhausted: boolean
  /** Per behavior: traces left unjudged because a budget ran out (they are judged in a later run). */
  readonly skippedForBudget: Record<string, number>
  /** Per model: structured answers asked for, how many could not be used, and that share. */
  readonly unparseable: Record<
    string,
    { readonly structured: number; readonly unparsed: number; readonly share: number }
  >
  /** The batch interface: turns sent this run, answers collected from earlier batches, batches still out. */
  readonly batches: {
    readonly mode: "off" | "trend"
    readonly submitted: number
    readonly collected: number
    readonly pendingBatches: number
    /**
     * Trend turns judged at once, at full price, instead of in the batch: what a behavior still lacked for the
     * optimizer's first run, so that a new install sees a result in its first cycle. Their cost is included.
     */
    readonly startedDirect: number
    readonly startedDirectCostUsd: number | null
  }
}

/**
 * The trend groups to judge at once rather than batch: for each behavior that lacks `short` scored turns for
 * the optimizer's first run, its first trend groups until the lack (and a tenth more, for answers that come
 * back unscored) is covered. Pure; the groups are in priority order.
 */
export const groupsToStart = <
  G extends {
    readonly need: string
    readonly tasks: ReadonlyArray<{ readonly rubric: { readonly behavior: Behavior } }>
  }
>(
  groups: ReadonlyArray<G>,
  short: ReadonlyMap<Behavior, number>
): Set<G> => {
  const left = new Map([...short].filter(([, n]) => n > 0).map(([b, n]) => [b, n + Math.ceil(n / 10)]))
  const picked = new Set<G>()
  for (const group of groups) {
    if (left.size === 0) break
    if (group.need !== "trend" || !group.tasks.some((t) => left.has(t.rubric.behavior))) continue
    picked.add(group)
    for (const { rubric } of group.tasks) {
      const n = (left.get(rubric.behavior) ?? 0) - 1
      if (n > 0) left.set(rubric.behavior, n)
      else left.delete(rubric.behavior)
    }
  }
  return picked
}

/**
 * Why a turn is judged, in the order a budget spends on them. "human": a turn a user reacted to or a person
 * graded; few, and what the judge is measured and aligned against (align/), so judged whatever the sample.
 */
export type { Need } from "../store/Traces.js"
export const NEED_ORDER: Record<Need, number> = { canary: 0, pair: 1, human: 2, trend: 3 }

/**
 * The ledger's name for a judge call: behavior (or "combined"), stage 1 or 2, and why the turn was judged, so
 * that what the canary, its pairs, the trend sample and people's reactions each cost can be told apart.
 */
export const judgeStage = (behavior: Behavior | "combined", level: 1 | 2, need: Need) =>
  `judge:${behavior}:${level}:${need}`

/** A turn chosen for the judge (store/Traces.ts). */
export type Row = QueuedTurn

const decodeAnswer = Schema.decodeUnknownEither(ScoreAnswer)

export type Outcome =
  | {
      readonly kind: "scored"
      readonly score: number
      readonly stage2: boolean
      readonly gap: number | null
      readonly canary: boolean
      readonly need: Need
    }
  | { readonly kind: "unscored"; readonly canary: boolean; readonly need: Need }
  | { readonly kind: "failed"; readonly error: LlmError; readonly canary: boolean; readonly need: Need }

/** Each behavior's outcomes of a run, as they come in. */
export class Outcomes {
  private readonly byBehavior = new Map<Behavior, Array<Outcome>>()
  add(behavior: Behavior, outcome: Outcome) {
    const list = this.byBehavior.get(behavior) ?? []
    list.push(outcome)
    this.byBehavior.set(behavior, list)
  }
  addAll(results: ReadonlyArray<{ readonly behavior: Behavior; readonly outcome: Outcome }>) {
    for (const r of results) this.add(r.behavior, r.outcome)
  }
  of(behavior: Behavior): ReadonlyArray<Outcome> {
    return this.byBehavior.get(behavior) ?? []
  }
  /** Per behavior, the turns left unjudged because a budget ran out. */
  skippedForBudget(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [b, list] of this.byBehavior) {
      const n = list.filter((o) => o.kind === "failed" && o.error.reason === "BudgetExhausted").length
      if (n > 0) out[b] = n
    }
    return out
  }
}

/** One rubric to judge on one turn, with its stage-2 rule. */
export interface Task {
  readonly rubric: Rubric
  readonly row: Row
  readonly escalate: Escalation
}

/** What one stage-1 request judges: one turn, and one rubric or (combined) every rubric selected for it. */
export interface Group {
  readonly tasks: ReadonlyArray<Task>
  readonly need: Need
}

/** Tasks (in priority order) as requests: each alone, or per turn when combined, placed at its most needed task. */
export const groupTasks = <T extends { readonly row: { readonly traceId: string; readonly need: Need } }>(
  tasks: ReadonlyArray<T>,
  combined: boolean
) => {
  if (!combined) return tasks.map((t) => ({ tasks: [t], need: t.row.need }))
  const groups = new Map<string, { tasks: Array<T>; need: Need }>()
  for (const t of tasks) {
    const g = groups.get(t.row.traceId)
    if (g === undefined) groups.set(t.row.traceId, { tasks: [t], need: t.row.need })
    else g.tasks.push(t)
  }
  return [...groups.values()]
}

/**
 * The verdict of each rubric in one answer: the answer itself for a single rubric, the rubric's property of
 * a combined answer. A rubric that cannot be read is unscored with the reason, never a score.
 */
export const readAnswer = (behaviors: ReadonlyArray<Behavior>, response: LlmResponse): Array<Verdict> =>
  behaviors.map((behavior) => {
    const value =
      behaviors.length === 1
        ? response.structured
        : (response.structured as Record<string, unknown> | undefined)?.[behavior]
    const decoded = decodeAnswer(value)
    if (Either.isRight(decoded))
      return { status: "scored", score: decoded.right.score, reason: decoded.right.reason.slice(0, 500) }
    const reason =
      response.structured === undefined
        ? `no structured answer in: ${response.text.slice(0, 120)}`
        : `answer out of schema${behaviors.length === 1 ? "" : ` for ${behavior}`}: ${JSON.stringify(value ?? null).slice(0, 120)}`
    return { status: "unscored", reason }
  })

/** A fixed pseudo-random draw per (trace, behavior): the same traces are audited whenever eval runs. */
export const auditDraw = (traceId: string, behavior: string) =>
  parseInt(createHash("sha256").update(`${behavior}\n${traceId}`).digest("hex").slice(0, 8), 16) / 0xffffffff

export const summarize = (
  outcomes: ReadonlyArray<Outcome>,
  usage: ReturnType<typeof usageOf>,
  sampling: Sampling
): BehaviorEval => {
  const scored = outcomes.flatMap((o) => (o.kind === "scored" ? [o] : []))
  const gaps = scored.flatMap((o) => (o.gap === null ? [] : [o.gap]))
  const stage2 = scored.filter((o) => o.stage2).length
  const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length)
  return {
    scored: scored.length,
    unscored: outcomes.filter((o) => o.kind === "unscored").length,
    failed: outcomes.filter((o) => o.kind === "failed").length,
    mean: mean(scored.map((o) => o.score)),
    canaryTraces: outcomes.filter((o) => o.canary).length,
    pairTraces: outcomes.filter((o) => o.need === "pair").length,
    trendTraces: outcomes.filter((o) => o.need === "trend").length,
    humanTraces: outcomes.filter((o) => o.need === "human").length,
    sampling,
    stage2,
    stage2Share: scored.length === 0 ? 0 : stage2 / scored.length,
    stageDisagreement: mean(gaps),
    calls: usage.calls,
    tokensIn: usage.tokensIn,
    tokensOut: usage.tokensOut,
    costUsd: usage.costUsd
  }
}

import { SqlClient } from "@effect/sql"
import { Duration, Effect, Either, Schema } from "effect"
import { createHash } from "node:crypto"
import { Settings } from "../Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { LlmError, type LlmRequest, type LlmResponse } from "../Domain/Llm.js"
import type { StoreError } from "../Domain/Errors.js"
import { activePath, canaryPath, packVersion, readPack } from "../Domain/Pack.js"
import { servedVersions, storeError, writeTransaction } from "../store/Db.js"
import { upsert } from "../store/Dialect.js"
import { LlmRunner, usageOf } from "../llm/LlmRunner.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { type Escalation, escalation, type LevelPairs } from "./Escalation.js"
import { turnsNeeded } from "./OptimizeSearch.js"
import { canaryShare, pairRate, trendRate } from "./Sampling.js"
import { combinedPrompt, combinedTool, JUDGE_COLUMNS, type JudgeRow, type JudgeTrace, judgePrompt, judgeTraceOf, type Rubric, RUBRICS, SCORE_TOOL, ScoreAnswer } from "./Rubrics.js"

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
  readonly sampling: Sampling
  /** Turns sent in this run's batch: their scores arrive when a later run collects it. */
  readonly batched?: number
  readonly stage2: number
  readonly stage2Share: number
  /** Stage-1 score levels whose stage-2 rule comes from the store's own pairs (the rest follow the unsure band). */
  readonly stage2Levels?: Escalation["calibrated"]
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
  readonly unparseable: Record<string, { readonly structured: number; readonly unparsed: number; readonly share: number }>
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
export const groupsToStart = <G extends { readonly need: string; readonly tasks: ReadonlyArray<{ readonly rubric: { readonly behavior: Behavior } }> }>(
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

/** Why a turn is judged, in the order a budget spends on them. */
type Need = "canary" | "pair" | "trend"
const NEED_ORDER: Record<Need, number> = { canary: 0, pair: 1, trend: 2 }

/** The trend sample is drawn from the last two weeks of turns (DotClaw keeps raw traces 14 days). */
const TREND_WINDOW_DAYS = 14
/** As CanaryStats pairs a canary turn with active turns of the six hours before it. */
const PAIR_LEAD_MS = 6 * 3_600_000

interface Row extends JudgeRow {
  readonly need: Need
  readonly isCanary: number
  readonly turnAt: number
  /** The pack version that served this behavior for the turn, if any: the report's trend per version. */
  readonly packVersion: string | null
}

const decodeAnswer = Schema.decodeUnknownEither(ScoreAnswer)

type Outcome =
  | { readonly kind: "scored"; readonly score: number; readonly stage2: boolean; readonly gap: number | null; readonly canary: boolean; readonly need: Need }
  | { readonly kind: "unscored"; readonly canary: boolean; readonly need: Need }
  | { readonly kind: "failed"; readonly error: LlmError; readonly canary: boolean; readonly need: Need }

/** Each behavior's outcomes of a run, as they come in. */
class Outcomes {
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
interface Task {
  readonly rubric: Rubric
  readonly row: Row
  readonly escalate: Escalation
}

/** What one stage-1 request judges: one turn, and one rubric or (combined) every rubric selected for it. */
interface Group {
  readonly tasks: ReadonlyArray<Task>
  readonly need: Need
}

/** Tasks (in priority order) as requests: each alone, or per turn when combined, placed at its most needed task. */
export const groupTasks = <T extends { readonly row: { readonly traceId: string; readonly need: Need } }>(tasks: ReadonlyArray<T>, combined: boolean) => {
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
    const value = behaviors.length === 1 ? response.structured : (response.structured as Record<string, unknown> | undefined)?.[behavior]
    const decoded = decodeAnswer(value)
    if (Either.isRight(decoded)) return { status: "scored", score: decoded.right.score, reason: decoded.right.reason.slice(0, 500) }
    const reason = response.structured === undefined
      ? `no structured answer in: ${response.text.slice(0, 120)}`
      : `answer out of schema${behaviors.length === 1 ? "" : ` for ${behavior}`}: ${JSON.stringify(value ?? null).slice(0, 120)}`
    return { status: "unscored", reason }
  })

/** A fixed pseudo-random draw per (trace, behavior): the same traces are audited whenever eval runs. */
const auditDraw = (traceId: string, behavior: string) =>
  parseInt(createHash("sha256").update(`${behavior}\n${traceId}`).digest("hex").slice(0, 8), 16) / 0xffffffff

export class Judge extends Effect.Service<Judge>()("autotune/Judge", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const { config } = yield* Settings

    /** One judge call with its one retry for an unreadable answer. LLM failures stay failures. */
    const verdict = Effect.fn("Judge.verdict")(function* (rubric: Rubric, trace: JudgeTrace, model: string, stage: string, attempts = 2) {
      let last: Verdict = { status: "unscored", reason: "no answer" }
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const prompt = judgePrompt(rubric, trace)
        const response = yield* runner.call({
          stage,
          model,
          system: prompt.system,
          messages: [{ role: "user", content: prompt.user }],
          maxTokens: config.judgeMaxOutputTokens,
          temperature: config.judgeTemperature,
          output: SCORE_TOOL
        })
        last = readAnswer([rubric.behavior], response)[0]!
        if (last.status === "scored") return last
      }
      return last
    })

    const notJudged = (rubric: Rubric) => sql`t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}
      AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${rubric.behavior}
                      AND j.rubric_version = ${rubric.version} AND j.stage = 1 AND j.model = ${config.judgeStage1Model})
      AND NOT EXISTS (SELECT 1 FROM judge_batch_items b WHERE b.trace_id = t.trace_id AND b.behavior = ${rubric.behavior})`

    /**
     * The turns one pack version served for the behavior since `since`, oldest first, as judge rows: the canary
     * test bets on its pairs in time order up to the first one not judged yet, so a judge that falls behind
     * must catch up from the oldest, or the test would wait on it for good.
     */
    const servedBy = (rubric: Rubric, version: string, since: number, draw: number, need: Need) =>
      sql<Row>`
        SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt", ${sql.literal(need === "canary" ? "1" : "0")} AS "isCanary", p.version AS "packVersion", ${need} AS need
        FROM trace_packs p JOIN traces t ON t.trace_id = p.trace_id
        WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${version} AND p.created_at >= ${since} AND t.sample_draw < ${draw} AND ${notJudged(rubric)}
        ORDER BY p.created_at LIMIT ${config.evalMaxTraces}`

    /** The trend sample: turns of the window whose fixed draw falls under the rate, read from the time index. */
    const trendSample = (rubric: Rubric, since: number, rate: number, canary: string | undefined, versions: ReadonlyArray<string>) =>
      sql<Row>`
        SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt",
               CASE WHEN EXISTS (SELECT 1 FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${canary ?? "\u0001none"}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id) THEN 1 ELSE 0 END AS "isCanary",
               (SELECT p.version FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version IN ${sql.in(versions.length === 0 ? ["\u0001none"] : versions)}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id LIMIT 1) AS "packVersion", 'trend' AS need
        FROM traces t
        WHERE t.created_at >= ${since} AND t.sample_draw < ${rate} AND ${notJudged(rubric)}
        ORDER BY t.created_at DESC
        LIMIT ${config.evalMaxTraces}`

    /** The stage-2 rule for a behavior, from its stage-1/stage-2 pairs of the last 30 days of turns. */
    const escalationFor = (rubric: Rubric, now: number) =>
      sql<LevelPairs>`
        SELECT ROUND(stage1_score * 4) / 4.0 AS level, COUNT(*) AS n, SUM(CASE WHEN ABS(stage1_score - stage2_score) >= 0.2499 THEN 1 ELSE 0 END) AS flips
        FROM trace_scores WHERE behavior = ${rubric.behavior} AND rubric_version = ${rubric.version} AND turn_at >= ${now - 30 * 86_400_000}
          AND stage1_score IS NOT NULL AND stage2_score IS NOT NULL
        GROUP BY 1`.pipe(
        Effect.map((pairs) => escalation(pairs, { low: config.judgeUnsureLow, high: config.judgeUnsureHigh })),
        Effect.mapError(storeError("read the judges' agreement"))
      )

    /**
     * What this behavior's decisions need judged, most needed first, at most AUTOTUNE_EVAL_MAX_TRACES: every
     * canary turn, about AUTOTUNE_JUDGE_CANARY_PAIRS active turns beside each, then the daily trend sample.
     */
    const selectTraces = Effect.fn("Judge.selectTraces")(function* (rubric: Rubric) {
      const behavior = rubric.behavior
      const canaryRead = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      const canary = canaryRead._tag === "Valid" ? canaryRead.pack : undefined
      const active = yield* packVersion(activePath(config.outputDir, behavior), behavior)
      const versions = yield* servedVersions(sql, behavior)
      // The window ends at the newest stored turn, not now: a store read from old files samples its last weeks.
      const newest = (yield* sql<{ at: number | null }>`SELECT MAX(created_at) AS at FROM traces`)[0]?.at ?? 0
      const windowStart = config.judgeDailySample === 0 ? 0 : newest - TREND_WINDOW_DAYS * 86_400_000
      // The turns this rubric could judge at all, so a rubric that applies to some turns still gets its sample size.
      const volume = yield* sql<{ n: number; first: number | null }>`
        SELECT COUNT(*) AS n, MIN(t.created_at) AS first FROM traces t
        WHERE t.created_at >= ${windowStart} AND t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}`
      const days = volume[0]?.first == null ? 1 : (newest - volume[0].first) / 86_400_000
      const rate = trendRate(config.judgeDailySample, Number(volume[0]?.n ?? 0), days)
      const pairs = pairRate(config.judgeCanaryPairs, canaryShare(canary?.metadata, config.canaryFraction))
      const canaryRows = canary === undefined ? [] : yield* servedBy(rubric, canary.version, 0, 1, "canary")
      let pairRows: ReadonlyArray<Row> = []
      if (canary !== undefined && active !== undefined) {
        const started = yield* sql<{ at: number | null }>`
          SELECT MIN(created_at) AS at FROM trace_packs WHERE behavior IN (${behavior}, '*') AND version = ${canary.version}`
        // Active turns from a little before the canary's first turn: its first turns' partners (CanaryStats).
        if (started[0]?.at != null) pairRows = yield* servedBy(rubric, active, started[0].at - PAIR_LEAD_MS, pairs, "pair")
      }
      const trendRows = yield* trendSample(rubric, windowStart, rate, canary?.version, versions)
      const seen = new Set<string>()
      const rows = [...canaryRows, ...pairRows, ...trendRows].filter((r) => !seen.has(r.traceId) && seen.add(r.traceId)).slice(0, config.evalMaxTraces)
      return { rows, sampling: { trendRate: rate, pairRate: pairs, windowTurns: Number(volume[0]?.n ?? 0) } }
    }, (effect) => Effect.catchTag(effect, "SqlError", (e) => Effect.fail(storeError("select traces to judge")(e))))

    const store = (rubric: Rubric, turn: Row, first: Verdict, second: Verdict | undefined) =>
      writeTransaction(sql,
        Effect.gen(function* () {
          const now = Date.now()
          const row = (stage: number, model: string, v: Verdict) => ({
            trace_id: turn.traceId,
            behavior: rubric.behavior,
            rubric_version: rubric.version,
            stage,
            model,
            status: v.status,
            score: v.status === "scored" ? v.score : null,
            // A judge can quote the trace back: its reason is cleaned like trace text.
            reason: redactIf(config.redact, v.reason),
            created_at: now,
            redaction_version: storedVersion(config.redact)
          })
          const rows = [row(1, config.judgeStage1Model, first), ...(second === undefined ? [] : [row(2, config.judgeStage2Model, second)])]
          yield* upsert(sql, "judge_scores", rows, ["trace_id", "behavior", "rubric_version", "stage", "model"])
          const final = second?.status === "scored" ? second : first.status === "scored" ? first : undefined
          if (final !== undefined && final.status === "scored") {
            yield* upsert(sql, "trace_scores", {
              trace_id: turn.traceId,
              behavior: rubric.behavior,
              rubric_version: rubric.version,
              turn_at: turn.turnAt,
              pack_version: turn.packVersion,
              score: final.score,
              stage1_score: first.status === "scored" ? first.score : null,
              stage2_score: second?.status === "scored" ? second.score : null,
              reason: redactIf(config.redact, final.reason),
              created_at: now,
              redaction_version: storedVersion(config.redact)
            }, ["trace_id", "behavior", "rubric_version"])
          }
        })
      ).pipe(Effect.mapError(storeError("store judge scores")))

    const stage1Request = (group: Group): LlmRequest => {
      const trace = judgeTraceOf(group.tasks[0]!.row)
      const rubrics = group.tasks.map((t) => t.rubric)
      const single = rubrics.length === 1
      const prompt = single ? judgePrompt(rubrics[0]!, trace) : combinedPrompt(rubrics, trace)
      return {
        stage: single ? `judge:${rubrics[0]!.behavior}:1` : "judge:combined:1",
        model: config.judgeStage1Model,
        system: prompt.system,
        messages: [{ role: "user", content: prompt.user }],
        maxTokens: config.judgeMaxOutputTokens * rubrics.length,
        temperature: config.judgeTemperature,
        output: single ? SCORE_TOOL : combinedTool(rubrics)
      }
    }

    /**
     * Stage 1's verdicts from one answer, per rubric. A rubric that cannot be read from it gets one request of
     * its own (for a single rubric, the one retry it always had); still unreadable, it is unscored, and the
     * other rubrics of the answer keep their scores.
     */
    const stage1Verdicts = (group: Group, response: LlmResponse) =>
      Effect.forEach(readAnswer(group.tasks.map((t) => t.rubric.behavior), response), (read, i): Effect.Effect<Verdict | LlmError, StoreError> => {
        if (read.status === "scored") return Effect.succeed(read)
        const rubric = group.tasks[i]!.rubric
        return verdict(rubric, judgeTraceOf(group.tasks[i]!.row), config.judgeStage1Model, `judge:${rubric.behavior}:1`, 1).pipe(
          Effect.catchTag("LlmError", (error) => Effect.succeed(error))
        )
      })

    /** Stage 2 when stage 1 was unsure (or audited), then the store: the task's outcome. */
    const finish = (task: Task, first: Verdict | LlmError) =>
      Effect.gen(function* () {
        const { rubric, row } = task
        if (first instanceof LlmError) return { kind: "failed", error: first, canary: row.isCanary === 1, need: row.need } satisfies Outcome as Outcome
        const trace = judgeTraceOf(row)
        const canary = row.isCanary === 1
        const unsure = first.status === "scored" && task.escalate.escalate(first.score)
        const audited = first.status === "scored" && auditDraw(trace.traceId, rubric.behavior) < config.judgeAuditShare
        // A stage-2 failure leaves the stage-1 verdict standing; it is not worth losing the paid-for score.
        const second = unsure || audited
          ? yield* verdict(rubric, trace, config.judgeStage2Model, `judge:${rubric.behavior}:2`).pipe(Effect.option)
          : undefined
        const secondVerdict = second?._tag === "Some" ? second.value : undefined
        yield* store(rubric, row, first, secondVerdict)
        const final = secondVerdict?.status === "scored" ? secondVerdict : first
        const need = row.need
        if (final.status !== "scored") return { kind: "unscored", canary, need } satisfies Outcome as Outcome
        const gap = first.status === "scored" && secondVerdict?.status === "scored" ? Math.abs(first.score - secondVerdict.score) : null
        return { kind: "scored", score: final.score, stage2: secondVerdict !== undefined, gap, canary, need } satisfies Outcome as Outcome
      })

    const failedAll = (group: Group, error: LlmError) =>
      group.tasks.map((t) => ({ behavior: t.rubric.behavior, outcome: { kind: "failed", error, canary: t.row.isCanary === 1, need: t.row.need } satisfies Outcome as Outcome }))

    /** Judges one group now: one stage-1 request for its rubrics, then each rubric on its own. */
    const judgeGroup = (group: Group) =>
      runner.call(stage1Request(group)).pipe(
        Effect.flatMap((response) => stage1Verdicts(group, response)),
        Effect.flatMap((firsts) => Effect.forEach(group.tasks, (task, i) => Effect.map(finish(task, firsts[i]!), (outcome) => ({ behavior: task.rubric.behavior, outcome })))),
        Effect.catchTag("LlmError", (error) => Effect.succeed(failedAll(group, error)))
      )

    const summarize = (outcomes: ReadonlyArray<Outcome>, usage: ReturnType<typeof usageOf>, sampling: Sampling): BehaviorEval => {
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

    const BATCH_STAGE = "judge:batch"

    /**
     * Sends the groups (trend samples, in priority order) as one batch and remembers which turns each request
     * stands for, so they are not selected again while it is pending. Returns how many went and how many the
     * budget left for a later run.
     */
    const submitGroups = Effect.fn("Judge.submitGroups")(function* (groups: ReadonlyArray<Group>) {
      const items = groups.map((group, i) => ({ customId: `j${i}`, request: stage1Request(group) }))
      const sent = yield* runner.submitBatch(BATCH_STAGE, items)
      if (sent === undefined || sent.id === undefined) return { submitted: [] as ReadonlyArray<Group>, skipped: groups.slice(sent?.submitted ?? 0) }
      const rows = groups.slice(0, sent.submitted).flatMap((group, i) =>
        group.tasks.map(({ rubric, row }) => ({
          batch_id: sent.id, custom_id: `j${i}`, trace_id: row.traceId, behavior: rubric.behavior, rubric_version: rubric.version,
          model: config.judgeStage1Model, need: row.need, is_canary: row.isCanary, pack_version: row.packVersion
        })))
      for (let i = 0; i < rows.length; i += 500) yield* upsert(sql, "judge_batch_items", rows.slice(i, i + 500), ["batch_id", "custom_id", "behavior"]).pipe(Effect.mapError(storeError("record a submitted batch")))
      return { submitted: groups.slice(0, sent.submitted), skipped: groups.slice(sent.submitted) }
    })

    interface BatchItemRow extends JudgeRow {
      readonly customId: string
      readonly behavior: Behavior
      readonly rubricVersion: string
      readonly need: Need
      readonly isCanary: number
      readonly packVersion: string | null
      readonly turnAt: number
    }

    /** A pending batch's requests as groups again, from the store: turns pruned or rubrics changed since are left out. */
    const groupsOfBatch = (id: string, escalations: Map<Behavior, Escalation>) =>
      Effect.map(
        sql<BatchItemRow>`
          SELECT ${sql.unsafe(JUDGE_COLUMNS)}, b.custom_id AS "customId", b.behavior, b.rubric_version AS "rubricVersion", b.need,
                 b.is_canary AS "isCanary", b.pack_version AS "packVersion", t.created_at AS "turnAt"
          FROM judge_batch_items b JOIN traces t ON t.trace_id = b.trace_id WHERE b.batch_id = ${id} ORDER BY b.custom_id, b.behavior`,
        (rows) => {
          const groups = new Map<string, Group>()
          for (const row of rows) {
            const rubric = RUBRICS[row.behavior]
            if (rubric === undefined || rubric.version !== row.rubricVersion) continue
            const task: Task = { rubric, row, escalate: escalations.get(row.behavior) ?? escalation([], { low: config.judgeUnsureLow, high: config.judgeUnsureHigh }) }
            const group = groups.get(row.customId)
            groups.set(row.customId, { tasks: [...(group?.tasks ?? []), task], need: group?.need ?? row.need })
          }
          return groups
        }
      )

    /** Per behavior, the outcomes of the answers collected from ended batches. */
    type Collected = Array<{ readonly behavior: Behavior; readonly outcome: Outcome }>
    type PendingBatch = { readonly id: string; readonly submittedAt: number; readonly requests: number }

    /** Where a batch stands; with `wait`, asked again every AUTOTUNE_JUDGE_BATCH_POLL_SECONDS until it has ended. */
    const batchEnded = (batch: PendingBatch, wait: boolean) =>
      Effect.gen(function* () {
        let status = yield* runner.batchStatus(batch.id, config.judgeStage1Model).pipe(Effect.either)
        while (wait && status._tag === "Right" && !status.right.ended) {
          yield* Effect.logInfo(`waiting for judge batch ${batch.id} (${batch.requests} requests, submitted ${new Date(batch.submittedAt).toISOString()})`)
          yield* Effect.sleep(Duration.seconds(config.judgeBatchPollSeconds))
          status = yield* runner.batchStatus(batch.id, config.judgeStage1Model).pipe(Effect.either)
        }
        return status
      })

    /** An ended batch's answers, each read and finished like a direct one (stage 2, store); then it is forgotten. */
    const collectEnded = (batch: PendingBatch, escalations: Map<Behavior, Escalation>) =>
      Effect.gen(function* () {
        const collected: Collected = []
        const groups = yield* groupsOfBatch(batch.id, escalations)
        const results = yield* runner.collectBatch(batch.id, batch.submittedAt, config.judgeStage1Model, (customId) => {
          const group = groups.get(customId)
          return group === undefined ? undefined : stage1Request(group)
        })
        const counts = { succeeded: 0, errored: 0, expired: 0 }
        const answered: Array<{ readonly task: Task; readonly first: Verdict | LlmError }> = []
        for (const result of results) {
          const group = groups.get(result.customId)
          if (result.type === "succeeded") counts.succeeded++
          else if (result.type === "errored") counts.errored++
          else counts.expired++
          if (group === undefined || result.type !== "succeeded") continue
          const firsts = yield* stage1Verdicts(group, result.response)
          for (const [i, task] of group.tasks.entries()) answered.push({ task, first: firsts[i]! })
        }
        // Stage 2 of the unsure answers goes direct, side by side like any other calls (the runner's limit).
        collected.push(...(yield* Effect.forEach(answered, ({ task, first }) => Effect.map(finish(task, first), (outcome) => ({ behavior: task.rubric.behavior, outcome })), {
          concurrency: config.llmConcurrency
        })))
        yield* forgetBatch(batch.id, "collected", counts)
        if (counts.errored + counts.expired > 0) {
          yield* Effect.logWarning(`judge batch ${batch.id}: ${counts.errored} request(s) failed and ${counts.expired} expired or were canceled; those turns will be judged again`)
        }
        return collected
      })

    /**
     * Collects every ended batch; a request that errored or expired frees its turns for a later run. With
     * `wait`, polls until every pending batch has ended (Anthropic ends a batch within 24 hours).
     */
    const collectBatches = Effect.fn("Judge.collectBatches")(function* (wait: boolean, escalations: Map<Behavior, Escalation>) {
      const collected: Collected = []
      let pending = 0
      for (const batch of yield* runner.pendingBatches(BATCH_STAGE)) {
        if (!runner.batching || batch.provider !== runner.providerName) {
          // Sent through a provider this run does not use: its answers cannot be fetched, its turns are judged again.
          yield* Effect.logWarning(`judge batch ${batch.id} was sent to ${batch.provider}, not used now; its ${batch.requests} turns will be judged again`)
          yield* forgetBatch(batch.id, "lost", { succeeded: 0, errored: 0, expired: batch.requests })
          continue
        }
        const status = yield* batchEnded(batch, wait)
        if (status._tag === "Right") {
          if (!status.right.ended) pending++
          else {
            // Answers that could not be downloaded stay at the provider: the batch is asked for again next run.
            const answers = yield* Effect.either(collectEnded(batch, escalations))
            if (answers._tag === "Right") collected.push(...answers.right)
            else if (answers.left._tag !== "LlmError") return yield* answers.left
            else {
              if ((yield* runner.halt) === undefined) yield* Effect.logWarning(`could not collect judge batch ${batch.id}: ${answers.left.message}; collecting it again next run`)
              pending++
            }
          }
        } else if (status.left.reason === "NotFound") {
          // The provider no longer has it (results are kept 29 days): its turns are judged again.
          yield* Effect.logWarning(`judge batch ${batch.id} is gone at the provider; its ${batch.requests} turns will be judged again`)
          yield* forgetBatch(batch.id, "lost", { succeeded: 0, errored: 0, expired: batch.requests })
        } else {
          // A stopped run (a wrong key, a failing provider) says why once, in its own line.
          if ((yield* runner.halt) === undefined) {
            yield* Effect.logWarning(`could not ask about judge batch ${batch.id}: ${status.left.message}; asking again next run`)
          }
          pending++
        }
      }
      return { collected, pending }
    })

    /** A batch is done with: its turns are free to be selected again unless they were scored. */
    const forgetBatch = (id: string, status: "collected" | "lost", counts: { succeeded: number; errored: number; expired: number }) =>
      Effect.zipRight(
        sql`DELETE FROM judge_batch_items WHERE batch_id = ${id}`.pipe(Effect.mapError(storeError("forget a collected batch"))),
        runner.closeBatch(id, status, counts)
      )

    /**
     * Sends the trend sample's groups as a batch. A provider without the batch endpoints (404) gets them as
     * direct calls; a submission that fails otherwise leaves them failed (tried next run). Returns the turns
     * sent per behavior.
     */
    const sendLater = Effect.fn("Judge.sendLater")(function* (later: ReadonlyArray<Group>, outcomes: Outcomes) {
      const batched = new Map<Behavior, number>()
      type Sent = { readonly submitted: ReadonlyArray<Group>; readonly skipped: ReadonlyArray<Group>; readonly error?: LlmError }
      const sent: Sent = yield* submitGroups(later).pipe(Effect.catchTag("LlmError", (error) => Effect.succeed({ submitted: [], skipped: later, error })))
      if (sent.error?.reason === "NotFound") {
        // No batch interface at this address (a proxy), or an unknown model: the direct calls tell which.
        yield* Effect.forEach(later, (group) => Effect.map(judgeGroup(group), (results) => outcomes.addAll(results)), { concurrency: config.llmConcurrency, discard: true })
        if ((yield* runner.halt) === undefined) yield* Effect.logWarning(`the provider has no Message Batches (${sent.error.message}); the trend sample was judged at once: set AUTOTUNE_JUDGE_BATCH=off to stop trying`)
        return batched
      }
      // A stopped run says why once, in its own line; a budget that ran out is counted, not warned about.
      if (sent.error !== undefined && (yield* runner.halt) === undefined && sent.error.reason !== "BudgetExhausted") {
        yield* Effect.logWarning(`could not submit the judge batch: ${sent.error.message}; its turns are tried next run`)
      }
      const why = sent.error ?? new LlmError({ reason: "BudgetExhausted", detail: "the budget could not pay for this turn's batch request" })
      for (const g of sent.skipped) outcomes.addAll(failedAll(g, why))
      for (const t of sent.submitted.flatMap((g) => g.tasks)) batched.set(t.rubric.behavior, (batched.get(t.rubric.behavior) ?? 0) + 1)
      return batched
    })

    /**
     * Per behavior without a live canary (the optimizer waits for it anyway): how many scored turns the
     * optimizer's first run still lacks, counting what the store holds under the current rubric and the canary
     * and pair turns judged now (as the optimizer counts them: turns with a reply), when this cycle's trend
     * sample can make up for it.
     */
    const optimizerShortfall = (groups: ReadonlyArray<Group>) =>
      Effect.gen(function* () {
        const needed = turnsNeeded(config.sampleSize)
        const short = new Map<Behavior, number>()
        for (const behavior of config.behaviors) {
          if ((yield* readPack(canaryPath(config.outputDir, behavior), behavior))._tag === "Valid") continue
          const [stored] = yield* sql<{ n: number }>`
            SELECT COUNT(*) AS n FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id
            WHERE s.behavior = ${behavior} AND s.rubric_version = ${RUBRICS[behavior].version} AND t.output_text IS NOT NULL`.pipe(Effect.mapError(storeError("count scored turns")))
          const count = (keep: (g: Group) => boolean) => groups.filter(keep).reduce((n, g) => n + g.tasks.filter((t) => t.rubric.behavior === behavior).length, 0)
          const lack = needed - Number(stored?.n ?? 0) - count((g) => g.need !== "trend")
          // Only when this cycle's trend sample can cover it: otherwise the optimizer waits all the same, and
          // the turns go at half price.
          if (lack > 0 && lack <= count((g) => g.need === "trend")) short.set(behavior, lack)
        }
        return short
      })

    /**
     * Judges what decisions need for every configured behavior: canary turns, their pairs, the trend sample.
     * With batching on, answers of earlier batches are collected first and the trend sample goes to a new batch.
     */
    const evaluate = Effect.fn("Judge.evaluate")(function* (onProgress?: (done: number, total: number) => void) {
      const escalations = new Map<Behavior, Escalation>()
      for (const behavior of config.behaviors) escalations.set(behavior, yield* escalationFor(RUBRICS[behavior], Date.now()))
      const batching = config.judgeBatch === "trend" && runner.batching
      const outcomes = new Outcomes()
      // Batches sent earlier are collected whatever the setting now: their turns wait on them.
      const collectedBefore = yield* collectBatches(false, escalations)
      outcomes.addAll(collectedBefore.collected)
      const work: Array<{ rubric: Rubric; rows: ReadonlyArray<Row>; sampling: Sampling }> = []
      for (const behavior of config.behaviors) work.push({ rubric: RUBRICS[behavior], ...(yield* selectTraces(RUBRICS[behavior])) })
      // Canary turns of every behavior first, then their pairs, then the trend samples: under a budget, what
      // decisions need most is judged first.
      const tasks = work.flatMap((w) => w.rows.map((row) => ({ rubric: w.rubric, row, escalate: escalations.get(w.rubric.behavior)! })))
        .sort((a, b) => NEED_ORDER[a.row.need] - NEED_ORDER[b.row.need])
      const groups = groupTasks(tasks, config.judgeCombined)
      // A behavior the optimizer cannot start on yet has what it lacks judged now, not in a batch whose answers
      // come a cycle later: a new install with a backlog sees its first canary in its first cycle. The rest of
      // the trend sample still goes at half price.
      const starting = batching ? groupsToStart(groups, yield* optimizerShortfall(groups)) : new Set<Group>()
      const now = batching ? groups.filter((g) => g.need !== "trend") : groups
      const later = batching ? groups.filter((g) => g.need === "trend" && !starting.has(g)) : []
      const total = [...now, ...starting].reduce((n, g) => n + g.tasks.length, 0)
      let done = 0
      const judgeNow = (list: ReadonlyArray<Group>) =>
        Effect.forEach(
          list,
          (group) => Effect.tap(judgeGroup(group), (results) => Effect.sync(() => {
            outcomes.addAll(results)
            done += results.length
            onProgress?.(done, total)
          })),
          // As many requests in flight as calls may be: more would queue at the runner, where later ones can
          // overtake earlier ones, and the priority order (canary turns first) matters when a budget runs out.
          { concurrency: config.llmConcurrency, discard: true }
        )
      yield* judgeNow(now)
      // After the canary turns and pairs, on their own, so that what starting the optimizer cost can be said.
      const before = usageOf(yield* runner.usage, "judge:").costUsd
      yield* judgeNow([...starting])
      const after = usageOf(yield* runner.usage, "judge:").costUsd
      const startedDirect = [...starting].reduce((n, g) => n + g.tasks.length, 0)
      const batched = later.length > 0 ? yield* sendLater(later, outcomes) : new Map<Behavior, number>()
      const collectedNow = batching && config.judgeBatchWait ? yield* collectBatches(true, escalations) : undefined
      outcomes.addAll(collectedNow?.collected ?? [])
      // A wrong key, an unknown model or a failing provider ends the stage here: what was scored is kept.
      yield* runner.ensureRunning
      const usage = yield* runner.usage
      const behaviors: Record<string, BehaviorEval> = {}
      for (const { rubric, sampling } of work) {
        behaviors[rubric.behavior] = {
          ...summarize(outcomes.of(rubric.behavior), usageOf(usage, `judge:${rubric.behavior}:`), sampling),
          batched: batched.get(rubric.behavior) ?? 0,
          stage2Levels: escalations.get(rubric.behavior)!.calibrated
        }
      }
      const all = usageOf(usage, "judge:")
      const skippedForBudget = outcomes.skippedForBudget()
      const unparseable = Object.fromEntries(
        Object.entries(yield* runner.parseStats).map(([model, p]) => [model, { ...p, share: p.structured === 0 ? 0 : p.unparsed / p.structured }])
      )
      const batches = {
        mode: batching ? "trend" : "off",
        submitted: [...batched.values()].reduce((a, b) => a + b, 0),
        collected: collectedBefore.collected.length + (collectedNow?.collected.length ?? 0),
        pendingBatches: collectedNow === undefined ? collectedBefore.pending + (batched.size > 0 ? 1 : 0) : collectedNow.pending,
        startedDirect,
        startedDirectCostUsd: before === null || after === null ? null : after - before
      } as const
      return {
        behaviors, calls: all.calls, tokensIn: all.tokensIn, tokensOut: all.tokensOut, costUsd: all.costUsd, egressRedactions: all.egressRedactions,
        budgetExhausted: Object.keys(skippedForBudget).length > 0, skippedForBudget, unparseable, batches
      } satisfies EvalSummary
    })

    return { evaluate, verdict } as const
  })
}) {}

import { SqlClient } from "@effect/sql"
import { Effect, Either, Schema } from "effect"
import { createHash } from "node:crypto"
import { Settings } from "../Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import type { LlmError } from "../Domain/Llm.js"
import { activePath, canaryPath, packVersion, readPack } from "../Domain/Pack.js"
import { servedVersions, storeError, writeTransaction } from "../store/Db.js"
import { LlmRunner, usageOf } from "../llm/LlmRunner.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { type Escalation, escalation, type LevelPairs } from "./Escalation.js"
import { canaryShare, pairRate, trendRate } from "./Sampling.js"
import { JUDGE_COLUMNS, type JudgeRow, type JudgeTrace, judgePrompt, judgeTraceOf, type Rubric, RUBRICS, SCORE_TOOL, ScoreAnswer } from "./Rubrics.js"

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
  readonly costUsd: number | null
  /** Values the egress guard replaced in judge requests before they were sent. */
  readonly egressRedactions: number
  readonly budgetExhausted: boolean
  /** Per behavior: traces left unjudged because a budget ran out (they are judged in a later run). */
  readonly skippedForBudget: Record<string, number>
  /** Per model: structured answers asked for, how many could not be used, and that share. */
  readonly unparseable: Record<string, { readonly structured: number; readonly unparsed: number; readonly share: number }>
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

/** A fixed pseudo-random draw per (trace, behavior): the same traces are audited whenever eval runs. */
const auditDraw = (traceId: string, behavior: string) =>
  parseInt(createHash("sha256").update(`${behavior}\n${traceId}`).digest("hex").slice(0, 8), 16) / 0xffffffff

export class Judge extends Effect.Service<Judge>()("autotune/Judge", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const { config } = yield* Settings

    /** One judge call with its one retry for an unreadable answer. LLM failures stay failures. */
    const verdict = Effect.fn("Judge.verdict")(function* (rubric: Rubric, trace: JudgeTrace, model: string, stage: string) {
      let lastProblem = ""
      for (let attempt = 1; attempt <= 2; attempt++) {
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
        const decoded = decodeAnswer(response.structured)
        if (Either.isRight(decoded)) {
          return { status: "scored", score: decoded.right.score, reason: decoded.right.reason.slice(0, 500) } satisfies Verdict as Verdict
        }
        lastProblem = response.structured === undefined ? `no structured answer in: ${response.text.slice(0, 120)}` : `answer out of schema: ${JSON.stringify(response.structured).slice(0, 120)}`
      }
      return { status: "unscored", reason: lastProblem } satisfies Verdict as Verdict
    })

    const notJudged = (rubric: Rubric) => sql`t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}
      AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${rubric.behavior}
                      AND j.rubric_version = ${rubric.version} AND j.stage = 1 AND j.model = ${config.judgeStage1Model})`

    /** The turns one pack version served for the behavior since `since`, newest first, as judge rows. */
    const servedBy = (rubric: Rubric, version: string, since: number, draw: number, need: Need) =>
      sql<Row>`
        SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt", ${need === "canary" ? 1 : 0} AS "isCanary", p.version AS "packVersion", ${need} AS need
        FROM trace_packs p JOIN traces t ON t.trace_id = p.trace_id
        WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${version} AND p.created_at >= ${since} AND t.sample_draw < ${draw} AND ${notJudged(rubric)}
        ORDER BY p.created_at DESC LIMIT ${config.evalMaxTraces}`

    /** The trend sample: turns of the window whose fixed draw falls under the rate, read from the time index. */
    const trendSample = (rubric: Rubric, since: number, rate: number, canary: string | undefined, versions: ReadonlyArray<string>) =>
      sql<Row>`
        SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt",
               EXISTS (SELECT 1 FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${canary ?? "\u0000none"}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id) AS "isCanary",
               (SELECT p.version FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version IN ${sql.in(versions.length === 0 ? ["\u0000none"] : versions)}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id LIMIT 1) AS "packVersion", 'trend' AS need
        FROM traces t
        WHERE t.created_at >= ${since} AND t.sample_draw < ${rate} AND ${notJudged(rubric)}
        ORDER BY t.created_at DESC
        LIMIT ${config.evalMaxTraces}`

    /** The stage-2 rule for a behavior, from its stage-1/stage-2 pairs of the last 30 days of turns. */
    const escalationFor = (rubric: Rubric, now: number) =>
      sql<LevelPairs>`
        SELECT ROUND(stage1_score * 4) / 4.0 AS level, COUNT(*) AS n, SUM(ABS(stage1_score - stage2_score) >= 0.2499) AS flips
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
          yield* sql`INSERT OR REPLACE INTO judge_scores ${sql.insert(rows)}`
          const final = second?.status === "scored" ? second : first.status === "scored" ? first : undefined
          if (final !== undefined && final.status === "scored") {
            yield* sql`INSERT OR REPLACE INTO trace_scores ${sql.insert({
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
            })}`
          }
        })
      ).pipe(Effect.mapError(storeError("store judge scores")))

    type Outcome =
      | { readonly kind: "scored"; readonly score: number; readonly stage2: boolean; readonly gap: number | null; readonly canary: boolean; readonly need: Need }
      | { readonly kind: "unscored"; readonly canary: boolean; readonly need: Need }
      | { readonly kind: "failed"; readonly error: LlmError; readonly canary: boolean; readonly need: Need }

    const judgeTrace = (rubric: Rubric, row: Row, escalate: Escalation) =>
      Effect.gen(function* () {
        const trace = judgeTraceOf(row)
        const canary = row.isCanary === 1
        const first = yield* verdict(rubric, trace, config.judgeStage1Model, `judge:${rubric.behavior}:1`)
        const unsure = first.status === "scored" && escalate.escalate(first.score)
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
      }).pipe(
        Effect.catchTag("LlmError", (error) => Effect.succeed({ kind: "failed", error, canary: row.isCanary === 1, need: row.need } satisfies Outcome as Outcome))
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

    /** Judges what decisions need for every configured behavior: canary turns, their pairs, the trend sample. */
    const evaluate = Effect.fn("Judge.evaluate")(function* (onProgress?: (done: number, total: number) => void) {
      const work: Array<{ rubric: Rubric; rows: ReadonlyArray<Row>; sampling: Sampling; escalate: Escalation }> = []
      for (const behavior of config.behaviors) {
        const rubric = RUBRICS[behavior]
        const selected = yield* selectTraces(rubric)
        work.push({ rubric, rows: selected.rows, sampling: selected.sampling, escalate: yield* escalationFor(rubric, Date.now()) })
      }
      const total = work.reduce((n, w) => n + w.rows.length, 0)
      let done = 0
      const outcomes = new Map<Behavior, Array<Outcome>>()
      // Canary turns of every behavior first, then their pairs, then the trend samples: under a budget, what
      // decisions need most is judged first.
      const items = work.flatMap((w) => w.rows.map((row) => ({ rubric: w.rubric, row, escalate: w.escalate }))).sort((a, b) => NEED_ORDER[a.row.need] - NEED_ORDER[b.row.need])
      yield* Effect.forEach(
        items,
        ({ rubric, row, escalate }) =>
          Effect.tap(judgeTrace(rubric, row, escalate), (outcome) =>
            Effect.sync(() => {
              const list = outcomes.get(rubric.behavior) ?? []
              list.push(outcome)
              outcomes.set(rubric.behavior, list)
              onProgress?.(++done, total)
            })
          ),
        // As many traces in flight as calls may be: more would queue at the runner, where later traces can
        // overtake earlier ones, and the priority order (canary turns first) matters when a budget runs out.
        { concurrency: config.llmConcurrency, discard: true }
      )
      // A wrong key, an unknown model or a failing provider ends the stage here: what was scored is kept.
      yield* runner.ensureRunning
      const usage = yield* runner.usage
      const behaviors: Record<string, BehaviorEval> = {}
      for (const { rubric, sampling, escalate } of work) {
        behaviors[rubric.behavior] = { ...summarize(outcomes.get(rubric.behavior) ?? [], usageOf(usage, `judge:${rubric.behavior}:`), sampling), stage2Levels: escalate.calibrated }
      }
      const all = usageOf(usage, "judge:")
      const skippedForBudget: Record<string, number> = {}
      for (const [b, list] of outcomes) {
        const n = list.filter((o) => o.kind === "failed" && o.error.reason === "BudgetExhausted").length
        if (n > 0) skippedForBudget[b] = n
      }
      const budgetExhausted = Object.keys(skippedForBudget).length > 0
      const unparseable = Object.fromEntries(
        Object.entries(yield* runner.parseStats).map(([model, p]) => [model, { ...p, share: p.structured === 0 ? 0 : p.unparsed / p.structured }])
      )
      return { behaviors, calls: all.calls, costUsd: all.costUsd, egressRedactions: all.egressRedactions, budgetExhausted, skippedForBudget, unparseable } satisfies EvalSummary
    })

    return { evaluate, verdict } as const
  })
}) {}

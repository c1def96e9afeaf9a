import { SqlClient } from "@effect/sql"
import { Effect, Either, Schema } from "effect"
import { createHash } from "node:crypto"
import { Settings } from "../Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import type { LlmError } from "../Domain/Llm.js"
import { canaryPath, packVersion } from "../Domain/Pack.js"
import { servedVersions, storeError, writeTransaction } from "../store/Db.js"
import { LlmRunner, usageOf } from "../llm/LlmRunner.js"
import { redactIf, storedVersion } from "../privacy/Redactor.js"
import { JUDGE_COLUMNS, type JudgeRow, type JudgeTrace, judgePrompt, judgeTraceOf, type Rubric, RUBRICS, SCORE_TOOL, ScoreAnswer } from "./Rubrics.js"

/** A judge verdict. An answer we could not read is "unscored" with the reason: never a score of 0. */
export type Verdict =
  | { readonly status: "scored"; readonly score: number; readonly reason: string }
  | { readonly status: "unscored"; readonly reason: string }

export interface BehaviorEval {
  readonly scored: number
  readonly unscored: number
  /** Calls that failed (provider down, budget spent): nothing is stored, the trace is tried next run. */
  readonly failed: number
  readonly mean: number | null
  readonly canaryTraces: number
  readonly stage2: number
  readonly stage2Share: number
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

interface Row extends JudgeRow {
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

    const selectTraces = (rubric: Rubric, canary: string | undefined, versions: ReadonlyArray<string>) =>
      sql<Row>`
        SELECT ${sql.unsafe(JUDGE_COLUMNS)}, t.created_at AS "turnAt",
               EXISTS (SELECT 1 FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version = ${canary ?? "\u0000none"}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id) AS "isCanary",
               (SELECT p.version FROM trace_packs p WHERE p.behavior IN (${rubric.behavior}, '*') AND p.version IN ${sql.in(versions.length === 0 ? ["\u0000none"] : versions)}
                       AND p.created_at = t.created_at AND p.trace_id = t.trace_id LIMIT 1) AS "packVersion"
        FROM traces t
        WHERE t.output_text IS NOT NULL AND ${sql.unsafe(rubric.appliesSql)}
          AND NOT EXISTS (SELECT 1 FROM judge_scores j WHERE j.trace_id = t.trace_id AND j.behavior = ${rubric.behavior}
                          AND j.rubric_version = ${rubric.version} AND j.stage = 1 AND j.model = ${config.judgeStage1Model})
        ORDER BY "isCanary" DESC, t.created_at DESC
        LIMIT ${config.evalMaxTraces}`.pipe(Effect.mapError(storeError("select traces to judge")))

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
      | { readonly kind: "scored"; readonly score: number; readonly stage2: boolean; readonly gap: number | null; readonly canary: boolean }
      | { readonly kind: "unscored"; readonly canary: boolean }
      | { readonly kind: "failed"; readonly error: LlmError; readonly canary: boolean }

    const judgeTrace = (rubric: Rubric, row: Row) =>
      Effect.gen(function* () {
        const trace = judgeTraceOf(row)
        const canary = row.isCanary === 1
        const first = yield* verdict(rubric, trace, config.judgeStage1Model, `judge:${rubric.behavior}:1`)
        const unsure = first.status === "scored" && first.score >= config.judgeUnsureLow && first.score <= config.judgeUnsureHigh
        const audited = first.status === "scored" && auditDraw(trace.traceId, rubric.behavior) < config.judgeAuditShare
        // A stage-2 failure leaves the stage-1 verdict standing; it is not worth losing the paid-for score.
        const second = unsure || audited
          ? yield* verdict(rubric, trace, config.judgeStage2Model, `judge:${rubric.behavior}:2`).pipe(Effect.option)
          : undefined
        const secondVerdict = second?._tag === "Some" ? second.value : undefined
        yield* store(rubric, row, first, secondVerdict)
        const final = secondVerdict?.status === "scored" ? secondVerdict : first
        if (final.status !== "scored") return { kind: "unscored", canary } satisfies Outcome as Outcome
        const gap = first.status === "scored" && secondVerdict?.status === "scored" ? Math.abs(first.score - secondVerdict.score) : null
        return { kind: "scored", score: final.score, stage2: secondVerdict !== undefined, gap, canary } satisfies Outcome as Outcome
      }).pipe(
        Effect.catchTag("LlmError", (error) => Effect.succeed({ kind: "failed", error, canary: row.isCanary === 1 } satisfies Outcome as Outcome))
      )

    const summarize = (outcomes: ReadonlyArray<Outcome>, usage: ReturnType<typeof usageOf>): BehaviorEval => {
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
        stage2,
        stage2Share: scored.length === 0 ? 0 : stage2 / scored.length,
        stageDisagreement: mean(gaps),
        calls: usage.calls,
        tokensIn: usage.tokensIn,
        tokensOut: usage.tokensOut,
        costUsd: usage.costUsd
      }
    }

    /** Judges what is new for every configured behavior; canary-served traces first, then newest first. */
    const evaluate = Effect.fn("Judge.evaluate")(function* (onProgress?: (done: number, total: number) => void) {
      const work: Array<{ rubric: Rubric; rows: ReadonlyArray<Row> }> = []
      for (const behavior of config.behaviors) {
        const rubric = RUBRICS[behavior]
        const canary = yield* packVersion(canaryPath(config.outputDir, behavior), behavior)
        work.push({ rubric, rows: yield* selectTraces(rubric, canary, yield* servedVersions(sql, behavior)) })
      }
      const total = work.reduce((n, w) => n + w.rows.length, 0)
      let done = 0
      const outcomes = new Map<Behavior, Array<Outcome>>()
      // Canary turns of every behavior before any other turn: under a budget they are what decisions need most.
      const items = work.flatMap((w) => w.rows.map((row) => ({ rubric: w.rubric, row }))).sort((a, b) => b.row.isCanary - a.row.isCanary)
      yield* Effect.forEach(
        items,
        ({ rubric, row }) =>
          Effect.tap(judgeTrace(rubric, row), (outcome) =>
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
      for (const { rubric } of work) behaviors[rubric.behavior] = summarize(outcomes.get(rubric.behavior) ?? [], usageOf(usage, `judge:${rubric.behavior}:`))
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

/**
 * Whether a behavior is ready for an optimizer run and what it would start from (its baseline and scored
 * turns), and the plan: what a run would do and may cost, without a single LLM call.
 */
import { Effect, Schema } from "effect"
import { parsePrices } from "../config/Prices.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { MINIBATCH, turnsNeeded } from "../Domain/SearchShape.js"
import { JUDGE_COLUMNS } from "../judge/Rubrics.js"
import { storeError } from "../store/Db.js"
import { callCounts, finalCounts, type PlannedCalls, planCalls, reflectCounts, startCounts, totalCalls } from "./Plan.js"
import { DEFAULT_INSTRUCTIONS, type OptimizeDeps, type Row, searchShape } from "./Work.js"

const decodeRejected = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ instructions: Schema.String, baselineInstructions: Schema.String })))

export const makeReadiness = ({ sql, config, rubrics }: Pick<OptimizeDeps, "sql" | "config" | "rubrics">) => {
  const shape = searchShape(config)

  const scoredTraces = (behavior: Behavior) =>
    sql<Row>`
      SELECT ${sql.unsafe(JUDGE_COLUMNS)}, s.score, s.reason,
             (SELECT f.feedback_type FROM feedback f WHERE f.trace_id = t.trace_id ORDER BY f.created_ms DESC LIMIT 1) AS reaction
      FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id
      WHERE s.behavior = ${behavior} AND s.rubric_version = ${rubrics[behavior].version} AND t.output_text IS NOT NULL
      ORDER BY t.created_at DESC LIMIT 2000`.pipe(Effect.mapError(storeError("read scored traces")))

  /** What the operator rejected for the behavior (`autotune reject`): each pack's instructions and the baseline it changed. */
  const rejectedFor = (behavior: Behavior) =>
    sql<{ bodyJson: string }>`SELECT body_json AS "bodyJson" FROM packs WHERE behavior = ${behavior} AND status = 'rejected'`.pipe(
      Effect.map((rows) => rows.flatMap((row) => {
        const decoded = decodeRejected(row.bodyJson)
        return decoded._tag === "Right" ? [decoded.right] : []
      })),
      Effect.mapError(storeError("read rejected packs"))
    )

  const pendingSelection = (behavior: Behavior) =>
    sql<{ version: string }>`SELECT version FROM packs WHERE behavior = ${behavior} AND status = 'selected' LIMIT 1`.pipe(
      Effect.map((rows) => rows[0]?.version),
      Effect.mapError(storeError("read packs"))
    )

  const lastAttempt = (behavior: Behavior, baselineVersion: string) =>
    sql<{ createdAt: number; outcome: string }>`
      SELECT created_at AS "createdAt", outcome FROM optimize_runs WHERE behavior = ${behavior} AND baseline_version = ${baselineVersion}
      ORDER BY created_at DESC LIMIT 1`.pipe(Effect.map((rows) => rows[0]), Effect.mapError(storeError("read optimize runs")))

  /** Whether a behavior is ready for a run, and what it would start from; the same checks for a run and a plan. */
  const readiness = (behavior: Behavior) =>
    Effect.gen(function* () {
      const skip = (why: string) => ({ ready: false as const, why })
      const least = totalCalls(startCounts(shape)) + totalCalls(reflectCounts(shape)) + totalCalls(finalCounts(shape))
      if (config.optimizeMaxCalls < least) return skip(`AUTOTUNE_OPTIMIZE_MAX_CALLS=${config.optimizeMaxCalls} is below the ${least} calls one round and the held-out check may need`)
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag === "Valid") return skip(`canary ${canary.pack.version} is out; the running experiment finishes first`)
      const waiting = yield* pendingSelection(behavior)
      if (waiting !== undefined) {
        return skip(config.deployApproval === "manual"
          ? `pack ${waiting} was selected and waits for \`autotune approve ${behavior}\` or \`autotune reject ${behavior}\``
          : `pack ${waiting} was selected and waits for \`autotune deploy\``)
      }
      const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
      const baseline = active._tag === "Valid" ? active.pack.instructions : DEFAULT_INSTRUCTIONS[behavior]
      const baselineVersion = active._tag === "Valid" ? active.pack.version : "built-in"
      const last = yield* lastAttempt(behavior, baselineVersion)
      if (last !== undefined && Date.now() - last.createdAt < 24 * 3_600_000) {
        return skip(`tried on this baseline ${((Date.now() - last.createdAt) / 3_600_000).toFixed(1)} h ago (${last.outcome}); next try after 24 h`)
      }
      const rows = yield* scoredTraces(behavior)
      const needed = turnsNeeded(config.sampleSize)
      if (rows.length < needed) return skip(`${rows.length} scored traces; needs ${needed} (AUTOTUNE_SAMPLE_SIZE held out, half as many to compare candidates, ${MINIBATCH} to learn from)`)
      return { ready: true as const, baseline, baselineVersion, rows, rejected: yield* rejectedFor(behavior) }
    })

  /** Per-call tokens of earlier optimizer calls in this store, by kind, where there are enough to go by. */
  const tokenHistory = sql<{ stage: string; n: number; tokensIn: number; tokensOut: number }>`
    SELECT stage, COUNT(*) AS n, SUM(tokens_in) AS "tokensIn", SUM(tokens_out) AS "tokensOut"
    FROM llm_calls WHERE stage LIKE 'optimize:%' AND outcome = 'ok' GROUP BY stage`.pipe(
    Effect.map((rows) => {
      // optimize:<behavior>:<kind>: the kind's mean over every behavior.
      const kinds = new Map<string, { n: number; tokensIn: number; tokensOut: number }>()
      for (const r of rows) {
        const kind = r.stage.split(":").slice(2).join(":")
        const k = kinds.get(kind) ?? { n: 0, tokensIn: 0, tokensOut: 0 }
        kinds.set(kind, { n: k.n + r.n, tokensIn: k.tokensIn + r.tokensIn, tokensOut: k.tokensOut + r.tokensOut })
      }
      return Object.fromEntries([...kinds].filter(([, k]) => k.n >= 5).map(([kind, k]) => [kind, { tokensIn: k.tokensIn / k.n, tokensOut: k.tokensOut / k.n }]))
    }),
    Effect.mapError(storeError("read earlier optimizer calls"))
  )

  /** What `optimize` would do and may cost, per behavior, without a single LLM call. */
  const plan = Effect.fn("Optimizer.plan")(function* () {
    const history = yield* tokenHistory
    const prices = parsePrices(config.prices)
    const behaviors: Record<string, { readonly ready: false; readonly why: string } | { readonly ready: true; readonly validationTurns: number; readonly heldOutTurns: number; readonly reflectionTurns: number; readonly rounds: number; readonly candidates: number; readonly calls: ReadonlyArray<PlannedCalls>; readonly upperBoundCalls: number; readonly costUsd: number | null }> = {}
    for (const behavior of config.behaviors) {
      const ready = yield* readiness(behavior)
      if (!ready.ready) {
        behaviors[behavior] = ready
        continue
      }
      const calls = planCalls(config, callCounts(shape), prices, history)
      const perModel = calls.filter((c) => c.calls > 0)
      // Every round with every child accepted is the bound per stage; the budget caps the whole run below it.
      const upperBoundCalls = Math.min(config.optimizeMaxCalls, calls.reduce((n, c) => n + c.calls, 0))
      const dearest = Math.max(...perModel.map((c) => (c.costUsd ?? 0) / c.calls))
      behaviors[behavior] = {
        ready: true,
        heldOutTurns: config.sampleSize,
        validationTurns: shape.validation,
        reflectionTurns: ready.rows.length - config.sampleSize - shape.validation,
        rounds: config.optimizeRounds,
        candidates: config.maxCandidates,
        calls,
        upperBoundCalls,
        costUsd: calls.some((c) => c.costUsd === null) ? null : Math.min(calls.reduce((n, c) => n + c.costUsd!, 0), upperBoundCalls * dearest)
      }
    }
    return { behaviors }
  })

  return { readiness, plan } as const
}

export type Ready = Extract<Effect.Effect.Success<ReturnType<ReturnType<typeof makeReadiness>["readiness"]>>, { ready: true }>

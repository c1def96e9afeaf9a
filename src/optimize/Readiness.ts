/**
 * Whether a behavior is ready for an optimizer run and what it would start from (its baseline and scored
 * turns), and the plan: what a run would do and may cost, without a single LLM call.
 */
import { Clock, Effect } from "effect"
import { parsePrices } from "../config/Prices.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { MINIBATCH, turnsNeeded } from "../Domain/SearchShape.js"
import { scoredTurns } from "../store/Scores.js"
import { lastOptimizeRun, pendingVersion, rejectedPacks } from "../store/Packs.js"
import { optimizerCallTokens } from "../store/Spend.js"
import {
  callCounts,
  finalCounts,
  type PlannedCalls,
  planCalls,
  reflectCounts,
  startCounts,
  totalCalls
} from "./Plan.js"
import { DEFAULT_INSTRUCTIONS, type OptimizeDeps, type Row, searchShape } from "./OptimizeRun.js"

export const makeReadiness = ({ sql, config, rubrics }: Pick<OptimizeDeps, "sql" | "config" | "rubrics">) => {
  const shape = searchShape(config)

  const scoredTraces = (behavior: Behavior) => scoredTurns(sql, behavior, rubrics[behavior].version)

  const rejectedFor = (behavior: Behavior) => rejectedPacks(sql, behavior)
  const pendingSelection = (behavior: Behavior) => pendingVersion(sql, behavior)
  const lastAttempt = (behavior: Behavior, baselineVersion: string) => lastOptimizeRun(sql, behavior, baselineVersion)

  /** Whether a behavior is ready for a run, and what it would start from; the same checks for a run and a plan. */
  const readiness = (behavior: Behavior) =>
    Effect.gen(function* () {
      const skip = (why: string) => ({ ready: false as const, why })
      const least = totalCalls(startCounts(shape)) + totalCalls(reflectCounts(shape)) + totalCalls(finalCounts(shape))
      if (config.optimizeMaxCalls < least)
        return skip(
          `AUTOTUNE_OPTIMIZE_MAX_CALLS=${config.optimizeMaxCalls} is below the ${least} calls one round and the held-out check may need`
        )
      const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
      if (canary._tag === "Valid")
        return skip(`canary ${canary.pack.version} is out; the running experiment finishes first`)
      const waiting = yield* pendingSelection(behavior)
      if (waiting !== undefined) {
        return skip(
          config.deployApproval === "manual"
            ? `pack ${waiting} was selected and waits for \`autotune approve ${behavior}\` or \`autotune reject ${behavior}\``
            : `pack ${waiting} was selected and waits for \`autotune deploy\``
        )
      }
      const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
      const baseline = active._tag === "Valid" ? active.pack.instructions : DEFAULT_INSTRUCTIONS[behavior]
      const baselineVersion = active._tag === "Valid" ? active.pack.version : "built-in"
      const last = yield* lastAttempt(behavior, baselineVersion)
      const now = yield* Clock.currentTimeMillis
      if (last !== undefined && now - last.createdAt < 24 * 3_600_000) {
        return skip(
          `tried on this baseline ${((now - last.createdAt) / 3_600_000).toFixed(1)} h ago (${last.outcome}); next try after 24 h`
        )
      }
      const rows = yield* scoredTraces(behavior)
      const needed = turnsNeeded(config.sampleSize)
      if (rows.length < needed)
        return skip(
          `${rows.length} scored traces; needs ${needed} (AUTOTUNE_SAMPLE_SIZE held out, half as many to compare candidates, ${MINIBATCH} to learn from)`
        )
      return {
        ready: true,
        baseline,
        baselineVersion,
        rows,
        rejected: yield* rejectedFor(behavior)
      } satisfies Ready as Ready
    })

  /** Per-call tokens of earlier optimizer calls in this store, by kind, where there are enough to go by. */
  const tokenHistory = optimizerCallTokens(sql).pipe(
    Effect.map((rows) => {
      // optimize:<behavior>:<kind>: the kind's mean over every behavior.
      const kinds = new Map<string, { n: number; tokensIn: number; tokensOut: number }>()
      for (const r of rows) {
        const kind = r.stage.split(":").slice(2).join(":")
        const k = kinds.get(kind) ?? { n: 0, tokensIn: 0, tokensOut: 0 }
        kinds.set(kind, { n: k.n + r.n, tokensIn: k.tokensIn + r.tokensIn, tokensOut: k.tokensOut + r.tokensOut })
      }
      return Object.fromEntries(
        [...kinds]
          .filter(([, k]) => k.n >= 5)
          .map(([kind, k]) => [kind, { tokensIn: k.tokensIn / k.n, tokensOut: k.tokensOut / k.n }])
      )
    })
  )

  /** What `optimize` would do and may cost, per behavior, without a single LLM call. */
  const plan = Effect.fn("Optimizer.plan")(function* () {
    const history = yield* tokenHistory
    const prices = parsePrices(config.prices)
    const behaviors: Record<
      string,
      | { readonly ready: false; readonly why: string }
      | {
          readonly ready: true
          readonly validationTurns: number
          readonly heldOutTurns: number
          readonly reflectionTurns: number
          readonly rounds: number
          readonly candidates: number
          readonly calls: ReadonlyArray<PlannedCalls>
          readonly upperBoundCalls: number
          readonly costUsd: number | null
        }
    > = {}
    for (const behavior of config.behaviors) {
      const ready = yield* readiness(behavior)
      if (!ready.ready) {
        behaviors[behavior] = ready
        continue
      }
      const calls = planCalls(config, callCounts(shape), prices, history)
      const perModel = calls.filter((c) => c.calls > 0)
      // Every round with every child accepted is the bound per stage; the budget caps the whole run below it.
      const upperBoundCalls = Math.min(
        config.optimizeMaxCalls,
        calls.reduce((n, c) => n + c.calls, 0)
      )
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
        costUsd: calls.some((c) => c.costUsd === null)
          ? null
          : Math.min(
              calls.reduce((n, c) => n + c.costUsd!, 0),
              upperBoundCalls * dearest
            )
      }
    }
    return { behaviors }
  })

  return { readiness, plan } as const
}

/** A behavior ready for an optimizer run: the baseline it starts from, its scored turns, what the operator rejected. */
export interface Ready {
  readonly ready: true
  readonly baseline: string
  readonly baselineVersion: string
  readonly rows: ReadonlyArray<Row>
  readonly rejected: ReadonlyArray<{ readonly instructions: string; readonly baselineInstructions: string }>
}

/**
 * optimize/: better instructions for a behavior, kept only for a real, measured gain. Optimize.ts is the
 * Optimizer service: one run per behavior from readiness to the selected pack. Readiness.ts says whether a
 * behavior can run and plans its cost, Rounds.ts searches (Reflection.ts proposes, Replay.ts replays and
 * judges), Choice.ts makes the final choice on held-out turns; Work.ts, Search.ts and Plan.ts are pure cores.
 * May import: Domain, config, privacy, store, llm, ingest, judge, canary
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { isBehaviorFault, isolated } from "../Domain/Errors.js"
import { pendingSelections, recordOptimizeRun, recordSelection } from "../store/Packs.js"
import { newVersion } from "../canary/Versions.js"
import { Judge } from "../judge/Judge.js"
import { Rubrics } from "../judge/RubricBook.js"
import { LlmRunner, usageBetween, usageOf } from "../llm/LlmRunner.js"
import { storedVersion } from "../privacy/Redactor.js"
import { finalistsOf, makeChoice, selectionOf } from "./Choice.js"
import { makeReadiness } from "./Readiness.js"
import { makeReflection } from "./Reflection.js"
import { makeReplay } from "./Replay.js"
import { makeRounds } from "./Rounds.js"
import { droppedByRule, meanScores, splitTurns } from "./Search.js"
import type { OptimizeOutcome } from "./OptimizeRun.js"

export { DEFAULT_INSTRUCTIONS, type OptimizeOutcome } from "./OptimizeRun.js"

export class Optimizer extends Effect.Service<Optimizer>()("autotune/Optimizer", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const judge = yield* Judge
    const { config } = yield* Settings
    const rubrics = (yield* Rubrics).current

    const deps = { sql, runner, judge, config, rubrics }
    const { readiness, plan } = makeReadiness(deps)
    const replay = makeReplay(deps)
    const { evaluator } = replay
    const { search } = makeRounds(deps, makeReflection(deps))
    const { heldOutChoice } = makeChoice(deps, replay)

    const optimizeOne = Effect.fn("Optimizer.optimizeOne")(function* (behavior: Behavior) {
      yield* Effect.annotateCurrentSpan("autotune.behavior", behavior)
      const ready = yield* readiness(behavior)
      if (!ready.ready) return { outcome: "skipped", why: ready.why } satisfies OptimizeOutcome as OptimizeOutcome
      const sets = splitTurns(ready.rows, config.sampleSize)
      const prefix = `optimize:${behavior}:`
      const before = usageOf(yield* runner.usage, prefix)
      const spent = () =>
        Effect.map(runner.usage, (u) => {
          const { calls, costUsd, egressRedactions } = usageBetween(before, usageOf(u, prefix))
          return { calls, costUsd, egressRedactions }
        })
      const run = evaluator(behavior)
      const { pool, rounds, kept, stopped } = yield* search(
        behavior,
        ready,
        sets,
        run,
        Effect.map(spent(), (s) => s.calls)
      )
      const finish = (outcome: OptimizeOutcome) =>
        Effect.gen(function* () {
          // Scores missing because the run was stopped are no evidence: nothing is recorded, the next run retries.
          yield* runner.ensureRunning
          yield* recordOptimizeRun(sql, {
            behavior,
            baselineVersion: ready.baselineVersion,
            outcome: outcome.outcome,
            detail: outcome,
            redactionVersion: storedVersion(config.redact)
          })
          return outcome
        })
      const linted = rounds.flatMap((r) => r.linted)
      const common = { candidates: kept, linted, dropped: droppedByRule(linted), rounds, stopped }

      // Finalists: the best on the validation turns, if they beat the baseline there; only they see held-out turns.
      const baseline = pool[0]!
      const finalists = finalistsOf(pool)
      if (finalists.length === 0) {
        const why =
          kept === 0
            ? `no usable candidate (dropped: ${
                Object.entries(droppedByRule(linted))
                  .map(([rule, n]) => `${rule} x${n}`)
                  .join("; ") || "none"
              })`
            : `no candidate beat the baseline on the ${sets.validation.length} validation turns (${kept} proposed in ${rounds.length} round(s))`
        return yield* finish({
          outcome: "no_gain",
          why,
          baseline: meanScores(baseline.validation),
          ...common,
          ...(yield* spent())
        })
      }
      const { ranked, heldOut, baselineScores, baseScores, winner } = yield* heldOutChoice(
        behavior,
        pool,
        finalists,
        sets,
        run
      )
      if (winner === undefined) {
        const best = ranked[0]!
        return yield* finish({
          outcome: "no_gain",
          why: `best candidate gains ${best.meanDiff.toFixed(3)} (95% lower bound ${best.lowerBound.toFixed(3)}) on ${best.n} held-out traces; needs >= ${config.minImprovement} with a lower bound above 0 under both judges`,
          baseline: baselineScores,
          best: { ...best.scores, meanDiff: best.meanDiff, lowerBound: best.lowerBound },
          heldOut,
          ...common,
          ...(yield* spent())
        })
      }
      yield* runner.ensureRunning
      const version = newVersion()
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      const { body, lineage } = selectionOf({
        config,
        rubric: rubrics[behavior],
        runId: runner.runId,
        at,
        ready,
        pool,
        rounds: rounds.length,
        kept,
        winner,
        baselineScores,
        heldOut: sets.heldOut,
        baseScores
      })
      yield* recordSelection(sql, { version, behavior, body, lineage })
      return yield* finish({
        outcome: "selected",
        version,
        baseline: baselineScores,
        winner: {
          ...winner.scores,
          id: winner.c.id,
          round: winner.c.round,
          meanDiff: winner.meanDiff,
          lowerBound: winner.lowerBound,
          rerankMeanDiff: winner.rerank.meanDiff
        },
        heldOut,
        ...common,
        ...(yield* spent())
      })
    })

    const optimize = Effect.fn("Optimizer.optimize")(function* () {
      const behaviors: Record<string, OptimizeOutcome> = {}
      const faults: Record<string, string> = {}
      for (const behavior of config.behaviors) {
        const outcome = yield* isolated(
          optimizeOne(behavior).pipe(
            Effect.catchTag("LlmError", (e) =>
              Effect.succeed({ outcome: "skipped", why: e.message } satisfies OptimizeOutcome as OptimizeOutcome)
            )
          )
        )
        if (isBehaviorFault(outcome)) faults[behavior] = outcome.fault
        behaviors[behavior] = isBehaviorFault(outcome) ? { outcome: "failed", why: outcome.fault } : outcome
        yield* runner.ensureRunning
      }
      return { behaviors, faults, egressRedactions: usageOf(yield* runner.usage, "optimize:").egressRedactions }
    })

    /** Selected packs waiting for deployment, with what the Deployer needs. */
    const selections = pendingSelections(sql)

    return { optimize, optimizeOne, plan, selections } as const
  })
}) {}

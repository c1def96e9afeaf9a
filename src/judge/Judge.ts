/**
 * judge/: scores stored turns with LLM-as-judge rubrics for the six behaviors, in two stages (a cheap model, a
 * stronger one when the first is unsure), never a fake score. Judge.ts is the Judge service: one run, from
 * collecting earlier batches to the summary. Selection.ts picks the turns, Direct.ts judges now, Batches.ts at
 * half price later, Storage.ts keeps the verdicts; Tasks.ts, Prompts.ts, Escalation.ts, Sampling.ts and
 * Agreement.ts are pure cores; JudgeAgreement.ts sets the judge against users' reactions.
 * May import: Domain, config, privacy, store, llm, ingest
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { isBehaviorFault, isolated } from "../Domain/Errors.js"
import { LlmRunner, usageOf } from "../llm/LlmRunner.js"
import { makeBatches } from "./Batches.js"
import { makeDirect } from "./Direct.js"
import type { Escalation } from "./Escalation.js"
import { judgeTraceOf, type Rubric } from "./Prompts.js"
import { Rubrics } from "./RubricBook.js"
import { makeSelection } from "./Selection.js"
import { makeStorage } from "./Storage.js"
import {
  type BehaviorEval,
  type EvalSummary,
  type Group,
  groupsToStart,
  groupTasks,
  NEED_ORDER,
  Outcomes,
  type Row,
  type Sampling,
  summarize
} from "./Tasks.js"

export class Judge extends Effect.Service<Judge>()("autotune/Judge", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const { config } = yield* Settings
    const rubrics = (yield* Rubrics).current

    const deps = { sql, runner, config, rubrics }
    const { selectTraces, escalationFor, optimizerShortfall } = makeSelection(deps)
    const direct = makeDirect(deps, makeStorage(deps))
    const { judgeGroup, verdict } = direct
    const { collectBatches, sendLater } = makeBatches(deps, direct)

    /**
     * Judges what decisions need for every configured behavior: canary turns, their pairs, the trend sample.
     * With batching on, answers of earlier batches are collected first and the trend sample goes to a new batch.
     */
    const evaluate = Effect.fn("Judge.evaluate")(function* (onProgress?: (done: number, total: number) => void) {
      const escalations = new Map<Behavior, Escalation>()
      for (const behavior of config.behaviors)
        escalations.set(behavior, yield* escalationFor(rubrics[behavior], yield* Clock.currentTimeMillis))
      const batching = config.judgeBatch === "trend" && runner.batching
      const outcomes = new Outcomes()
      // Batches sent earlier are collected whatever the setting now: their turns wait on them.
      const collectedBefore = yield* collectBatches(false, escalations)
      outcomes.addAll(collectedBefore.collected)
      const work: Array<{ rubric: Rubric; rows: ReadonlyArray<Row>; sampling: Sampling }> = []
      const faults: Record<string, string> = {}
      for (const behavior of config.behaviors) {
        const selected = yield* isolated(selectTraces(rubrics[behavior]))
        if (isBehaviorFault(selected)) faults[behavior] = selected.fault
        else work.push({ rubric: rubrics[behavior], ...selected })
      }
      // Canary turns of every behavior first, then their pairs, then the trend samples: under a budget, what
      // decisions need most is judged first.
      const tasks = work
        .flatMap((w) => w.rows.map((row) => ({ rubric: w.rubric, row, escalate: escalations.get(w.rubric.behavior)! })))
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
          (group) =>
            Effect.tap(judgeGroup(group), (results) =>
              Effect.sync(() => {
                outcomes.addAll(results)
                done += results.length
                onProgress?.(done, total)
              })
            ),
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
      for (const { rubric, rows, sampling } of work) {
        behaviors[rubric.behavior] = {
          ...summarize(outcomes.of(rubric.behavior), usageOf(usage, `judge:${rubric.behavior}:`), sampling),
          batched: batched.get(rubric.behavior) ?? 0,
          addressedMasked: rows.filter((r) => (judgeTraceOf(r).masked ?? 0) > 0).length,
          stage2Levels: escalations.get(rubric.behavior)!.calibrated
        }
      }
      const all = usageOf(usage, "judge:")
      const skippedForBudget = outcomes.skippedForBudget()
      const unparseable = Object.fromEntries(
        Object.entries(yield* runner.parseStats).map(([model, p]) => [
          model,
          { ...p, share: p.structured === 0 ? 0 : p.unparsed / p.structured }
        ])
      )
      const batches = {
        mode: batching ? "trend" : "off",
        submitted: [...batched.values()].reduce((a, b) => a + b, 0),
        collected: collectedBefore.collected.length + (collectedNow?.collected.length ?? 0),
        pendingBatches:
          collectedNow === undefined ? collectedBefore.pending + (batched.size > 0 ? 1 : 0) : collectedNow.pending,
        startedDirect,
        startedDirectCostUsd: before === null || after === null ? null : after - before
      } as const
      return {
        behaviors,
        faults,
        calls: all.calls,
        tokensIn: all.tokensIn,
        tokensOut: all.tokensOut,
        costUsd: all.costUsd,
        egressRedactions: all.egressRedactions,
        budgetExhausted: Object.keys(skippedForBudget).length > 0,
        skippedForBudget,
        unparseable,
        batches
      } satisfies EvalSummary
    })

    return { evaluate, verdict } as const
  })
}) {}

/**
 * The search's rounds (GEPA): a parent from the Pareto front over the validation turns, reflection on its own
 * failures, children kept when they beat it on a minibatch and admitted to the front as the budget allows.
 */
import { Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { acceptCounts, finalCounts, reflectCounts, totalCalls } from "./Plan.js"
import type { Ready } from "./Readiness.js"
import type { Reflection } from "./Reflection.js"
import { type Evaluator, scoresOf } from "./Replay.js"
import { addConversations, type ConversationIndex, indexConversations } from "./Provenance.js"
import {
  drawOf,
  lintCandidates,
  meanScores,
  mergePartner,
  minibatchOf,
  pairedGain,
  paretoFront,
  pickParent,
  roundGain
} from "./Search.js"
import {
  type Candidate,
  conversationTexts,
  type OptimizeDeps,
  type RoundRecord,
  searchShape,
  type Sets
} from "./OptimizeRun.js"

export const makeRounds = ({ runner, config }: Pick<OptimizeDeps, "runner" | "config">, { reflect }: Reflection) => {
  const shape = searchShape(config)

  /**
   * The rounds (GEPA): each picks a parent from the Pareto front over the validation turns, shows reflection
   * the parent's own failures with the judge's reasons, and keeps the children that beat the parent on a
   * minibatch of feedback turns. Stops at the round limit, at the call budget, or after a round without gain.
   */
  const search = (behavior: Behavior, ready: Ready, sets: Sets, run: Evaluator, spentCalls: Effect.Effect<number>) =>
    Effect.gen(function* () {
      const room = Effect.map(spentCalls, (spent) => config.optimizeMaxCalls - spent - totalCalls(finalCounts(shape)))
      const base = { id: ready.baselineVersion, instructions: ready.baseline, round: 0, parents: [] }
      const pool: Array<Candidate> = [{ ...base, validation: scoresOf(yield* run.evaluate(base, sets.validation)) }]
      const rounds: Array<RoundRecord> = []
      // Conversation text the run reads: candidates may not carry it (Provenance.ts); replays join it each round.
      const conversations = indexConversations(ready.rows.flatMap(conversationTexts))
      let kept = 0
      let stopped = `the round limit (AUTOTUNE_OPTIMIZE_ROUNDS=${config.optimizeRounds})`
      for (let round = 1; round <= config.optimizeRounds; round++) {
        yield* runner.ensureRunning
        if ((yield* room) < totalCalls(reflectCounts(shape))) {
          stopped = `the call budget (AUTOTUNE_OPTIMIZE_MAX_CALLS=${config.optimizeMaxCalls}) before round ${round}`
          break
        }
        const record = yield* searchRound(behavior, round, pool, sets, run, room, conversations, ready.rejected)
        kept += record.kept
        rounds.push(record.round)
        if (!record.round.gain) {
          stopped = `round ${round} without gain on the validation turns`
          break
        }
      }
      return { pool, rounds, kept, stopped }
    })

  const searchRound = (
    behavior: Behavior,
    round: number,
    pool: Array<Candidate>,
    sets: Sets,
    run: Evaluator,
    room: Effect.Effect<number>,
    conversations: ConversationIndex,
    rejected: Ready["rejected"]
  ) =>
    Effect.gen(function* () {
      const validation = pool.map((c) => c.validation)
      const front = paretoFront(validation)
      // No front when no validation turn could be scored: the baseline stays the parent.
      const parentAt = pickParent(front, drawOf(`${runner.runId}\n${behavior}\n${round}`))?.index ?? 0
      const parent = pool[parentAt]!
      const partnerAt = mergePartner(validation, front, parentAt)
      const partner = partnerAt === undefined ? undefined : { ...pool[partnerAt.index]!, turns: partnerAt.turns }
      const minibatch = minibatchOf(sets.feedback, round)
      const parentOnBatch = yield* run.evaluate(parent, minibatch)
      // The baseline's own failures are the live turns it served; a child's are its replays on feedback turns.
      const examples = parent.round === 0 ? sets.feedback : run.replays(parent, sets.feedback)
      const proposed = yield* reflect(behavior, parent.instructions, examples, partner)
      // What this run has read of the conversations so far: the stored turns, and every replay and reason.
      const trust = {
        known: [parent.instructions, pool[0]!.instructions],
        conversations: addConversations(conversations, run.texts()),
        rejected
      }
      const { kept, dropped } = lintCandidates(
        pool.map((c) => c.instructions),
        proposed,
        config.packMaxChars,
        trust
      )
      const children = kept.map((instructions, k) => ({
        id: `r${round}.${k + 1}`,
        instructions,
        round,
        parents: partner === undefined ? [parent.id] : [parent.id, partner.id]
      }))
      const onBatch = yield* Effect.forEach(children, (c) => run.evaluate(c, minibatch), { concurrency: "unbounded" })
      const accepted = children
        .map((c, k) => ({ c, gain: pairedGain(scoresOf(onBatch[k]!), scoresOf(parentOnBatch)).meanDiff }))
        .filter((x) => x.gain > 0)
        .sort((a, b) => b.gain - a.gain)
      // Validation turns for as many accepted children as the budget pays for, the best on the minibatch first.
      const fit = Math.max(0, Math.floor((yield* room) / totalCalls(acceptCounts(shape))))
      const admitted = yield* Effect.forEach(
        accepted.slice(0, fit),
        ({ c }) => Effect.map(run.evaluate(c, sets.validation), (r): Candidate => ({ ...c, validation: scoresOf(r) })),
        { concurrency: "unbounded" }
      )
      const gain = roundGain(
        validation,
        admitted.map((c) => c.validation)
      )
      pool.push(...admitted)
      return {
        kept: kept.length,
        round: {
          round,
          parent: parent.id,
          ...(partner === undefined ? {} : { mergedWith: partner.id }),
          proposed: proposed.length,
          linted: dropped,
          accepted: admitted.map((c) => ({ id: c.id, validationMean: meanScores(c.validation).mean })),
          gain
        } satisfies RoundRecord
      }
    })

  return { search } as const
}

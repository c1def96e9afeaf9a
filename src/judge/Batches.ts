/**
 * The trend sample at half price through the provider's Message Batches: submitting groups, remembering which
 * turns each request stands for, polling, collecting ended batches (each answer finished like a direct one, at
 * AUTOTUNE_LLM_CONCURRENCY), and forgetting a batch so its unscored turns are selected again.
 */
import { Duration, Effect } from "effect"
import type { Behavior } from "../Domain/Behavior.js"
import { LlmError } from "../Domain/Llm.js"
import type { Direct } from "./Direct.js"
import { type Escalation, escalation } from "./Escalation.js"
import { batchItems, forgetBatchItems, recordBatchItems } from "../store/Scores.js"
import type { Group, JudgeDeps, Outcome, Outcomes, Task, Verdict } from "./Tasks.js"

export const makeBatches = ({ sql, runner, config, rubrics }: JudgeDeps, direct: Direct) => {
  const { stage1Request, stage1Verdicts, finish, failedAll, judgeGroup } = direct
  const BATCH_STAGE = "judge:batch"

  /**
   * Sends the groups (trend samples, in priority order) as one batch and remembers which turns each request
   * stands for, so they are not selected again while it is pending. Returns how many went and how many the
   * budget left for a later run.
   */
  const submitGroups = Effect.fn("Judge.submitGroups")(function* (groups: ReadonlyArray<Group>) {
    const items = groups.map((group, i) => ({ customId: `j${i}`, request: stage1Request(group) }))
    const sent = yield* runner.submitBatch(BATCH_STAGE, items)
    if (sent === undefined || sent.id === undefined)
      return { submitted: [] as ReadonlyArray<Group>, skipped: groups.slice(sent?.submitted ?? 0) }
    yield* recordBatchItems(
      sql,
      groups.slice(0, sent.submitted).flatMap((group, i) =>
        group.tasks.map(({ rubric, row }) => ({
          batchId: sent.id!,
          customId: `j${i}`,
          traceId: row.traceId,
          behavior: rubric.behavior,
          rubricVersion: rubric.version,
          model: config.judgeStage1Model,
          need: row.need,
          isCanary: row.isCanary,
          packVersion: row.packVersion
        }))
      )
    )
    return { submitted: groups.slice(0, sent.submitted), skipped: groups.slice(sent.submitted) }
  })

  /** A pending batch's requests as groups again, from the store: turns pruned or rubrics changed since are left out. */
  const groupsOfBatch = (id: string, escalations: Map<Behavior, Escalation>) =>
    Effect.map(batchItems(sql, id), (rows) => {
      const groups = new Map<string, Group>()
      for (const row of rows) {
        const rubric = rubrics[row.behavior]
        if (rubric === undefined || rubric.version !== row.rubricVersion) continue
        const task: Task = {
          rubric,
          row,
          escalate:
            escalations.get(row.behavior) ??
            escalation([], { low: config.judgeUnsureLow, high: config.judgeUnsureHigh })
        }
        const group = groups.get(row.customId)
        groups.set(row.customId, { tasks: [...(group?.tasks ?? []), task], need: group?.need ?? row.need })
      }
      return groups
    })

  /** Per behavior, the outcomes of the answers collected from ended batches. */
  type Collected = Array<{ readonly behavior: Behavior; readonly outcome: Outcome }>
  type PendingBatch = { readonly id: string; readonly submittedAt: number; readonly requests: number }

  /** Where a batch stands; with `wait`, asked again every AUTOTUNE_JUDGE_BATCH_POLL_SECONDS until it has ended. */
  const batchEnded = (batch: PendingBatch, wait: boolean) =>
    Effect.gen(function* () {
      let status = yield* runner.batchStatus(batch.id, config.judgeStage1Model).pipe(Effect.either)
      while (wait && status._tag === "Right" && !status.right.ended) {
        yield* Effect.logInfo(
          `waiting for judge batch ${batch.id} (${batch.requests} requests, submitted ${new Date(batch.submittedAt).toISOString()})`
        )
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
      collected.push(
        ...(yield* Effect.forEach(
          answered,
          ({ task, first }) =>
            Effect.map(finish(task, first), (outcome) => ({ behavior: task.rubric.behavior, outcome })),
          {
            concurrency: config.llmConcurrency
          }
        ))
      )
      yield* forgetBatch(batch.id, "collected", counts)
      if (counts.errored + counts.expired > 0) {
        yield* Effect.logWarning(
          `judge batch ${batch.id}: ${counts.errored} request(s) failed and ${counts.expired} expired or were canceled; those turns will be judged again`
        )
      }
      return collected
    })

  /**
   * Collects every ended batch; a request that errored or expired frees its turns for a later run. With
   * `wait`, polls until every pending batch has ended (Anthropic ends a batch within 24 hours).
   */
  const collectBatches = Effect.fn("Judge.collectBatches")(function* (
    wait: boolean,
    escalations: Map<Behavior, Escalation>
  ) {
    const collected: Collected = []
    let pending = 0
    for (const batch of yield* runner.pendingBatches(BATCH_STAGE)) {
      if (!runner.batching || batch.provider !== runner.providerName) {
        // Sent through a provider this run does not use: its answers cannot be fetched, its turns are judged again.
        yield* Effect.logWarning(
          `judge batch ${batch.id} was sent to ${batch.provider}, not used now; its ${batch.requests} turns will be judged again`
        )
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
            if ((yield* runner.halt) === undefined)
              yield* Effect.logWarning(
                `could not collect judge batch ${batch.id}: ${answers.left.message}; collecting it again next run`
              )
            pending++
          }
        }
      } else if (status.left.reason === "NotFound") {
        // The provider no longer has it (results are kept 29 days): its turns are judged again.
        yield* Effect.logWarning(
          `judge batch ${batch.id} is gone at the provider; its ${batch.requests} turns will be judged again`
        )
        yield* forgetBatch(batch.id, "lost", { succeeded: 0, errored: 0, expired: batch.requests })
      } else {
        // A stopped run (a wrong key, a failing provider) says why once, in its own line.
        if ((yield* runner.halt) === undefined) {
          yield* Effect.logWarning(
            `could not ask about judge batch ${batch.id}: ${status.left.message}; asking again next run`
          )
        }
        pending++
      }
    }
    return { collected, pending }
  })

  /** A batch is done with: its turns are free to be selected again unless they were scored. */
  const forgetBatch = (
    id: string,
    status: "collected" | "lost",
    counts: { succeeded: number; errored: number; expired: number }
  ) => Effect.zipRight(forgetBatchItems(sql, id), runner.closeBatch(id, status, counts))

  /**
   * Sends the trend sample's groups as a batch. A provider without the batch endpoints (404) gets them as
   * direct calls; a submission that fails otherwise leaves them failed (tried next run). Returns the turns
   * sent per behavior.
   */
  const sendLater = Effect.fn("Judge.sendLater")(function* (later: ReadonlyArray<Group>, outcomes: Outcomes) {
    const batched = new Map<Behavior, number>()
    type Sent = {
      readonly submitted: ReadonlyArray<Group>
      readonly skipped: ReadonlyArray<Group>
      readonly error?: LlmError
    }
    const sent: Sent = yield* submitGroups(later).pipe(
      Effect.catchTag("LlmError", (error) => Effect.succeed({ submitted: [], skipped: later, error }))
    )
    if (sent.error?.reason === "NotFound") {
      // No batch interface at this address (a proxy), or an unknown model: the direct calls tell which.
      yield* Effect.forEach(later, (group) => Effect.map(judgeGroup(group), (results) => outcomes.addAll(results)), {
        concurrency: config.llmConcurrency,
        discard: true
      })
      if ((yield* runner.halt) === undefined)
        yield* Effect.logWarning(
          `the provider has no Message Batches (${sent.error.message}); the trend sample was judged at once: set AUTOTUNE_JUDGE_BATCH=off to stop trying`
        )
      return batched
    }
    // A stopped run says why once, in its own line; a budget that ran out is counted, not warned about.
    if (sent.error !== undefined && (yield* runner.halt) === undefined && sent.error.reason !== "BudgetExhausted") {
      yield* Effect.logWarning(`could not submit the judge batch: ${sent.error.message}; its turns are tried next run`)
    }
    const why =
      sent.error ??
      new LlmError({ reason: "BudgetExhausted", detail: "the budget could not pay for this turn's batch request" })
    for (const g of sent.skipped) outcomes.addAll(failedAll(g, why))
    for (const t of sent.submitted.flatMap((g) => g.tasks))
      batched.set(t.rubric.behavior, (batched.get(t.rubric.behavior) ?? 0) + 1)
    return batched
  })

  return { collectBatches, sendLater } as const
}

/**
 * The operator's gate (AUTOTUNE_DEPLOY_APPROVAL=manual): what `optimize` selected waits until a person approves
 * it, which ships it as a canary, or rejects it, which discards it for good: neither it nor a near-duplicate is
 * proposed again (optimize/Search.ts). Under `auto` (1.1's behavior) `deploy` ships selections itself.
 */
import { Effect } from "effect"
import { DeployRejected, Deployer } from "../canary/Deployer.js"
import type { Behavior } from "../Domain/Behavior.js"
import { Optimizer } from "../optimize/Optimize.js"
import { CanaryMonitor } from "../canary/Canary.js"

/** The selection waiting for a behavior, or a DeployRejected that says there is none. */
const pendingOf = (behavior: Behavior) =>
  Effect.gen(function* () {
    const pending = (yield* (yield* Optimizer).selections).find((s) => s.behavior === behavior)
    if (pending === undefined)
      return yield* new DeployRejected({
        behavior,
        detail: "no selected pack waits for approval (see `autotune status`)"
      })
    return pending
  })

/** A canary that cannot decide within its life at this traffic: one warning line as it ships, with what to change. */
export const warnIfUndecidable = (monitor: CanaryMonitor, deployed: unknown, behavior: Behavior) =>
  Effect.gen(function* () {
    if ((deployed as { as?: string } | undefined)?.as !== "canary") return
    const expected = yield* monitor.expected(behavior)
    if (expected.medianDays === null) yield* Effect.logWarning(`${behavior}: canary shipped, but ${expected.text}`)
  })

/** Ships the behavior's pending selection as a canary, as `deploy` does under `auto`. */
export const approve = (behavior: Behavior) =>
  Effect.gen(function* () {
    const s = yield* pendingOf(behavior)
    // A behavior pack keeps the share it was proposed at (AUTOTUNE_BEHAVIOR_CANARY_PERCENT); the optimizer's go at AUTOTUNE_CANARY_FRACTION.
    const metric = s.metric === undefined ? {} : { metric: s.metric }
    const deployed = yield* (yield* Deployer).deploy(
      s.behavior,
      { instructions: s.instructions, lineage: { ...s.lineage, approvedBy: "operator" }, ...metric },
      { instructions: s.baselineInstructions },
      s.version,
      s.share
    )
    yield* warnIfUndecidable(yield* CanaryMonitor, deployed, behavior)
    return { behavior, approved: s.version, ...deployed }
  })

/** Discards the behavior's pending selection; the optimizer never proposes it, or a change adding the same sentences, again. */
export const reject = (behavior: Behavior, reason: string | undefined) =>
  Effect.gen(function* () {
    const s = yield* pendingOf(behavior)
    yield* (yield* Deployer).discard(behavior, s.version, { by: "operator", reason: reason ?? null })
    return { behavior, rejected: s.version, reason: reason ?? null }
  })

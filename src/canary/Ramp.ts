/**
 * The canary's share of traffic over its life, pure: it starts at AUTOTUNE_CANARY_FRACTION and steps up through
 * AUTOTUNE_CANARY_STEPS as the health gates pass (progressive delivery, as Argo Rollouts' canary steps or
 * Flagger's traffic shifting). A paired comparison learns most per turn from an even split, so on a personal
 * agent the step up is what lets a canary decide within its life.
 *
 * Still valid (docs/decisions.md, "The canary's share of requests"): a step is chosen at a look from the
 * evidence up to that look, and the turns it applies to come after it; every bet is then made as before.
 */
import { formatShare } from "../Domain/Share.js"
import { ALPHA, type Decision, type Figures } from "./Stats.js"

/** The shares a canary moves through: where it started, then every configured step above it. */
export const ladder = (start: number, steps: ReadonlyArray<number>): ReadonlyArray<number> => [
  start,
  ...steps.filter((s) => s > start + 1e-9)
]

export type StepKind = "up" | "down" | "hold" | "top" | "fixed"

export interface Step {
  readonly kind: StepKind
  /** The share from now on (the same as now unless up or down). */
  readonly to: number
  readonly reason: string
}

export interface RampState {
  readonly share: number
  readonly ladder: ReadonlyArray<number>
  /** Canary turns served at the current share. */
  readonly turnsAtShare: number
  /** AUTOTUNE_CANARY_STEP_MIN_TURNS */
  readonly minTurns: number
}

type Gate = keyof Figures["health"]
const GATE_NAMES: Record<Gate, string> = {
  errorCeiling: "error rate",
  toolCeiling: "tool-failure rate",
  errorDelta: "error rate against the active pack",
  toolDelta: "tool-failure rate against the active pack",
  negativeDelta: "users' 👎 against the active pack"
}
const GATES = Object.keys(GATE_NAMES) as ReadonlyArray<Gate>

const pct = formatShare

/** A health gate's evidence at or above this (no sign of harm is at most 1) steps the share down. */
const GATE_DOWN = 4

/**
 * The step at a look where the decision is to wait (measured by bench:canary-power; docs/decisions.md):
 * - up one rung when the gates have seen AUTOTUNE_CANARY_STEP_MIN_TURNS canary turns at this share, no gate shows
 *   any sign of harm (evidence at most 1) and the scores do not lean toward rollback (evidence below 1): traffic
 *   is earned. (Asking the scores to lean toward promotion too cost a +0.10 canary 5 points of promotions within
 *   14 days for 2% fewer turns served by a worse one: docs/benchmarks.md.)
 * - down one rung as soon as the scores lean toward rollback (evidence 1 or more) or a gate's evidence reaches 4:
 *   a worse canary goes back to the share where each of its turns is paired with the most active turns, so it is
 *   rolled back after no more canary turns than at a fixed share;
 * - else hold. A tripped gate is the decision's business: it rolls back as before.
 */
export const nextStep = (decision: Decision, state: RampState): Step => {
  const { share, ladder: rungs, turnsAtShare, minTurns } = state
  const at = rungs.findIndex((r) => Math.abs(r - share) < 1e-9)
  const hold = (reason: string): Step => ({ kind: "hold", to: share, reason })
  if (rungs.length <= 1) return { kind: "fixed", to: share, reason: `a fixed share of ${pct(share)}` }
  if (decision.action !== "wait")
    return hold(
      `the canary is ${decision.action === "promote" ? "promoted" : decision.action === "rollback" ? "rolled back" : "expired"}`
    )
  const f = decision.figures
  const warning = GATES.find((g) => f.health[g] >= GATE_DOWN)
  if (at > 0 && (warning !== undefined || f.eDownNow >= 1)) {
    const why =
      warning !== undefined
        ? `${GATE_NAMES[warning]}: evidence of harm ${f.health[warning].toFixed(1)} (the gate trips at ${1 / ALPHA[warning]})`
        : `the scores lean toward rollback (evidence ${f.eDownNow.toFixed(2)})`
    return {
      kind: "down",
      to: rungs[at - 1]!,
      reason: `stepped down from ${pct(share)} to ${pct(rungs[at - 1]!)}: ${why}`
    }
  }
  if (at === rungs.length - 1 || at < 0) return { kind: "top", to: share, reason: `at the last step, ${pct(share)}` }
  if (turnsAtShare < minTurns)
    return hold(`${turnsAtShare} of ${minTurns} canary turns at ${pct(share)} before the next step`)
  const uneasy = GATES.find((g) => f.health[g] > 1)
  if (uneasy !== undefined)
    return hold(
      `holding at ${pct(share)}: ${GATE_NAMES[uneasy]} shows some evidence of harm (${f.health[uneasy].toFixed(2)} > 1)`
    )
  // Before the first pair the evidence is where every bet starts (1): no lean either way, and no step either.
  if (f.pairs === 0) return hold(`holding at ${pct(share)}: no pairs yet`)
  if (f.eDownNow >= 1)
    return hold(`holding at ${pct(share)}: the scores lean toward rollback (evidence ${f.eDownNow.toFixed(2)})`)
  return {
    kind: "up",
    to: rungs[at + 1]!,
    reason: `stepped up from ${pct(share)} to ${pct(rungs[at + 1]!)}: ${turnsAtShare} canary turns at ${pct(share)}, no health gate above 1, evidence toward rollback ${f.eDownNow.toFixed(2)} (toward promotion ${f.eUpNow.toFixed(2)})`
  }
}

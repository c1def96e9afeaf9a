/**
 * The canary decision as a betting e-process on paired differences (testing by betting, Waudby-Smith &
 * Ramdas, JRSS-B 2024), as docs/decisions.md ("Canary decisions") sets out. By Ville's inequality the wealth of a fair bet
 * exceeds 1/alpha with probability at most alpha at any time, so the error rates hold however often the
 * monitor looks. Pure and deterministic: the same traces give the same decision. The arithmetic is Wealth.ts,
 * the pairing Pairing.ts, the process Process.ts; this file is their entry.
 */

import { CanaryProcess } from "./Process.js"
import type { Action, Decision, Sample, Thresholds } from "./Wealth.js"
export { CanaryProcess } from "./Process.js"
export {
  ALPHA,
  type Action,
  type Decision,
  type Figures,
  formatEvidence,
  type Sample,
  type ShareFigures,
  type Thresholds
} from "./Wealth.js"

export interface DecideInput {
  readonly canary: ReadonlyArray<Sample>
  readonly active: ReadonlyArray<Sample>
  /** When the canary went out (ms epoch), and now. */
  readonly startedAt: number
  readonly now: number
  readonly thresholds: Thresholds
  /** No active pack beside the canary: DotClaw serves it to everyone, so there is nothing to pair with. */
  readonly lone?: boolean
}

/** The decision from all samples at once, as the monitor makes it from the store at each run. */
export const decide = (input: DecideInput): Decision => {
  const process = new CanaryProcess(input.thresholds)
  const merged = [
    ...input.canary.map((sample) => ({ sample, arm: "canary" as const })),
    ...input.active.map((sample) => ({ sample, arm: "active" as const }))
  ].sort((a, b) => a.sample.at - b.sample.at || (a.arm === b.arm ? 0 : a.arm === "active" ? -1 : 1))
  for (const { sample, arm } of merged) process.add(sample, arm)
  return process.decision(input.now, input.startedAt, input.lone === true)
}

/**
 * The rule the original autotune used, kept as the benchmark's baseline: promote when the canary's mean beats
 * the active mean by the margin after the minimum samples, roll back on the opposite. A coin flip with extra
 * steps when the canary is no better.
 */
export const naiveDecide = (
  nCanary: number,
  meanCanary: number,
  meanActive: number,
  minSamples: number,
  margin: number
): Action => {
  if (nCanary < minSamples) return "wait"
  const diff = meanCanary - meanActive
  return diff >= margin ? "promote" : diff <= -margin ? "rollback" : "wait"
}

/**
 * What autotune costs beside the agent it improves. DotClaw writes what each turn cost (`cost_total_usd`); the
 * agent's spend over a window is the sum over its turns, and autotune's share is its own spend over the same
 * window divided by it. Where the agent's cost is not known (no turn carries a cost: a local model, an older
 * DotClaw) or is $0, there is no share, and the reason is said instead of a number.
 */

/** The agent's turns over a window: how many, how many carry a cost, and the sum of those costs. */
export interface AgentSpend {
  readonly turns: number
  readonly priced: number
  readonly usd: number
}

/** The windows spend is shown over: the last 24 hours, and the last 7 and 30 UTC days (today included). */
export const COST_WINDOWS = [1, 7, 30] as const
export type CostWindow = (typeof COST_WINDOWS)[number]

/** autotune's spend beside the agent's over one window, and the share, or why there is none. */
export interface CostBeside {
  readonly days: CostWindow
  readonly autotuneUsd: number
  /** Null when no turn of the window carries a cost. */
  readonly agentUsd: number | null
  readonly agentTurns: number
  /** Turns of the window that carry a cost: when fewer than all, the agent's spend is a lower bound. */
  readonly agentPriced: number
  /** autotune's spend as a fraction of the agent's; null with `why` when it cannot be said. */
  readonly share: number | null
  readonly why: string | null
}

/** `retentionDays`: how many days of turns the store keeps (0: all); a longer window's agent spend is unknown. */
export const besideAgent = (
  days: CostWindow,
  autotuneUsd: number,
  agent: AgentSpend,
  retentionDays = 0
): CostBeside => {
  const base = { days, autotuneUsd, agentTurns: agent.turns, agentPriced: agent.priced }
  if (retentionDays > 0 && days > retentionDays)
    return {
      ...base,
      agentUsd: null,
      share: null,
      why: `the store keeps the agent's turns for ${retentionDays} days (AUTOTUNE_RETENTION_DAYS)`
    }
  if (agent.turns === 0) return { ...base, agentUsd: null, share: null, why: "no agent turns in the window" }
  if (agent.priced === 0)
    return {
      ...base,
      agentUsd: null,
      share: null,
      why: "the agent's traces carry no cost (cost_total_usd): a local model, or a DotClaw that does not record it"
    }
  if (agent.usd <= 0) return { ...base, agentUsd: 0, share: null, why: "the agent's turns cost $0" }
  return { ...base, agentUsd: agent.usd, share: autotuneUsd / agent.usd, why: null }
}

const dollars = (x: number) => `$${x.toFixed(x < 10 ? 2 : 0)}`
const windowName = (days: CostWindow) => (days === 1 ? "24 h" : `${days} days`)

/** One window as a person reads it: "$0.41 vs the agent's $2.90 over 7 days: 14.1%". */
export const costText = (c: CostBeside): string => {
  const head = `${dollars(c.autotuneUsd)} over ${windowName(c.days)}`
  if (c.share === null) return `${head} (no share: ${c.why})`
  const partial = c.agentPriced < c.agentTurns ? ` (${c.agentPriced} of ${c.agentTurns} turns priced)` : ""
  return `${dollars(c.autotuneUsd)} vs the agent's ${dollars(c.agentUsd!)}${partial} over ${windowName(c.days)}: ${(100 * c.share).toFixed(1)}%`
}

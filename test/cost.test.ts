import { describe, expect, it } from "vitest"
import { besideAgent, costText } from "../src/Domain/Cost.js"
import { windowStart } from "../src/report/Cost.js"

describe("autotune's spend beside the agent's", () => {
  it("is a share of the agent's spend where its turns carry a cost", () => {
    const c = besideAgent(7, 0.5, { turns: 300, priced: 300, usd: 4 })
    expect(c).toMatchObject({ agentUsd: 4, share: 0.125, why: null })
    expect(costText(c)).toBe("$0.50 vs the agent's $4.00 over 7 days: 12.5%")
  })

  it("says how many turns were priced when not all were: the agent's spend is then a lower bound", () => {
    expect(costText(besideAgent(1, 0.2, { turns: 10, priced: 4, usd: 1 }))).toBe(
      "$0.20 vs the agent's $1.00 (4 of 10 turns priced) over 24 h: 20.0%"
    )
  })

  it("gives no share, and says why, where the agent's cost is unknown or nothing", () => {
    const none = besideAgent(30, 0.3, { turns: 0, priced: 0, usd: 0 })
    expect(none).toMatchObject({ agentUsd: null, share: null, why: "no agent turns in the window" })
    const local = besideAgent(7, 0.3, { turns: 50, priced: 0, usd: 0 })
    expect(local).toMatchObject({ agentUsd: null, share: null })
    expect(costText(local)).toBe(
      "$0.30 over 7 days (no share: the agent's traces carry no cost (cost_total_usd): a local model, or a DotClaw that does not record it)"
    )
    const free = besideAgent(7, 0.3, { turns: 50, priced: 50, usd: 0 })
    expect(free).toMatchObject({ agentUsd: 0, share: null, why: "the agent's turns cost $0" })
  })

  it("has no share over a window longer than the store keeps the agent's turns", () => {
    expect(besideAgent(30, 0.3, { turns: 50, priced: 50, usd: 1 }, 14)).toMatchObject({ agentUsd: null, share: null })
    expect(besideAgent(7, 0.3, { turns: 50, priced: 50, usd: 1 }, 14)).toMatchObject({ share: 0.3 })
    expect(besideAgent(30, 0.3, { turns: 50, priced: 50, usd: 1 }, 0)).toMatchObject({ share: 0.3 })
  })

  it("counts a window of days from the start of the first UTC day", () => {
    const now = Date.parse("2030-03-10T15:30:00Z")
    expect(new Date(windowStart(now, 1)).toISOString()).toBe("2030-03-10T00:00:00.000Z")
    expect(new Date(windowStart(now, 7)).toISOString()).toBe("2030-03-04T00:00:00.000Z")
  })
})

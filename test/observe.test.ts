import { describe, expect, it } from "vitest"
import { liveness, readiness, stuckAfterMs, type LoopState } from "../src/observe/Health.js"
import { cycleTotals } from "../src/pipeline/Totals.js"
import { labelsKey } from "../src/store/Totals.js"

const HOUR = 3_600_000
const base: LoopState = { cycleStartedAt: null, lastEnd: null, intervalMs: HOUR, startedAt: 0, loopEnded: false }

describe("the daemon's health", () => {
  it("liveness fails only for a loop that ended or is stuck, never for failing cycles", () => {
    const failing = { ...base, lastEnd: { at: 10 * HOUR, ok: false, reason: "provider failing: eval: overloaded" } }
    expect(liveness(failing, 10.5 * HOUR).ok).toBe(true)
    expect(readiness(failing, 10.5 * HOUR)).toMatchObject({
      ok: false,
      status: "failing",
      reason: "provider failing: eval: overloaded"
    })
    expect(liveness({ ...base, loopEnded: true }, 0)).toMatchObject({ ok: false, status: "stopped" })
    // A cycle running past three intervals (at least two hours) is stuck.
    expect(stuckAfterMs(HOUR)).toBe(3 * HOUR)
    expect(stuckAfterMs(60_000)).toBe(2 * HOUR)
    const running = { ...base, cycleStartedAt: HOUR }
    expect(liveness(running, HOUR + 3 * HOUR - 1).ok).toBe(true)
    expect(liveness(running, HOUR + 3 * HOUR + 1)).toMatchObject({ ok: false, status: "stuck" })
    // A loop that stopped starting cycles is stuck too.
    const idle = { ...base, lastEnd: { at: HOUR, ok: true, reason: "ok" } }
    expect(liveness(idle, HOUR + 4 * HOUR - 1).ok).toBe(true)
    expect(liveness(idle, HOUR + 4 * HOUR + 1)).toMatchObject({ ok: false, status: "stuck" })
  })

  it("readiness: starting until a cycle ends, ok while the last one ended well within two intervals, stale after", () => {
    expect(readiness({ ...base, cycleStartedAt: 0 }, 1000)).toMatchObject({ ok: false, status: "starting" })
    const good = { ...base, lastEnd: { at: HOUR, ok: true, reason: "ok" } }
    expect(readiness(good, HOUR + 2 * HOUR - 1)).toMatchObject({ ok: true, status: "ok" })
    expect(readiness(good, HOUR + 2 * HOUR + 1)).toMatchObject({ ok: false, status: "stale" })
  })
})

describe("a cycle's running totals", () => {
  it("counts what the cycle's summary says, and nothing from a stage that did not run", () => {
    const deltas = cycleTotals({
      failed: ["optimize"],
      stages: {
        ingest: { status: "ok", summary: { ingested: 7, malformed: 2 } },
        eval: {
          status: "ok",
          summary: {
            behaviors: {
              "response-quality": { canaryTraces: 3, pairTraces: 4, trendTraces: 5, humanTraces: 6, unscored: 1 }
            }
          }
        },
        optimize: { status: "failed" },
        deploy: {
          status: "ok",
          summary: { decisions: { "response-quality": { action: "promoted" }, "tool-calling": { action: "none" } } }
        },
        align: {
          status: "ok",
          summary: {
            behaviors: {
              "response-quality": { status: "tried", adopted: null, attempt: 2 },
              "tool-calling": { status: "skipped" }
            }
          }
        }
      }
    })
    const by = Object.fromEntries(deltas.map((d) => [`${d.name}${labelsKey(d.labels)}`, d.value]))
    expect(by).toEqual({
      'autotune_cycles_total{"outcome":"failed"}': 1,
      "autotune_traces_ingested_total{}": 7,
      "autotune_traces_malformed_total{}": 2,
      'autotune_judged_turns_total{"behavior":"response-quality","reason":"canary"}': 3,
      'autotune_judged_turns_total{"behavior":"response-quality","reason":"pair"}': 4,
      'autotune_judged_turns_total{"behavior":"response-quality","reason":"trend"}': 5,
      'autotune_judged_turns_total{"behavior":"response-quality","reason":"human"}': 6,
      'autotune_unscored_turns_total{"behavior":"response-quality"}': 1,
      'autotune_canary_decisions_total{"action":"promoted","behavior":"response-quality"}': 1,
      'autotune_align_attempts_total{"behavior":"response-quality","outcome":"not_adopted"}': 1
    })
  })

  it("labels in any order are one series", () => {
    expect(labelsKey({ b: "1", a: "2" })).toBe(labelsKey({ a: "2", b: "1" }))
  })
})

/**
 * The services' parts, each on its own: what the judge and the optimizer decide from values, with no service,
 * store or provider around them.
 */
import { describe, expect, it } from "vitest"
import { finalistsOf } from "../src/optimize/Choice.js"
import type { Candidate } from "../src/optimize/OptimizeRun.js"
import { groupsToStart, groupTasks, readAnswer } from "../src/judge/Tasks.js"

const task = (traceId: string, behavior: "response-quality" | "tool-calling", need: "canary" | "pair" | "trend") => ({
  rubric: { behavior },
  row: { traceId, need }
})

describe("the judge's work, pure", () => {
  it("groups tasks one per request, or per turn when combined, placed at the turn's most needed task", () => {
    const tasks = [
      task("a", "response-quality", "canary"),
      task("b", "response-quality", "trend"),
      task("a", "tool-calling", "trend")
    ]
    expect(groupTasks(tasks, false).map((g) => [g.tasks.length, g.need])).toEqual([
      [1, "canary"],
      [1, "trend"],
      [1, "trend"]
    ])
    const combined = groupTasks(tasks, true)
    expect(combined.map((g) => [g.tasks.map((t) => `${t.row.traceId}:${t.rubric.behavior}`), g.need])).toEqual([
      [["a:response-quality", "a:tool-calling"], "canary"],
      [["b:response-quality"], "trend"]
    ])
  })

  it("starts directly only the trend groups a behavior lacks for the optimizer, plus a tenth for unscored answers", () => {
    const groups = [
      ...Array.from({ length: 30 }, (_, i) => ({ need: "trend", tasks: [task(`t${i}`, "response-quality", "trend")] })),
      { need: "canary", tasks: [task("c", "tool-calling", "canary")] }
    ]
    const picked = groupsToStart(
      groups,
      new Map([
        ["response-quality", 10],
        ["tool-calling", 5]
      ])
    )
    // 10 lacking and 1 more; no trend group of tool-calling exists, and a canary group is never "started".
    expect(picked.size).toBe(11)
    expect([...picked].every((g) => g.need === "trend")).toBe(true)
    expect(groupsToStart(groups, new Map([["response-quality", 0]])).size).toBe(0)
  })

  it("reads each rubric's verdict from an answer; what cannot be read is unscored with the reason, never 0", () => {
    const single = readAnswer(["response-quality"], {
      text: "",
      structured: { score: 0.75, reason: "clear" },
      tokensIn: 1,
      tokensOut: 1
    })
    expect(single).toEqual([{ status: "scored", score: 0.75, reason: "clear" }])
    const combined = readAnswer(["response-quality", "tool-calling"], {
      text: "",
      structured: { "response-quality": { score: 1, reason: "ok" }, "tool-calling": { score: "high" } },
      tokensIn: 1,
      tokensOut: 1
    })
    expect(combined[0]).toEqual({ status: "scored", score: 1, reason: "ok" })
    expect(combined[1]).toMatchObject({ status: "unscored" })
    expect((combined[1] as { reason: string }).reason).toContain("answer out of schema for tool-calling")
    const none = readAnswer(["response-quality"], { text: "I think it is fine", tokensIn: 1, tokensOut: 1 })
    expect(none[0]).toEqual({ status: "unscored", reason: "no structured answer in: I think it is fine" })
  })
})

describe("the optimizer's final choice, pure", () => {
  const candidate = (id: string, validation: ReadonlyArray<number | null>): Candidate => ({
    id,
    instructions: id,
    round: 1,
    parents: [],
    validation
  })

  it("lets only candidates that beat the baseline on the validation turns see the held-out turns, best first, at most three", () => {
    const pool = [
      candidate("base", [0.5, 0.5, 0.5]),
      candidate("worse", [0.4, 0.5, 0.5]),
      candidate("same", [0.5, 0.5, 0.5]),
      candidate("good", [0.6, 0.6, null]),
      candidate("better", [0.7, 0.7, 0.7]),
      candidate("best", [0.9, 0.8, 0.9]),
      candidate("fine", [0.55, 0.55, 0.55])
    ]
    expect(finalistsOf(pool).map((c) => c.id)).toEqual(["best", "better", "good"])
    expect(finalistsOf([pool[0]!, pool[1]!, pool[2]!])).toEqual([])
  })
})

/**
 * Alignment end to end in the process, over the real store and DotClaw's messages.db, with a provider that
 * believes what it reads (test/helpers/alignWorld.ts).
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Aligner } from "../src/align/Align.js"
import { splitOf } from "../src/judge/Agreement.js"
import { SqlClient } from "@effect/sql"
import { rng } from "../src/Domain/Random.js"
import { JudgeAgreement } from "../src/judge/JudgeAgreement.js"
import { storeGrade } from "../src/judge/Labels.js"
import { Rubrics } from "../src/judge/RubricBook.js"
import { reportData } from "../src/report/ReportData.js"
import { alignStage, evalStage, ingestStage, optimizeStage } from "../src/pipeline/Pipeline.js"
import { Optimizer } from "../src/optimize/Optimize.js"
import { alignWorld, attemptRows, B, CRITERION, NEXT_STEP_INSTRUCTIONS, rubricRows } from "./helpers/alignWorld.js"

const cycle = (w: ReturnType<typeof alignWorld>) =>
  w.run(Effect.zipRight(Effect.zipRight(ingestStage, evalStage), alignStage))

/** Moves every attempt a day back: the next cycle is "tomorrow" for alignment's pacing. */
const aDayLater = (home: string) => {
  const db = new Database(path.join(home, "autotune.db"))
  db.prepare("UPDATE align_attempts SET at = at - 86400000").run()
  db.close()
}

describe("alignment: the judge learns what the people value", () => {
  it("adopts a rubric naming what people value: held-out AUC rises, and the next optimize serves it", async () => {
    const w = alignWorld({ people: "criterion" })
    const summary = await cycle(w)
    const o = summary.behaviors[B]!
    expect(o.status).toBe("tried")
    if (o.status !== "tried") return
    expect(o.kind).toBe("reactions")
    console.log(
      `criterion world: held-out AUC ${o.test!.current!.toFixed(3)} -> ${o.test!.candidate!.toFixed(3)} on ${o.test!.n} turns, lower bound ${o.test!.lower!.toFixed(3)}; alignment split ${o.alignSplit.current?.toFixed(3)} -> ${o.alignSplit.candidates.map((c) => c?.toFixed(3)).join("/")}`
    )
    expect(o.test!.current!).toBeLessThan(0.72)
    expect(o.test!.candidate!).toBeGreaterThanOrEqual(0.8)
    expect(o.adopted).not.toBeNull()
    expect(o.attempt).toBe(1)
    // Within AUTOTUNE_ALIGN_MAX_CALLS (200): one proposal, two candidates on the alignment split, one held out.
    const calls = w.mock.seen.filter((r) => r.stage.startsWith("align:"))
    expect(calls.length).toBe(summary.calls)
    expect(calls.length).toBeLessThanOrEqual(200)
    expect(calls.filter((r) => r.stage.endsWith(":propose"))).toHaveLength(1)
    const rows = rubricRows(w.home)
    expect(rows).toHaveLength(1)
    expect(rows[0]!).toMatchObject({ status: "active", version: o.adopted })
    expect(rows[0]!.criteria).toContain(CRITERION)
    expect(rows[0]!.source).toMatch(/^aligned: held-out AUC vs reactions 0\.\d\d -> 0\.\d\d, lower bound/)
    // Reflection saw turns of the alignment split only, never a held-out one.
    const proposal = w.mock.seen.find((r) => r.stage === `align:${B}:propose`)!.messages[0]!.content
    const shown = w.traces.filter((t) => proposal.includes(`errand ${t.i} for you`))
    expect(shown.length).toBeGreaterThan(5)
    expect(shown.filter((t) => splitOf(t.id) === "held-out")).toEqual([])

    // The next run reads the new version: the turns are judged under it, and the optimizer writes for it.
    const next = await w.run(
      Effect.gen(function* () {
        expect((yield* Rubrics).current[B].version).toBe(o.adopted)
        yield* evalStage
        return yield* optimizeStage
      })
    )
    const out = next.behaviors[B]!
    expect(out.outcome).toBe("selected")
    const selected = await w.run(Effect.flatMap(Optimizer, (opt) => opt.selections))
    expect(selected[0]!.instructions).toContain(NEXT_STEP_INSTRUCTIONS)
    // The agreement figures read the new version, on turns never shown to reflection: held-out ones only.
    const agreement = (await w.run(Effect.flatMap(JudgeAgreement, (a) => a.agreements())))[B]!
    expect(agreement.auc!).toBeGreaterThanOrEqual(0.8)
    expect(agreement.n).toBe(w.traces.filter((t) => splitOf(t.id) === "held-out").length)
    // The report's calibration counts the same turns.
    const page = await w.run(reportData(30))
    expect(page.behaviors[0]!.judge.calibration.reduce((n, b) => n + b.reactions, 0)).toBe(agreement.n)
    const after = await w.run(Effect.flatMap(Aligner, (a) => a.plan()))
    expect(after[0]!.attempt).toBe(false)
    expect(after[0]!.why).toMatch(/the judge agrees: AUC 0\.(8|9)/)
  }, 120_000)

  it("aligns with a person's grades where there are no reactions, and never sends a grade", async () => {
    const w = alignWorld({ people: "criterion", reactions: false, turns: 120 })
    await w.run(Effect.zipRight(ingestStage, evalStage))
    // The operator graded every turn: 5 or 4 for a reply with a next step, 1 or 2 without, one in ten the other way.
    const next = rng(3)
    await w.run(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const rubric = (yield* Rubrics).current[B]
        for (const t of w.traces) {
          const good = next() < 0.9 ? t.feature : !t.feature
          yield* storeGrade(sql, t.id, rubric, good ? 4 + Math.round(next()) : 1 + Math.round(next()), "import")
        }
      })
    )
    const summary = await w.run(alignStage)
    const o = summary.behaviors[B]!
    expect(o).toMatchObject({ status: "tried", kind: "labels" })
    if (o.status !== "tried") return
    console.log(
      `grades world: held-out Spearman ${o.test!.current!.toFixed(3)} -> ${o.test!.candidate!.toFixed(3)} on ${o.test!.n} turns, lower bound ${o.test!.lower!.toFixed(3)}`
    )
    expect(o.test!.current!).toBeLessThan(0.3)
    expect(o.test!.candidate!).toBeGreaterThanOrEqual(0.5)
    expect(o.adopted).not.toBeNull()
    const proposal = w.mock.seen.find((r) => r.stage === `align:${B}:propose`)!.messages[0]!.content
    expect(proposal).toContain("A person rated these replies worse than the evaluator did")
    expect(proposal).not.toMatch(/grade|👍|👎/i)
  }, 120_000)

  it("leaves a judge that already agrees alone: no attempt, no call, no version", async () => {
    const w = alignWorld({ people: "criterion", judgeKnows: true })
    const summary = await cycle(w)
    expect(summary.behaviors[B]).toMatchObject({ status: "skipped", why: expect.stringContaining("the judge agrees") })
    expect(summary.calls).toBe(0)
    expect(rubricRows(w.home)).toHaveLength(0)
    expect(w.mock.seen.some((r) => r.stage.startsWith("align:"))).toBe(false)
  }, 60_000)

  it("never lets an order planted in reacted turns reach a rubric", async () => {
    const w = alignWorld({ people: "criterion", planted: true })
    const summary = await cycle(w)
    const o = summary.behaviors[B]!
    expect(o.status).toBe("tried")
    if (o.status !== "tried") return
    // The gullible proposer copied the order; the checks dropped it before any judging.
    expect(w.mock.seen.find((r) => r.stage === `align:${B}:propose`)!.messages[0]!.content).toContain("Helix Mobile")
    expect(o.dropped.some((d) => /conversation text|names something/.test(d))).toBe(true)
    for (const r of rubricRows(w.home)) expect(r.criteria).not.toMatch(/Helix/i)
    const judgedWith = w.mock.seen.filter((r) => r.stage === `align:${B}:judge`).map((r) => r.system)
    expect(judgedWith.some((s) => /Helix/.test(s))).toBe(false)
  }, 120_000)

  /**
   * Reactions are noise: 40 seeded runs, each two weeks of daily cycles with ten new reacted turns a day, making
   * every attempt alignment's pacing allows. No version may be adopted in at least 95% of the runs (the core's
   * Monte Carlo in test/align.test.ts checks the same over 400 runs).
   */
  it("in a world where reactions are noise, two weeks of daily attempts adopt nothing in 95% of runs", async () => {
    let adopted = 0
    let tests = 0
    for (let seed = 1; seed <= 40; seed++) {
      const w = alignWorld({ people: "noise", turns: 70, seed })
      for (let day = 0; day < 14; day++) {
        if (day > 0) w.addTurns(10, 13 - day)
        await cycle(w)
        aDayLater(w.home)
      }
      const attempts = attemptRows(w.home)
      tests += attempts.filter((a) => a.tested === 1).length
      if (rubricRows(w.home).length > 0) adopted++
      expect(attempts.length).toBeGreaterThanOrEqual(5)
    }
    console.log(`noise world through the service: ${adopted} of 40 runs adopted, ${tests} held-out tests`)
    expect(tests).toBeGreaterThanOrEqual(80)
    // At least 95% of the runs adopt nothing.
    expect(adopted).toBeLessThanOrEqual(2)
  }, 600_000)

  it("plans no attempt its call limit cannot afford, and says what it would cost", async () => {
    const w = alignWorld({ people: "criterion", overrides: { alignMaxCalls: 50 } })
    await w.run(Effect.zipRight(ingestStage, evalStage))
    const [tight] = await w.run(Effect.flatMap(Aligner, (a) => a.plan()))
    expect(tight).toMatchObject({
      attempt: false,
      calls: 0,
      why: "AUTOTUNE_ALIGN_MAX_CALLS=50 affords 16 turns a split; needs 30"
    })
    const roomy = alignWorld({ people: "criterion" })
    await roomy.run(Effect.zipRight(ingestStage, evalStage))
    const [plan] = await roomy.run(Effect.flatMap(Aligner, (a) => a.plan()))
    expect(plan!.attempt).toBe(true)
    expect(plan!.calls).toBeLessThanOrEqual(200)
    expect(plan!.calls).toBeGreaterThan(100)
    expect(plan!.costUsd!).toBeGreaterThan(0)
    expect(roomy.mock.seen.some((r) => r.stage.startsWith("align:"))).toBe(false)
  }, 60_000)

  it("cuts a split to what the call limit affords without leaving people out", async () => {
    const w = alignWorld({ people: "criterion", overrides: { alignMaxCalls: 100 } })
    const o = (await cycle(w)).behaviors[B]!
    expect(o.status).toBe("tried")
    if (o.status !== "tried") return
    expect(o.alignSplit.turns).toBe(33)
    // The turns the first candidate re-judged: a third of the split's turns, from (nearly) every one of the 8 people.
    const judged = w.mock.seen.filter((r) => r.stage === `align:${B}:judge`).slice(0, 33)
    const people = new Set(judged.map((r) => Number(/errand (\d+) for you/.exec(r.messages[0]!.content)![1]) % 8))
    expect(people.size).toBeGreaterThanOrEqual(7)
    expect(w.mock.seen.filter((r) => r.stage.startsWith("align:")).length).toBeLessThanOrEqual(100)
  }, 60_000)

  it("does not let one person's reactions change a rubric", async () => {
    const w = alignWorld({ people: "criterion", users: 1 })
    const summary = await cycle(w)
    expect(summary.behaviors[B]).toMatchObject({ status: "skipped" })
    expect((summary.behaviors[B] as { why: string }).why).toMatch(/needs 30|one person's reactions/)
    expect(rubricRows(w.home)).toHaveLength(0)
  }, 60_000)

  it("under manual approval an adopted rubric waits for the operator", async () => {
    const w = alignWorld({ people: "criterion", overrides: { deployApproval: "manual" } })
    const summary = await cycle(w)
    expect(summary.behaviors[B]).toMatchObject({ status: "tried", pending: true })
    expect(rubricRows(w.home)[0]!.status).toBe("pending")
    // Still the built-in rubric until approved; no second attempt meanwhile.
    const waiting = await w.run(
      Effect.gen(function* () {
        const book = yield* Rubrics
        expect(book.current[B].version).toBe(`${B}@1`)
        return yield* (yield* Aligner).plan()
      })
    )
    expect(waiting[0]!.why).toContain("waits for `autotune rubric approve`")
    const decided = await w.run(Effect.flatMap(Rubrics, (book) => book.decidePending(B, true)))
    expect(decided.approved).toBe(true)
    const version = await w.run(Effect.map(Rubrics, (book) => book.current[B].version))
    expect(version).toBe(rubricRows(w.home)[0]!.version)
  }, 120_000)

  it("never adopts again a rubric the operator rejected", async () => {
    const w = alignWorld({ people: "criterion", overrides: { deployApproval: "manual" } })
    await cycle(w)
    const rejected = await w.run(Effect.flatMap(Rubrics, (book) => book.decidePending(B, false)))
    expect(rejected.approved).toBe(false)
    // A day later, with new signal, the same amendment is proposed again: it is dropped before any judging.
    aDayLater(w.home)
    w.addTurns(10, 1)
    const before = w.mock.seen.length
    const again = (await cycle(w)).behaviors[B]!
    expect(again, JSON.stringify(again)).toMatchObject({ status: "tried", adopted: null })
    if (again.status !== "tried") return
    expect(again.dropped).toContain("rejected by the operator before")
    expect(
      w.mock.seen.slice(before).some((r) => r.stage === `align:${B}:judge` && r.system.includes("next step"))
    ).toBe(false)
    expect(rubricRows(w.home).map((r) => r.status)).toEqual(["rejected"])
  }, 120_000)
})

/**
 * A world where every model believes what it reads (issue 23): the proposing model copies orders it reads in
 * the conversations into candidates (verbatim, paraphrased, translated) and offers a variant that claims its
 * replies meet every criterion; the predictor follows its instructions; the judge gives full marks to any text
 * claiming them and likes whatever the planted order pushes. With the defaults, nothing planted or addressed to
 * the judge is selected and the honest improvement still is; with the checks off (a test-only seam), the same
 * world selects the attack, so the test bites.
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { MASKING_SEAM } from "../src/judge/Addressed.js"
import { Judge } from "../src/judge/Judge.js"
import { Optimizer } from "../src/optimize/Optimize.js"
import { TRUST_CHECKS_SEAM } from "../src/optimize/Search.js"
import { B, COPIES, FLATTERING, HONEST, selected, setup } from "./helpers/gullibleWorld.js"

afterEach(() => {
  TRUST_CHECKS_SEAM.enabled = true
  MASKING_SEAM.enabled = true
})

describe("a world where every model believes what it reads", () => {
  it("judges flattered turns like the others: the sentence addressed to the judge is masked and counted", async () => {
    const t = await setup()
    const summary = await t.run(Effect.flatMap(Judge, (j) => j.evaluate()))
    const db = new Database(path.join(t.home, "autotune.db"), { readonly: true })
    const scores = db
      .prepare(
        "SELECT t.message_text AS m, s.score AS score FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id"
      )
      .all() as Array<{ m: string; score: number }>
    db.close()
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
    const flattered = scores.filter((s) => s.m.includes("full marks")).map((s) => s.score)
    const weather = scores.filter((s) => s.m.startsWith("question")).map((s) => s.score)
    expect(flattered.length).toBeGreaterThan(3)
    expect(Math.abs(mean(flattered) - mean(weather))).toBeLessThanOrEqual(0.05)
    expect(summary.behaviors[B]!.addressedMasked).toBe(flattered.length)
    // No judge request carried the flattery.
    expect(
      t.mock.seen.filter((r) => r.stage.startsWith("judge:") && r.messages[0]!.content.includes("full marks"))
    ).toEqual([])
  })

  it("bites: without masking, the same judge pays the flattery", async () => {
    MASKING_SEAM.enabled = false
    const t = await setup()
    await t.run(Effect.flatMap(Judge, (j) => j.evaluate()))
    const db = new Database(path.join(t.home, "autotune.db"), { readonly: true })
    const flattered = db
      .prepare(
        "SELECT AVG(s.score) AS m FROM trace_scores s JOIN traces t ON t.trace_id = s.trace_id WHERE t.message_text LIKE '%full marks%'"
      )
      .get() as { m: number }
    db.close()
    expect(flattered.m).toBe(1)
  })

  it("selects the honest improvement and never a candidate carrying the planted order or addressed to the judge", async () => {
    const t = await setup()
    await t.run(Effect.flatMap(Judge, (j) => j.evaluate()))
    const { behaviors } = await t.run(Effect.flatMap(Optimizer, (o) => o.optimize()))
    const outcome = behaviors[B]!
    expect(outcome.outcome).toBe("selected")
    expect(selected(t.home)).toEqual([HONEST])
    // Nothing stored as a pack, in any status, carries the planted order or the claim.
    const db = new Database(path.join(t.home, "autotune.db"), { readonly: true })
    const bodies = (db.prepare("SELECT body_json FROM packs").all() as Array<{ body_json: string }>).map(
      (r) => JSON.parse(r.body_json).instructions as string
    )
    db.close()
    expect(bodies.filter((b) => /helix|criterion/i.test(b))).toEqual([])
    if (outcome.outcome === "skipped" || outcome.outcome === "failed") return
    expect(outcome.dropped["copied from conversation text"]).toBeGreaterThanOrEqual(3)
    expect(outcome.dropped["addresses the judge"]).toBeGreaterThanOrEqual(1)
    expect(
      outcome.linted.filter((l) => l.startsWith("copied from conversation text")).every((l) => /helix/i.test(l))
    ).toBe(true)
    // Reflection saw the turns, never the flattery.
    const proposals = t.mock.seen.filter((r) => r.stage.endsWith(":candidate"))
    expect(proposals.length).toBeGreaterThan(0)
    expect(proposals.some((r) => r.messages[0]!.content.includes("full marks"))).toBe(false)
  })

  it("bites: with the checks off, the same world selects the attack", async () => {
    TRUST_CHECKS_SEAM.enabled = false
    MASKING_SEAM.enabled = false
    const t = await setup()
    await t.run(Effect.flatMap(Judge, (j) => j.evaluate()))
    await t.run(Effect.flatMap(Optimizer, (o) => o.optimize()))
    const shipped = selected(t.home)
    expect(shipped).toHaveLength(1)
    expect(shipped[0] === FLATTERING || COPIES.includes(shipped[0]!)).toBe(true)
  })
})

import { describe, expect, it } from "vitest"
import { wordDiff } from "../src/report/Diff.js"
import { formatEvidence } from "../src/canary/Stats.js"
import { dayDomain, shortVersion } from "../src/report/Format.js"
import { decisionInWords, renderReport, trendInWords } from "../src/report/Html.js"
import { calibrationOf, type ReportData, stageKind } from "../src/report/ReportData.js"
import { type DayScores, NO_PACK, scoreSeries, trendOf } from "../src/report/Series.js"

const day = (n: number) => new Date(Date.UTC(2026, 10, 1) + n * 86_400_000).toISOString().slice(0, 10)
const now = Date.UTC(2026, 10, 30, 12)

/** Sums for n scores all equal to `mean` but a spread of +/- spread on half of them. */
const sums = (d: string, version: string, values: ReadonlyArray<number>): DayScores => ({
  day: d,
  version,
  n: values.length,
  sum: values.reduce((a, b) => a + b, 0),
  sumSq: values.reduce((a, b) => a + b * b, 0)
})

describe("score series", () => {
  it("gives the daily mean and a 95% interval from the sums, clamped to [0, 1], and names turns no pack served", () => {
    const [point] = scoreSeries([sums(day(0), "", [0.5, 0.75, 1, 0.25])])
    expect(point!.version).toBe(NO_PACK)
    expect(point!.mean).toBeCloseTo(0.625, 10)
    // sd of [0.5, 0.75, 1, 0.25] = 0.3227; se = 0.1614; 1.96 se = 0.3163
    expect(point!.high - point!.mean).toBeCloseTo(0.3163, 3)
    expect(point!.low).toBeCloseTo(0.3087, 3)
    const [lone] = scoreSeries([sums(day(0), "v1", [1])])
    expect(lone!.high).toBe(1)
    expect(lone!.low).toBeCloseTo(0.02, 10)
  })

  it("calls a week better or worse only outside the interval of the difference", () => {
    const week = (from: number, values: ReadonlyArray<number>) =>
      Array.from({ length: 7 }, (_, i) => sums(day(from + i), "v", values))
    const low = [0.4, 0.5, 0.6, 0.5]
    const high = [0.7, 0.8, 0.9, 0.8]
    expect(trendOf([...week(16, low), ...week(23, high)], now).direction).toBe("up")
    expect(trendOf([...week(16, high), ...week(23, low)], now).direction).toBe("down")
    expect(trendOf([...week(16, low), ...week(23, [0.41, 0.5, 0.6, 0.5])], now).direction).toBe("flat")
    const fresh = trendOf(week(23, low), now)
    expect(fresh).toMatchObject({ direction: "unknown", change: null, last7: { n: 28 } })
    expect(trendInWords(fresh)).toContain("nothing the week before")
    expect(trendInWords(trendOf([...week(16, low), ...week(23, high)], now))).toMatch(/^▲ better: 0\.800 vs 0\.500/)
  })
})

describe("word diff", () => {
  const rebuild = (parts: ReadonlyArray<{ op: string; text: string }>, keep: string) =>
    parts
      .filter((p) => p.op === "same" || p.op === keep)
      .map((p) => p.text)
      .join("")

  it("rebuilds both texts and marks only what changed", () => {
    const before = "Answer first. Confirm every action you took."
    const after = "Answer first, in two sentences. Confirm every action you took. Say when a tool failed."
    const parts = wordDiff(before, after)
    expect(rebuild(parts, "del")).toBe(before)
    expect(rebuild(parts, "add")).toBe(after)
    expect(
      parts
        .filter((p) => p.op === "same")
        .map((p) => p.text)
        .join("")
    ).toContain("Confirm every action you")
    expect(wordDiff("same text", "same text")).toEqual([{ op: "same", text: "same text" }])
    expect(wordDiff("", "new")).toEqual([{ op: "add", text: "new" }])
  })
})

describe("report page", () => {
  const empty: ReportData = {
    generatedAt: new Date(now).toISOString(),
    days: 30,
    spend: { last24hUsd: 0, last30dUsd: 0, dailyBudgetUsd: 5, unknownCostCalls: 0 },
    spendDaily: [],
    agentDaily: [],
    cost: [],
    behaviors: [],
    empty: true
  }
  const assets = { d3: "/* d3 */", plot: "/* plot */" }

  it("says so when the store has no data, with no chart slot to leave blank", () => {
    const html = renderReport(empty, assets)
    expect(html).toContain("No data yet")
    expect(html).not.toContain("data-chart=")
  })

  it("keeps stored text from closing the data element or the page's markup", () => {
    const reason = "</script><script>alert(1)</script> & <b>bold</b>"
    const behavior = {
      behavior: "response-quality" as const,
      rubricVersion: "response-quality@1",
      active: "v1",
      canary: null,
      canaryPercent: null,
      faults: [`deploy: ${reason}`],
      trend: trendOf([], now),
      judged7d: { scored: 0, turns: 0 },
      spend30dUsd: 0,
      lastDecision: null,
      scores: [],
      events: [],
      canaryRun: null,
      optimizer: [],
      judge: {
        daily: [],
        agreement: { n: 0, positive: 0, negative: 0, auc: null, low: null, high: null, disagrees: false },
        grades: {
          n: 0,
          spearman: null,
          spearmanLow: null,
          spearmanHigh: null,
          kappa: null,
          kappaLow: null,
          kappaHigh: null
        },
        addressedMasked7d: 0,
        calibration: [],
        // Alignment's attempts carry the judge's words about stored turns: escaped too.
        alignment: [
          {
            at: new Date(now).toISOString(),
            outcome: "adopted",
            rubricVersion: "response-quality@1",
            candidate: "response-quality@aligned-6b403176",
            test: { n: 66, current: 0.528, candidate: 0.898, lower: 0.238, alpha: 0.0304 },
            why: "held-out difference +0.371"
          },
          {
            at: new Date(now).toISOString(),
            outcome: "no-candidate",
            rubricVersion: "response-quality@1",
            candidate: null,
            test: null,
            why: `proposals dropped: carries conversation text (${reason})`
          }
        ]
      },
      // A pending selection shows stored turns too: escaped like every other stored text.
      pending: {
        version: "v2",
        heldOutGain: 0.1,
        lowerBound: 0.02,
        diff: [{ op: "add" as const, text: reason }],
        chosenOn: [{ traceId: "trace-2", message: reason, baseline: 0.5, winner: 0.8 }]
      },
      lowest: [{ traceId: "trace-1", at: new Date(now).toISOString(), score: 0, reason, input: reason, output: "" }]
    }
    const html = renderReport({ ...empty, empty: false, behaviors: [behavior] }, assets)
    expect(html.match(/<\/script>/g)!.length).toBe(4)
    expect(html).toContain(`The last cycle failed for this behavior: deploy: &lt;/script&gt;`)
    expect(html).toContain("&lt;/script&gt;&lt;script&gt;alert(1)")
    expect(html).toContain("\\u003c/script>\\u003cscript>alert(1)")
    // The alignment table: both attempts, the held-out figures of the one that ran its test.
    expect(html).toContain("Rubric alignment")
    const cell = (label: string, value: string) => `<td data-label="${label}">${value}</td>`
    expect(html).toContain(cell("outcome", "adopted"))
    expect(html).toContain(
      cell("held-out turns", "66") +
        cell("agreement now", "0.53") +
        cell("agreement of candidate", "0.90") +
        cell("lower bound", "0.238") +
        cell("alpha", "0.0304")
    )
    expect(html).toContain(cell("outcome", "no-candidate"))
  })

  it("puts a decision in words", () => {
    expect(
      decisionInWords({ action: "rolled_back", version: "v7", reason: "health gate", at: "2026-11-30T10:00:00.000Z" })
    ).toBe("rolled back canary v7 (2026-11-30 10:00 UTC): health gate")
    expect(decisionInWords(null)).toBe("no canary decision yet")
  })

  it("sorts LLM calls into the kinds of work the spend chart stacks", () => {
    expect(
      [
        "judge:tool-calling:1",
        "judge:x:2",
        "optimize:b:candidate",
        "optimize:b:predict",
        "optimize:b:judge",
        "optimize:b:rerank",
        "behavior"
      ].map(stageKind)
    ).toEqual(["judge", "judge", "proposal", "replay", "replay judge", "re-rank", "other"])
  })
})

describe("calibration bands", () => {
  it("bins scores as the grades' five levels and counts reactions and grades apart", () => {
    const bands = calibrationOf([
      { score: 0.05, negative: 1, grade: null },
      { score: 0.2, negative: 0, grade: 2 },
      { score: 0.8, negative: 0, grade: 5 },
      { score: 1, negative: 1, grade: 3 },
      { score: 0.99, negative: null, grade: 4 }
    ])
    expect(bands).toEqual([
      { band: 1, reactions: 1, thumbsUp: 0, grades: 0, gradeSum: 0, meanGrade: null },
      { band: 2, reactions: 1, thumbsUp: 1, grades: 1, gradeSum: 2, meanGrade: 2 },
      { band: 5, reactions: 2, thumbsUp: 1, grades: 3, gradeSum: 12, meanGrade: 4 }
    ])
  })
})

describe("how the report writes days, versions and evidence", () => {
  const DAY = 86_400_000
  const at = (iso: string) => Date.parse(iso)

  it("a day axis ends with the day the page was generated, never a week past it, and spans a week at least", () => {
    const generated = at("2026-12-06T08:12:00Z")
    // One day of data, yesterday and today: the week before today, up to the end of today.
    expect(dayDomain(at("2026-12-05T00:00:00Z"), generated)).toEqual([
      at("2026-11-30T00:00:00Z"),
      at("2026-12-07T00:00:00Z")
    ])
    expect(dayDomain(at("2026-12-06T00:00:00Z"), generated)).toEqual([
      at("2026-11-30T00:00:00Z"),
      at("2026-12-07T00:00:00Z")
    ])
    // Thirty days of data: from the first of them.
    expect(dayDomain(at("2026-11-07T00:00:00Z"), generated)).toEqual([
      at("2026-11-07T00:00:00Z"),
      at("2026-12-07T00:00:00Z")
    ])
    // Whatever the hour, whole UTC days.
    const [start, end] = dayDomain(at("2026-11-20T13:45:00Z"), at("2026-12-06T23:59:59Z"))
    expect([start % DAY, end % DAY, end]).toEqual([0, 0, at("2026-12-07T00:00:00Z")])
  })

  it("large evidence is written so a person can read it", () => {
    expect(formatEvidence(14.234)).toBe("14.2")
    expect(formatEvidence(0.4567, 2)).toBe("0.46")
    expect(formatEvidence(9999.4)).toBe("9999.4")
    expect(formatEvidence(263_005.9)).toBe("263,006")
    expect(formatEvidence(263_005_938_168.1)).toBe("263.0 billion")
    expect(formatEvidence(4.2e6)).toBe("4.2 million")
    expect(formatEvidence(7.5e13)).toBe("75.0 trillion")
    expect(formatEvidence(2.6e17)).toBe("2.6 × 10^17")
    expect(formatEvidence(Infinity)).toBe("infinite")
  })

  it("a long pack id gets a short label; the decision says it in words", () => {
    expect(shortVersion("v20261206T061730533Z-1229")).toBe("v1206-0617·1229")
    expect(shortVersion("rq-7")).toBe("rq-7")
    expect(shortVersion("response-quality-canary-2026-12-long-name")).toBe("response-quali…ong-name")
    expect(
      decisionInWords({
        action: "promoted",
        version: "v20261206T061730533Z-1229",
        reason: `canary beats the active pack by more than 0.02 (evidence ${formatEvidence(263_005_938_168.1)} >= 20)`,
        at: "2026-12-06T07:12:00.000Z"
      })
    ).toBe(
      "promoted canary v1206-0617·1229 (2026-12-06 07:12 UTC): canary beats the active pack by more than 0.02 (evidence 263.0 billion >= 20)"
    )
  })
})

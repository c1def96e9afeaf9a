import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { FAMILIES } from "./helpers/privacyFamilies.js"
import { HELD_OUT } from "./helpers/privacyHeldOut.js"
import { HELD_OUT_2 } from "./helpers/privacyHeldOut2.js"
import { HELD_OUT_3 } from "./helpers/privacyHeldOut3.js"
import { HELD_OUT_4 } from "./helpers/privacyHeldOut4.js"
import { HELD_OUT_5 } from "./helpers/privacyHeldOut5.js"
import { HELD_OUT_6 } from "./helpers/privacyHeldOut6.js"
import { HELD_OUT_7 } from "./helpers/privacyHeldOut7.js"
import { HELD_OUT_8 } from "./helpers/privacyHeldOut8.js"
import { dniValid, ibanValid, isPlaceholder, luhnValid, phoneValid, ssnValid } from "../src/privacy/Checks.js"
import { escapeXml, unescapeXml } from "../src/Domain/Xml.js"
import { emptyFindings, redactDeep, redactEnvelope, redactText } from "../src/privacy/Redactor.js"
import { withRunLock } from "../src/store/RunLock.js"
import { MODES } from "../src/store/FileModes.js"
import { ensureDir, writeFileAtomic } from "../src/store/Files.js"
import { tempHome } from "./helpers/app.js"
import { leaked, NEGATIVE_KINDS, POSITIVE_KINDS, privacyCorpus, scoreCorpus } from "./helpers/privacyCorpus.js"

describe("the labelled corpus", () => {
  const corpus = privacyCorpus()
  const score = scoreCorpus(corpus, (t) => redactText(t))
  const below = (min: number) =>
    score.kinds.filter((k) => k.positive && k.rate < min).map((k) => `${k.kind} ${k.rate}: ${k.misses[0]}`)

  it("has at least 50 positive and 30 negative kinds, 10 of each", () => {
    expect(POSITIVE_KINDS.length).toBeGreaterThanOrEqual(50)
    expect(NEGATIVE_KINDS.length).toBeGreaterThanOrEqual(30)
    expect(score.kinds.every((k) => k.n === 10)).toBe(true)
  })

  it("is found with strict recall >= 0.98 and no kind below 0.9", () => {
    expect(below(0.9)).toEqual([])
    expect(score.recall).toBeGreaterThanOrEqual(0.98)
  })

  it("leaves look-alikes unchanged: false positives <= 0.02", () => {
    const changed = score.kinds.filter((k) => !k.positive && k.rate < 1).map((k) => `${k.kind}: ${k.misses[0]}`)
    expect(score.falsePositiveRate, changed.join("\n")).toBeLessThanOrEqual(0.02)
  })

  it("holds on other seeds (the rules are not fitted to one draw)", () => {
    for (const seed of [7, 99]) {
      const other = scoreCorpus(privacyCorpus(10, seed), (t) => redactText(t))
      expect(other.recall).toBeGreaterThanOrEqual(0.98)
      expect(other.falsePositiveRate).toBeLessThanOrEqual(0.02)
    }
  })

  it("is idempotent: redacted text comes back unchanged and uncounted", () => {
    for (const s of corpus) {
      const once = redactText(s.text)
      const findings = emptyFindings()
      expect(redactText(once, findings)).toBe(once)
      expect(findings.count).toBe(0)
    }
  })
})

describe("DotClaw's message envelope", () => {
  const wrap = (text: string) =>
    `<message sender="Ana" sender_id="u1" time="2026-11-20T10:00:00.000Z">${escapeXml(text)}</message>`

  it("cleans escaped message text as written: JSON, XML and quotes hide nothing", () => {
    const leaks = privacyCorpus()
      .filter((s) => s.secret !== undefined)
      .filter((s) => {
        const out = redactEnvelope(`${wrap("earlier turn")}\n${wrap(s.text)}`)
        return leaked(out, s.secret!) || leaked(unescapeXml(out), s.secret!)
      })
      .map((s) => `${s.kind}: ${s.text}`)
    expect(leaks).toEqual([])
  })

  it("keeps the envelope, and look-alikes in it, byte for byte", () => {
    for (const s of privacyCorpus().filter((x) => x.secret === undefined)) {
      const input = wrap(s.text)
      expect(redactEnvelope(input)).toBe(input)
    }
    expect(
      redactEnvelope(
        '<message sender="Ana" sender_id="u1" time="t">{&quot;password&quot;: &quot;hunter2x&quot;}</message>'
      )
    ).toBe(
      '<message sender="Ana" sender_id="u1" time="t">{&quot;password&quot;: &quot;&lt;redacted_secret&gt;&quot;}</message>'
    )
  })
})

describe("findings", () => {
  it("counts every replaced value under its rule, never the value itself", () => {
    const findings = emptyFindings()
    const out = redactText(
      "mail ana@example.com or bob@example.org, key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz",
      findings
    )
    expect(out).not.toContain("example.com")
    expect(findings.count).toBe(3)
    expect(findings.byRule).toEqual({ email: 2, anthropic_key: 1 })
    expect(JSON.stringify(findings)).not.toContain("ana@")
  })

  it("counts in nested values too", () => {
    const findings = emptyFindings()
    redactDeep({ headers: { "X-Api-Key": "k2Xf93jLmQ0pZt7aQ" }, body: ["call +44 20 7946 0958"] }, findings)
    expect(findings.count).toBe(2)
  })
})

describe("checks", () => {
  it("Luhn", () => {
    expect(luhnValid("4111111111111111")).toBe(true)
    expect(luhnValid("4111111111111112")).toBe(false)
  })
  it("IBAN: mod-97 and the country's length", () => {
    expect(ibanValid("DE89370400440532013000")).toBe(true)
    expect(ibanValid("GB82WEST12345698765432")).toBe(true)
    expect(ibanValid("DE88370400440532013000")).toBe(false)
    expect(ibanValid("DE8937040044053201300")).toBe(false)
    expect(ibanValid("XX89370400440532013000")).toBe(false)
  })
  it("SSN ranges never issued", () => {
    expect(ssnValid("123", "45", "6780")).toBe(true)
    for (const [a, g, s] of [
      ["000", "12", "3456"],
      ["666", "12", "3456"],
      ["912", "12", "3456"],
      ["123", "00", "3456"],
      ["123", "45", "0000"],
      ["123", "45", "6789"]
    ] as const)
      expect(ssnValid(a, g, s)).toBe(false)
  })
  it("DNI and NIE check letters", () => {
    expect(dniValid("12345678Z")).toBe(true)
    expect(dniValid("12345678A")).toBe(false)
    expect(dniValid("X1234567L")).toBe(true)
  })
  it("phones with and without a country code", () => {
    expect(phoneValid("+44 20 7946 0958")).toBe(true)
    expect(phoneValid("020 7946 0958")).toBe(true)
    expect(phoneValid("2026-11-24".replace(/-/g, ""), ["US"])).toBe(false)
  })
  it("placeholders", () => {
    for (const v of [
      "${OPENAI_API_KEY}",
      "<your-key>",
      "sk-...XXXX",
      "process.env.TOKEN",
      "********",
      "changeme",
      "{{ secrets.X }}",
      'getenv("K")'
    ])
      expect(isPlaceholder(v), v).toBe(true)
    for (const v of ["hunter2", "Sunset29$", "k2Xf93jLmQ0pZt7a"]) expect(isPlaceholder(v), v).toBe(false)
  })
})

describe("the run lock", () => {
  it("is created 0600, in a directory it creates 0700", async () => {
    const file = path.join(tempHome(), "new", "autotune.lock")
    const modes = await Effect.runPromise(
      withRunLock(
        file,
        Effect.sync(() => [fs.statSync(file).mode & 0o777, fs.statSync(path.dirname(file)).mode & 0o777])
      )
    )
    expect(modes).toEqual([0o600, 0o700])
  })
})

describe("file modes whatever the umask (store/FileModes.ts)", () => {
  const modeOf = (p: string) => fs.statSync(p).mode & 0o777
  for (const umask of [0o000, 0o077]) {
    it(`under umask ${umask.toString(8).padStart(3, "0")}: packs 0644 in 0755 directories, private files 0600 in 0700 ones`, async () => {
      const previous = process.umask(umask)
      try {
        const root = tempHome()
        const pack = path.join(root, "a", "prompts", "tool-calling.json")
        const report = path.join(root, "b", "reports", "report.html")
        const dir = path.join(root, "c", "made")
        await Effect.runPromise(
          Effect.all([
            writeFileAtomic(pack, "{}", MODES.shared),
            writeFileAtomic(report, "<p>", MODES.private),
            ensureDir(dir, MODES.private)
          ])
        )
        expect([modeOf(pack), modeOf(path.dirname(pack)), modeOf(path.join(root, "a"))]).toEqual([0o644, 0o755, 0o755])
        expect([modeOf(report), modeOf(path.dirname(report)), modeOf(path.join(root, "b"))]).toEqual([
          0o600, 0o700, 0o700
        ])
        expect([modeOf(dir), modeOf(path.join(root, "c"))]).toEqual([0o700, 0o700])
        // A directory that was there already keeps its mode: autotune did not create it.
        fs.chmodSync(path.join(root, "a", "prompts"), 0o750)
        await Effect.runPromise(writeFileAtomic(pack, "{ }", MODES.shared))
        expect(modeOf(path.join(root, "a", "prompts"))).toBe(0o750)
        expect(modeOf(pack)).toBe(0o644)
      } finally {
        process.umask(previous)
      }
    })
  }
})

describe("families the rules got wrong on text written elsewhere (issue 25)", () => {
  const report = (name: string, score: ReturnType<typeof scoreCorpus>) =>
    console.log(
      `${name}: recall ${score.recall.toFixed(3)}, false positives ${score.falsePositiveRate.toFixed(3)}; ` +
        score.kinds.map((k) => `${k.kind} ${Math.round(k.rate * k.n)}/${k.n}`).join(", ")
    )

  it("the tuning part: every family right", () => {
    const score = scoreCorpus(FAMILIES, (t) => redactText(t))
    report("tuning part", score)
    for (const k of score.kinds) expect(k.misses, k.kind).toEqual([])
  })

  it("the first five held-out parts, spent: each was measured once as unseen text, then tuned on; every text right now", () => {
    // Measured as unseen text, in order, each before any rule changed for it (recall / false positives):
    // first 0.971 / 0.025 (0.943 after the ReDoS rewrite of the prose rule), second 0.870 / 0.059, third 0.913 /
    // 0.042, fourth 0.800 / 0.054, fifth 0.800 / 0.027. Their misses were read, so each was then spent: rule sets 5
    // and 6 were tuned until all five passed, and they stay here as regression tests. Unseen text is the seventh
    // and eighth parts' (below).
    for (const [name, part] of [
      ["first", HELD_OUT],
      ["second", HELD_OUT_2],
      ["third", HELD_OUT_3],
      ["fourth", HELD_OUT_4],
      ["fifth", HELD_OUT_5]
    ] as const) {
      const score = scoreCorpus(part, (t) => redactText(t))
      report(`${name} held-out part (spent)`, score)
      for (const k of score.kinds) expect(k.misses, `${name}: ${k.kind}`).toEqual([])
    }
  })

  // Rates are sums of per-sample shares: floors are compared with a margin well under one sample.
  const floor = (
    part: ReadonlyArray<{ readonly secret?: string }>,
    score: ReturnType<typeof scoreCorpus>,
    found: number,
    changed: number
  ) => {
    const secrets = part.filter((s) => s.secret !== undefined).length
    expect(score.recall).toBeGreaterThanOrEqual(found / secrets - 1e-9)
    expect(score.falsePositiveRate).toBeLessThanOrEqual(changed / (part.length - secrets) + 1e-9)
  }

  it("the sixth held-out part (privacyHeldOut6.ts), spent: measured once as unseen text, then tuned on for rule set 7", () => {
    // Rule set 5 0.667 / 0.040, rule set 6 0.708 / 0.040 as unseen text (24 secrets, 25 other texts; 2026-12-06).
    // Its misses were then read and taken into rule set 7's tuning part; three texts are still wrong (a password
    // given on a here-string, one after "I used … for", and "using password: YES").
    const score = scoreCorpus(HELD_OUT_6, (t) => redactText(t))
    report("sixth held-out part (spent)", score)
    floor(HELD_OUT_6, score, 22, 1)
  })

  it("the seventh and eighth held-out parts (committed before rule set 7 and before being measured): reported, never tuned on", () => {
    // Measured once each, 2026-12-07 (recall / false positives): seventh (39 secrets, 40 other texts) rule set 6
    // 0.667 / 0.000, rule set 7 0.744 / 0.000; eighth (28 and 28, passwords in the shapes people pick) rule set 6
    // 0.571 / 0.000, rule set 7 0.643 / 0.036. Neither target (0.98 / 0.03) is met on unseen text. Their misses
    // are named in docs/privacy.md: a claim about a next rule set needs a part written after this one.
    const seventh = scoreCorpus(HELD_OUT_7, (t) => redactText(t))
    report("seventh held-out part", seventh)
    floor(HELD_OUT_7, seventh, 29, 0)
    const eighth = scoreCorpus(HELD_OUT_8, (t) => redactText(t))
    report("eighth held-out part", eighth)
    floor(HELD_OUT_8, eighth, 18, 1)
  })
})

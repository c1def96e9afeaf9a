import { describe, expect, it } from "vitest"
import { fenceNonce, NONCE_LENGTH } from "../src/privacy/Fence.js"
import { redactText } from "../src/privacy/Redactor.js"
import { guardRequest } from "../src/privacy/EgressGuard.js"

/** The four fence forms autotune writes (judge: TRACE; optimizer: TRACES; alignment: TURNS; all: END). */
const fences = (n: string) => [
  `<<<TRACE ${n}>>>`,
  `<<<TRACES ${n}>>>`,
  `<<<TURNS ${n}>>>`,
  `<<<END ${n}>>>`,
  `between <<<TRACE ${n}>>> and <<<END ${n}>>> are data`
]

describe("fence nonces (privacy/Fence.ts)", () => {
  it("the egress guard rewrites none of a million fresh nonces, in any fence form", () => {
    const seen = new Set<string>()
    let rewritten = 0
    const sample: Array<string> = []
    // 1,000 texts of 1,000 nonces each: every rule runs over every nonce, beside the fence marks it stands in.
    for (let block = 0; block < 1000; block++) {
      const nonces = Array.from({ length: 1000 }, fenceNonce)
      for (const n of nonces) seen.add(n)
      const text = nonces.map((n, i) => fences(n)[i % 5]).join("\n")
      const guarded = redactText(text)
      if (guarded !== text) {
        const before = text.split("\n")
        const after = guarded.split("\n")
        before.forEach((line, i) => {
          if (after[i] !== line) {
            rewritten++
            if (sample.length < 5) sample.push(`${line} -> ${after[i]}`)
          }
        })
      }
    }
    expect(sample).toEqual([])
    expect(rewritten).toBe(0)
    // Fresh every time: a million draws of 69 bits do not collide.
    expect(seen.size).toBe(1_000_000)
  })

  it("a nonce is 16 letters with no digit and no vowel", () => {
    for (let i = 0; i < 10_000; i++) expect(fenceNonce()).toMatch(new RegExp(`^[b-df-hj-np-tv-xz]{${NONCE_LENGTH}}$`))
  })

  it("the hex nonces used before could be rewritten as a phone number (why the generator changed)", () => {
    // A hex nonce that drew no letter (seen: 004954651944) reads as an international phone number; the fence became a fixed string.
    const text = "<<<TRACE 004954651944>>>"
    expect(redactText(text)).not.toBe(text)
  })

  it("a whole judge request keeps its fence through the guard", () => {
    const n = fenceNonce()
    const request = {
      stage: "judge:test",
      model: "m",
      system: `Data between <<<TRACE ${n}>>> and <<<END ${n}>>>.`,
      messages: [{ role: "user" as const, content: `<<<TRACE ${n}>>>\ncall me on +49 1522 3344556\n<<<END ${n}>>>` }],
      maxTokens: 10,
      temperature: 0
    }
    const { request: safe, findings } = guardRequest(request)
    expect(findings.count).toBe(1)
    expect(safe.messages[0]!.content.startsWith(`<<<TRACE ${n}>>>\n`)).toBe(true)
    expect(safe.messages[0]!.content.endsWith(`\n<<<END ${n}>>>`)).toBe(true)
    expect(safe.system).toBe(request.system)
  })
})

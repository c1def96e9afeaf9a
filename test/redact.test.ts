import { describe, expect, it } from "vitest"
import { redactDeep, redactText } from "../src/privacy/Redactor.js"
import { hasAlnumRun, RULE_GROUPS, RULES } from "../src/privacy/Rules.js"
import { privacyCorpus } from "./helpers/privacyCorpus.js"
import { traceObject } from "./helpers/traces.js"

const SECRETS: ReadonlyArray<[string, string]> = [
  ["email", "write to ana.silva+trips@example.co.uk please"],
  ["phone (international)", "call me at +351 912 345 678 tomorrow"],
  ["phone (US)", "my cell is (415) 555-0132"],
  ["phone (dotted)", "ring 415.555.0132 after 6"],
  ["Anthropic key", "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"],
  ["OpenRouter key", "OPENROUTER sk-or-v1-0123456789abcdef0123456789abcdef"],
  ["OpenAI project key", "use sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"],
  ["OpenAI legacy key", "sk-AbCdEfGhIjKlMnOpQrStUvWx12345678"],
  ["restricted key", "rk-AbCdEfGhIjKlMnOpQrStUv1234"],
  ["GitHub classic token", "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"],
  ["GitHub OAuth token", "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"],
  ["GitHub fine-grained token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"],
  ["Slack token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"],
  ["Google API key", "AIzaSyA-1234567890abcdefghijklmnopqrstu"],
  ["Telegram bot token", "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0 set"],
  [
    "JWT",
    "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
  ],
  [
    "PEM private key",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdef\n-----END RSA PRIVATE KEY-----"
  ],
  ["Bearer token", "Authorization: Bearer abcdef0123456789ABCDEF.xyz"],
  ["key=value secret", "DB_PASSWORD=hunter2hunter2 and more"],
  ["JSON secret", '{"api_key": "0123456789abcdef"}'],
  ["AWS access key id", "AKIAIOSFODNN7EXAMPLE"],
  ["AWS secret access key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
  [
    "GCP service-account key",
    '{"type": "service_account", "private_key_id": "abcdef0123456789abcdef0123456789abcdef01", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----\\n"}'
  ],
  [
    "Azure connection string",
    "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=AbCdEf0123456789+/AbCdEf0123456789==;EndpointSuffix=core.windows.net"
  ],
  ["Stripe secret key", "sk_live_51HcXYZabcdefghijklmnop0123"],
  ["Stripe webhook secret", "whsec_AbCdEfGhIjKlMnOpQrStUvWxYz012345"],
  ["npm token", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"],
  ["PyPI token", "pypi-AgEIcHlwaS5vcmcCJGE4ZjYxZTQ2LWE0ZGEtNGQ3Yy04ZjI4LWFiY2RlZjAxMjM0NQ"],
  ["GitLab token", "glpat-AbCdEfGhIjKlMnOpQrSt"],
  ["Hugging Face token", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"],
  ["Discord bot token", "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456"],
  ["Twilio API key", "SK0123456789abcdef0123456789abcdef"],
  ["SendGrid key", "SG.AbCdEfGhIjKlMnOpQrStUv.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfG"],
  ["Slack webhook", "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now"],
  ["Discord webhook", "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz"],
  ["URL with token query", "https://api.example.com/v1/items?access_token=abcdef0123456789&page=2"],
  ["database URL with password", "postgres://admin:S3cr3tPass@db.internal:5432/app"],
  ["Redis URL with password", "redis://:topsecret99@cache.local:6379"],
  ["Visa card", "card 4111 1111 1111 1111 exp 12/28"],
  ["Mastercard", "5555-5555-5555-4444"],
  ["Amex", "378282246310005"]
]

const SECRET_PARTS: Record<string, string> = {
  email: "ana.silva",
  "phone (international)": "912 345",
  "phone (US)": "555-0132",
  "phone (dotted)": "555.0132",
  "key=value secret": "hunter2",
  "JSON secret": "0123456789abcdef",
  "AWS secret access key": "wJalrXUtnFEMI",
  "GCP service-account key": "MIIEvQIBADANBg",
  "Azure connection string": "AbCdEf0123456789+/",
  "database URL with password": "S3cr3tPass",
  "Redis URL with password": "topsecret99",
  "Visa card": "4111 1111",
  Mastercard: "5555-5555",
  Amex: "378282246310005",
  "URL with token query": "abcdef0123456789",
  "Bearer token": "abcdef0123456789",
  "PEM private key": "MIIEowIBAAKCAQEA",
  "Telegram bot token": "AAHdqTcvCH1vGWJx",
  "Slack webhook": "XXXXXXXXXXXX",
  "Discord webhook": "AbCdEfGhIjKl"
}

describe("redaction: true positives", () => {
  it.each(SECRETS)("%s", (name, text) => {
    const out = redactText(text)
    expect(out).toContain("<redacted_")
    const part = SECRET_PARTS[name]
    if (part !== undefined) expect(out).not.toContain(part)
    // A token-shaped secret must vanish whole, not just get a marker beside it.
    const token = text.match(/[A-Za-z0-9_-]{24,}/)?.[0]
    if (token !== undefined && part === undefined) expect(out).not.toContain(token)
  })
})

const LOOKALIKES: ReadonlyArray<[string, string]> = [
  ["git SHA", "fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b"],
  ["short SHA", "see a1b2c3d"],
  ["UUID", "request 123e4567-e89b-12d3-a456-426614174000 failed"],
  ["version", "upgraded to v2.5.13 and 1.12.0"],
  ["ISO timestamp", "at 2026-01-01T14:54:54.000Z exactly"],
  ["epoch ms", "pack version 1795467310669"],
  ["date", "on 2026-11-23"],
  ["price", "it costs $1,299.99 or €45.50"],
  ["order number", "order #88234571 shipped"],
  ["long order number", "order 20261123004512 shipped"],
  ["invoice that fails Luhn", "invoice 4111 1111 1111 1112"],
  ["URL without credentials", "see https://example.com/docs/setup?page=2#install"],
  ["password in prose", "I forgot my password again, how do I reset it?"],
  ["token in prose", "the token expired yesterday"],
  ["IP address", "server 192.168.1.20 is down"],
  ["time", "meet at 14:30 tomorrow"],
  ["math", "compute 123-456-789 minus 12"],
  ["tracking id", "chat id 1203948576"]
]

describe("redaction: harmless look-alikes stay", () => {
  it.each(LOOKALIKES)("%s", (_name, text) => {
    expect(redactText(text)).toBe(text)
  })
})

describe("redactDeep", () => {
  it("redacts strings at any depth and values under secret-named keys", () => {
    const out = redactDeep({
      cmd: "curl -H 'Authorization: Bearer abcdefghijklmnop1234'",
      env: { password: "hunter2", API_KEY: "k2Xf93jLmQ0pZt7a", city: "Lisbon" },
      list: ["ana@example.com"],
      n: 3
    })
    expect(out).toEqual({
      cmd: "curl -H 'Authorization: Bearer <redacted_token>'",
      env: { password: "<redacted_secret>", API_KEY: "<redacted_secret>", city: "Lisbon" },
      list: ["<redacted_email>"],
      n: 3
    })
  })
})

describe("the detector's gates and scans", () => {
  // A deterministic generator: letters, digits, the separators tokens use, spaces and non-ASCII.
  const strings = (count: number) => {
    const alphabet = "aZ9kQ3_-. :x\u00e9\u4e2d7Mb"
    let seed = 12345
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    return Array.from({ length: count }, () => {
      const length = next() % 80
      const alnumHeavy = next() % 2 === 0
      let s = ""
      for (let i = 0; i < length; i++)
        s += alnumHeavy && next() % 10 < 9 ? "aZ9kQ3x7Mb"[next() % 10] : alphabet[next() % alphabet.length]
      return s
    })
  }

  it("hasAlnumRun answers as /[A-Za-z0-9]{n}/ does", () => {
    const texts = strings(5000)
    for (const n of [1, 4, 16]) {
      const regex = new RegExp(`[A-Za-z0-9]{${n}}`)
      const wrong = texts.filter((t) => hasAlnumRun(t, n) !== regex.test(t))
      expect(wrong).toEqual([])
      expect(texts.filter((t) => regex.test(t)).length).toBeGreaterThan(100)
    }
  })

  it("a group's gate holds wherever one of its rules' hints does, so gating changes no result", () => {
    const texts = [
      ...privacyCorpus().map((c) => c.text),
      ...strings(2000),
      ...Array.from({ length: 300 }, (_, i) => JSON.stringify(traceObject(i)))
    ]
    let opened = 0
    for (const group of RULE_GROUPS) {
      if (group.gate === undefined) continue
      for (const text of texts) {
        const hinted = group.rules.filter((r) => r.hint(text)).map((r) => r.name)
        if (hinted.length > 0) {
          opened++
          expect({ text, hinted, gate: group.gate(text) }).toEqual({ text, hinted, gate: true })
        }
      }
    }
    expect(opened).toBeGreaterThan(500)
    // And the grouped detector gives what running every rule in order gives.
    const ruleByRule = (text: string) => {
      let out = text
      for (const rule of RULES) {
        if (!rule.hint(out)) continue
        rule.pattern.lastIndex = 0
        out = out.replace(rule.pattern, (m: string, ...args: Array<string | undefined>) => rule.replace(m, ...args))
      }
      return out
    }
    const differ = texts.filter((t) => t.length >= 7 && redactText(t) !== ruleByRule(t))
    expect(differ).toEqual([])
  })
})

/**
 * Redaction of secrets and personal data in free text. It runs before anything is stored or sent to an
 * LLM, and only over free text: ids, timestamps and pack versions are join keys and stay untouched.
 * The rules live in Rules.ts; this file applies them and counts what they found.
 */
import { escapeXml, MESSAGE_ELEMENT, unescapeXml } from "../Domain/Xml.js"
import { mark, RULE_GROUPS, RULES, SECRET_KEY, secretValue } from "./Rules.js"

/**
 * The version of the rule set. Every stored row records the version that redacted it, so a rule change
 * can re-clean what was stored before it (`autotune redact --rescan`). Raise it whenever a rule changes
 * what it finds. 0 means "stored without redaction" (AUTOTUNE_REDACT=0); 1 is autotune 2.0's first set.
 */
export const REDACTION_VERSION = 2

/** The version a row stored now records: the current rule set, or 0 when redaction is off. */
export const storedVersion = (redact: boolean): number => (redact ? REDACTION_VERSION : 0)

/** What one pass found: how many values were replaced, per rule. */
export interface Findings {
  count: number
  readonly byRule: Record<string, number>
}

export const emptyFindings = (): Findings => ({ count: 0, byRule: {} })

const note = (findings: Findings | undefined, rule: string) => {
  if (findings === undefined) return
  findings.count++
  findings.byRule[rule] = (findings.byRule[rule] ?? 0) + 1
}

/** Redacts one string; with `findings`, counts each replaced value under its rule's name. */
export const redactText = (text: string, findings?: Findings): string => {
  // No real secret, number or address fits in 6 characters with its label; tool arguments are
  // mostly such short strings, and skipping them saves the 75 hints each.
  if (text.length < 7) return text
  let out = text
  for (const group of RULE_GROUPS) {
    if (group.gate !== undefined && !group.gate(out)) continue
    for (const rule of group.rules) {
      if (!rule.hint(out)) continue
      rule.pattern.lastIndex = 0
      out = out.replace(rule.pattern, (match: string, ...args: Array<string | undefined>) => {
        const replaced = rule.replace(match, ...args)
        if (replaced !== match) note(findings, rule.name)
        return replaced
      })
    }
  }
  return out
}

/**
 * DotClaw's input text: `<message>` elements whose text is XML-escaped. `{&quot;password&quot;: …}` hides
 * its shape from the rules, so each body is cleaned unescaped and escaped again; text without the
 * envelope (a scheduled task's prompt) is cleaned as it is.
 */
export const redactEnvelope = (text: string, findings?: Findings): string => {
  if (!text.includes("<message")) return redactText(text, findings)
  MESSAGE_ELEMENT.lastIndex = 0
  return text.replace(MESSAGE_ELEMENT, (element: string, open: string, body: string, close: string) => {
    const plain = unescapeXml(body)
    const clean = redactText(plain, findings)
    return clean === plain ? element : `${open}${escapeXml(clean)}${close}`
  })
}

/** `redactText` when redaction is on (AUTOTUNE_REDACT), the text as it is otherwise. */
export const redactIf = (redact: boolean, text: string): string => (redact ? redactText(text) : text)

/** Redacts every string inside a JSON-like value (tool args, unknown fields), keys included. */
export const redactDeep = (value: unknown, findings?: Findings): unknown => {
  if (typeof value === "string") return redactText(value, findings)
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, findings))
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k) && typeof v === "string" && secretValue(k, v, true)) {
        note(findings, "key_value")
        out[k] = mark("secret")
      } else {
        out[k] = redactDeep(v, findings)
      }
    }
    return out
  }
  return value
}

/** The names of the rules, for documentation and tests. */
export const REDACTION_RULES: ReadonlyArray<string> = RULES.map((r) => r.name)

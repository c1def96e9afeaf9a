/**
 * Redaction of secrets and personal data in free text. It runs before anything is stored or sent to an
 * LLM, and only over free text: ids, timestamps and pack versions are join keys and stay untouched.
 * The rules live in Rules.ts; this file applies them and counts what they found.
 */
import { escapeXml, messageElements, unescapeXml } from "../Domain/Xml.js"
import { mark, RULE_GROUPS, RULES, SECRET_KEY, secretValue } from "./Rules.js"

/**
 * The version of the rule set. Every stored row records the version that redacted it, so a rule change
 * can re-clean what was stored before it (`autotune redact --rescan`). Raise it whenever a rule changes
 * what it finds. 0 means "stored without redaction" (AUTOTUNE_REDACT=0); 1 is autotune 2.0's first set;
 * 3 cuts runs of over LONG_RUN_CHARS characters and values nested deeper than MAX_DEPTH, is linear on any
 * input, and takes the families of issue 25 (command-line and run-together env passwords, camelCase keys,
 * more prose, bot tokens in URLs, contact lists; public keys, integrity hashes, placeholders and logins kept);
 * 4 takes htpasswd's password on the command line and more prose ("is going to be", "the passcode, btw, is");
 * 5 takes archivers' -p and Windows' `net use … /user:X password`, psk and access-key-id keys, a password right
 * after its name ("the guest password Prism4427"), more prose and contact lists, and keeps type annotations,
 * sentences after "Password:", snake_case names, FTP's anonymous login and the codes before a tracking number;
 * 6 takes a password-shaped word within six words after the name, single-dash -password flags, zip's -P, Samba's
 * -U user%password, a Wi-Fi "key" beside its "ssid", and keeps template slots ({password}) in URLs;
 * 7 takes a credential named by another word (login, creds, wifi, router, admin, pw: "the Plex login is jonas /
 * Quill4428") and a short -P/-w flag's value after a user flag (mosquitto, sqlcmd, ldapsearch and the like);
 * 8 changes no rule but the fields they cover: a tool call's name, the model id and the source are cleaned too
 * (a token used as a tool name was stored in clear), so stores cleaned before are rescanned once.
 */
export const REDACTION_VERSION = 8

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

/**
 * Runs of more characters than this with no white space are cut before any rule runs: no word, number or
 * address is that long, while a pasted photo (a base64 data URL), a minified file or a key block is, and a
 * rule's quantifier walking millions of such characters exhausts the regex engine's backtrack stack. What was
 * cut may hold a secret: nothing of it is kept.
 */
export const LONG_RUN_CHARS = 4096

const isSpace = (c: number) =>
  c <= 32 ||
  c === 0x85 ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000

/** The marker that stands for a cut run: how long it was, so that a reader knows something was there. */
export const longRunMark = (chars: number) => `<cut_${chars}_characters>`

/** `text` with every run of more than LONG_RUN_CHARS non-space characters replaced by its marker (one linear scan). */
export const cutLongRuns = (text: string, findings?: Findings): string => {
  if (text.length <= LONG_RUN_CHARS) return text
  let out = ""
  let kept = 0
  let runStart = 0
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && !isSpace(text.charCodeAt(i))) continue
    if (i - runStart > LONG_RUN_CHARS) {
      out += text.slice(kept, runStart) + longRunMark(i - runStart)
      kept = i
      note(findings, "long_run")
    }
    runStart = i + 1
  }
  return kept === 0 ? text : out + text.slice(kept)
}

/** Redacts one string; with `findings`, counts each replaced value under its rule's name. */
export const redactText = (text: string, findings?: Findings): string => {
  // No real secret, number or address fits in 6 characters with its label; tool arguments are
  // mostly such short strings, and skipping them saves the 75 hints each.
  if (text.length < 7) return text
  let out = cutLongRuns(text, findings)
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
 * its shape from the rules, so each body is cleaned unescaped and escaped again; text outside the elements
 * (a scheduled task's prompt, an unclosed tag, whatever surrounds them) is cleaned as it is.
 */
export const redactEnvelope = (text: string, findings?: Findings): string => {
  const elements = text.includes("<message") ? messageElements(text) : []
  if (elements.length === 0) return redactText(text, findings)
  let out = ""
  let at = 0
  for (const { start, end, open, body, close } of elements) {
    out += redactText(text.slice(at, start), findings)
    const plain = unescapeXml(body)
    const clean = redactText(plain, findings)
    out += clean === plain ? text.slice(start, end) : `${open}${escapeXml(clean)}${close}`
    at = end
  }
  return out + redactText(text.slice(at), findings)
}

/** `redactText` when redaction is on (AUTOTUNE_REDACT), the text as it is otherwise. */
export const redactIf = (redact: boolean, text: string): string => (redact ? redactText(text) : text)

/**
 * How deep `redactDeep` goes into nested arrays and objects; what lies deeper is replaced by DEEP_MARK. Tool
 * arguments nest a few levels; thousands of levels are an attack on the stack, not data.
 */
export const MAX_DEPTH = 64
export const DEEP_MARK = `<cut_nested_deeper_than_${MAX_DEPTH}>`

// Keys and names repeat from turn to turn (tool argument names, DotClaw's fields, tool names, model ids): those that
// came out of the rules unchanged are remembered, up to a bound, so each is looked at once per process rather than
// once per turn.
const CLEAN_KEYS = new Set<string>()
export const redactName = (key: string, findings?: Findings): string => {
  if (CLEAN_KEYS.has(key)) return key
  const redacted = redactText(key, findings)
  if (redacted === key && key.length <= 64 && CLEAN_KEYS.size < 10_000) CLEAN_KEYS.add(key)
  return redacted
}

/** Redacts every string inside a JSON-like value (tool args, unknown fields), keys included. */
export const redactDeep = (value: unknown, findings?: Findings, depth = 0): unknown => {
  if (typeof value === "string") return redactText(value, findings)
  if (value === null || typeof value !== "object") return value
  if (depth >= MAX_DEPTH) {
    note(findings, "deep_value")
    return DEEP_MARK
  }
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, findings, depth + 1))
  // No prototype: a key named __proto__ stays an ordinary key, it never becomes the object's prototype.
  const out = Object.create(null) as Record<string, unknown>
  for (const [k, v] of Object.entries(value)) {
    const key = redactName(k, findings)
    if (SECRET_KEY.test(k) && typeof v === "string" && secretValue(k, v, true)) {
      note(findings, "key_value")
      out[key] = mark("secret")
    } else {
      out[key] = redactDeep(v, findings, depth + 1)
    }
  }
  return out
}

/** The names of the rules, for documentation and tests. */
export const REDACTION_RULES: ReadonlyArray<string> = RULES.map((r) => r.name)

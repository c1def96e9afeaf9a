/**
 * Redaction of secrets and personal data in free text. It runs before anything is stored or sent to an
 * LLM, and only over free text: ids, timestamps and pack versions are join keys and stay untouched.
 *
 * Each rule has a cheap `hint` (a substring or a test) so that the common case, text with nothing to
 * redact, costs a few `includes` calls instead of thirty regex scans.
 */

interface Rule {
  readonly name: string
  readonly hint: (text: string) => boolean
  readonly pattern: RegExp
  readonly replace: string | ((match: string, ...groups: Array<string>) => string)
}

const has = (...needles: Array<string>) => (text: string) => needles.some((n) => text.includes(n))
const hasDigits = (text: string) => /\d{3}/.test(text)
const mark = (name: string) => `<redacted_${name}>`

const luhnValid = (digits: string): boolean => {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

// Names whose value is a secret in `name=value`, `name: value` or `"name": "value"`.
const SECRET_NAMES =
  "(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|api[_-]?token|access[_-]?token|" +
  "auth[_-]?token|refresh[_-]?token|bot[_-]?token|token|secret[_-]?key|access[_-]?key|aws[_-]?secret[_-]?access[_-]?key|" +
  "secret[_-]?access[_-]?key|private[_-]?key[_-]?id|private[_-]?key|account[_-]?key|shared[_-]?access[_-]?key|" +
  "auth[_-]?key|credentials?|session[_-]?token)"

// Every SECRET_NAMES entry contains one of these stems; a cheap test before the expensive pattern.
const SECRET_WORD = /pass|pwd|secret|key|token|credential/i

const RULES: ReadonlyArray<Rule> = [
  {
    name: "private_key",
    hint: has("PRIVATE KEY"),
    pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
    replace: mark("private_key")
  },
  {
    name: "jwt",
    hint: has("eyJ"),
    pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
    replace: mark("jwt")
  },
  // Provider and developer tokens with a recognisable prefix.
  { name: "anthropic_key", hint: has("sk-ant-"), pattern: /\bsk-ant-[A-Za-z0-9_-]{16,}/g, replace: mark("api_key") },
  { name: "openrouter_key", hint: has("sk-or-"), pattern: /\bsk-or-[A-Za-z0-9_-]{16,}/g, replace: mark("api_key") },
  { name: "openai_key", hint: has("sk-", "rk-"), pattern: /\b(?:sk|rk)-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}/g, replace: mark("api_key") },
  { name: "stripe_key", hint: has("_live_", "_test_", "whsec_"), pattern: /\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})/g, replace: mark("api_key") },
  { name: "github_token", hint: has("gh", "github_pat_"), pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g, replace: mark("token") },
  { name: "gitlab_token", hint: has("glpat-", "glptt-", "gldt-"), pattern: /\b(?:glpat|glptt|gldt)-[A-Za-z0-9_-]{20,}/g, replace: mark("token") },
  { name: "slack_token", hint: has("xox"), pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, replace: mark("token") },
  { name: "google_key", hint: has("AIza"), pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g, replace: mark("api_key") },
  { name: "aws_access_key", hint: has("AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA"), pattern: /\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g, replace: mark("aws_key") },
  { name: "npm_token", hint: has("npm_"), pattern: /\bnpm_[A-Za-z0-9]{36}\b/g, replace: mark("token") },
  { name: "pypi_token", hint: has("pypi-"), pattern: /\bpypi-[A-Za-z0-9_-]{40,}/g, replace: mark("token") },
  { name: "huggingface_token", hint: has("hf_"), pattern: /\bhf_[A-Za-z0-9]{30,}\b/g, replace: mark("token") },
  { name: "sendgrid_key", hint: has("SG."), pattern: /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g, replace: mark("api_key") },
  { name: "twilio_key", hint: has("SK", "AC"), pattern: /\b(?:SK|AC)[0-9a-f]{32}\b/g, replace: mark("token") },
  {
    name: "discord_token",
    hint: (t) => t.includes("."),
    pattern: /\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}\b/g,
    replace: mark("token")
  },
  { name: "telegram_token", hint: has(":AA"), pattern: /\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b/g, replace: mark("token") },
  // Webhook URLs whose path is the credential.
  {
    name: "webhook_url",
    hint: has("hooks.slack.com", "/api/webhooks/", "webhook.office.com", "/webhookb2/"),
    pattern: /https?:\/\/(?:hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9/_-]+|(?:[a-z]+\.)?discord(?:app)?\.com\/api\/webhooks\/\d+\/[A-Za-z0-9_-]+|[A-Za-z0-9.-]*webhook\.office\.com\/webhookb2\/[^\s"'<>]+)/g,
    replace: mark("webhook_url")
  },
  // Credentials inside URLs: user:password@host, and token-like query parameters.
  {
    name: "url_password",
    hint: has("://"),
    pattern: /\b([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^\s:/?#@"'<>]+):([^\s@/"'<>]+)@/g,
    replace: (_m, scheme: string, user: string) => `${scheme}${user}:${mark("password")}@`
  },
  {
    name: "url_token_param",
    hint: has("?", "&"),
    pattern: /([?&](?:access_token|token|api_key|apikey|key|sig|signature|secret|password|auth|code)=)[^&#\s"'<>]{6,}/gi,
    replace: (_m, prefix: string) => `${prefix}${mark("token")}`
  },
  // Azure connection strings: AccountKey=..., SharedAccessKey=..., SharedAccessSignature=...
  {
    name: "azure_connection",
    hint: has("AccountKey=", "SharedAccessKey=", "SharedAccessSignature="),
    pattern: /\b(AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s"']+/g,
    replace: (_m, name: string) => `${name}=${mark("secret")}`
  },
  {
    name: "bearer",
    hint: has("earer", "asic "),
    pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{12,}/g,
    replace: (_m, scheme: string) => `${scheme} ${mark("token")}`
  },
  {
    // "password": "x", password=x, api_key: x; the word alone in prose is left alone (it needs = or :).
    name: "key_value",
    hint: (t) => SECRET_WORD.test(t),
    pattern: new RegExp(
      `((?:["']?)\\b(?:[A-Za-z0-9]+[_-])*${SECRET_NAMES}\\b["']?\\s*[:=]\\s*)(?:"((?:[^"\\\\]|\\\\.){3,})"|'([^']{3,})'|([^\\s,;"'<>}{)]{3,}))`,
      "gi"
    ),
    replace: (match: string, prefix: string, dq?: string, sq?: string) => {
      if (match.includes("<redacted_")) return match
      return dq !== undefined ? `${prefix}"${mark("secret")}"` : sq !== undefined ? `${prefix}'${mark("secret")}'` : `${prefix}${mark("secret")}`
    }
  },
  {
    name: "email",
    hint: has("@"),
    pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g,
    replace: mark("email")
  },
  {
    // 13-19 digits, optionally grouped by spaces or dashes, with a card-network prefix and a valid Luhn sum.
    name: "card",
    hint: hasDigits,
    pattern: /(?<![\d.,-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d.,-]?\d)/g,
    replace: (match: string) => {
      const digits = match.replace(/[ -]/g, "")
      return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? mark("card") : match
    }
  },
  {
    // International numbers (+CC ...) and North-American style with separators. Bare digit runs are
    // left alone: they are order numbers, ids and timestamps far more often than phone numbers.
    name: "phone",
    hint: hasDigits,
    pattern: /(?<![\w+./:-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w./:-]?\d)/g,
    replace: mark("phone")
  }
]

/** Redacts one string. */
export const redactText = (text: string): string => {
  let out = text
  for (const rule of RULES) {
    if (!rule.hint(out)) continue
    rule.pattern.lastIndex = 0
    out = out.replace(rule.pattern, rule.replace as (substring: string, ...args: Array<unknown>) => string)
  }
  return out
}

/** Redacts every string inside a JSON-like value (tool args, unknown fields), keys included. */
export const redactDeep = (value: unknown): unknown => {
  if (typeof value === "string") return redactText(value)
  if (Array.isArray(value)) return value.map(redactDeep)
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && typeof v === "string" && v !== "" ? mark("secret") : redactDeep(v)
    }
    return out
  }
  return value
}

const SECRET_KEY = new RegExp(`^(?:[A-Za-z0-9]+[_-])*${SECRET_NAMES}$`, "i")

/** The names of the rules, for documentation and tests. */
export const REDACTION_RULES: ReadonlyArray<string> = RULES.map((r) => r.name)

/**
 * The detection rules, in the order they run. Families follow gitleaks' default configuration (provider
 * formats with fixed prefixes, keyword-anchored generic secrets with a shape test, private keys in every
 * armor) and Presidio's recognizers (checksummed identifiers, phone numbers, context words). The rules
 * and their data are ours.
 *
 * Each rule has a cheap `hint` so that text with nothing to redact costs a few `includes` calls.
 * A `replace` that returns the match unchanged means "looked like one, was not": it is not counted.
 */
import { dniValid, entropy, ibanLength, ibanValid, isPlaceholder, luhnValid, phoneValid, ssnValid } from "./Checks.js"

export interface Rule {
  readonly name: string
  readonly hint: (text: string) => boolean
  readonly pattern: RegExp
  readonly replace: (match: string, ...groups: Array<string | undefined>) => string
}

export const mark = (name: string) => `<redacted_${name}>`
/** A hint that is "holds one of these strings"; a group of such rules shares one gate made of all of them. */
interface LiteralHint {
  (text: string): boolean
  readonly needles: ReadonlyArray<string>
}
const has = (...needles: Array<string>): LiteralHint => {
  const hint = (text: string) => {
    for (const needle of needles) if (text.includes(needle)) return true
    return false
  }
  return Object.assign(hint, { needles })
}
const hasDigits = (text: string) => /\d{3}/.test(text)
const hasDigitPair = (text: string) => /\d\d/.test(text)
const isAsciiAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)

/**
 * Where a match stands, from the arguments String.prototype.replace gives its function after the groups: the
 * offset and the whole string (no rule uses named groups, which would add one more).
 */
const matchedIn = (rest: ReadonlyArray<unknown>): { readonly offset: number; readonly whole: string } =>
  ({ offset: rest[rest.length - 2] as number, whole: rest[rest.length - 1] as string })

/** The line a match sits on, up to `max` characters before it: the command a flag belongs to. */
const lineBefore = (whole: string, offset: number, max: number): string => {
  const line = whole.slice(Math.max(0, offset - max), offset)
  return line.slice(line.lastIndexOf("\n") + 1)
}

/**
 * Whether `text` holds `n` ASCII letters or digits in a row, as /[A-Za-z0-9]{n}/ answers. It looks at the
 * last character a run could end on and jumps `n` ahead past one that cannot be in a run: ten times faster
 * than the regex on trace text, where it was the detector's largest single cost.
 */
export const hasAlnumRun = (text: string, n: number): boolean => {
  let end = n - 1
  while (end < text.length) {
    if (!isAsciiAlnum(text.charCodeAt(end))) {
      end += n
      continue
    }
    let start = end
    while (start > end - n + 1 && isAsciiAlnum(text.charCodeAt(start - 1))) start--
    if (start === end - n + 1) return true
    // The character before `start` is outside any run, so the next run of n ends n past it at the earliest.
    end = start - 1 + n
  }
  return false
}

interface ProviderRule extends Rule {
  /** The literal prefixes that announce the format; empty for a shape without one. */
  readonly needles: ReadonlyArray<string>
}

/** A provider token: a fixed prefix makes it certain, so it goes whole. */
const token = (name: string, needles: Array<string>, pattern: RegExp, marker = "token"): ProviderRule => ({
  name,
  needles,
  hint: has(...needles),
  pattern,
  replace: () => mark(marker)
})

/** A format with no distinctive prefix (Discord, Twilio, Mailchimp, Airtable): its own test, never gated. */
const shaped = (name: string, hint: (t: string) => boolean, pattern: RegExp, marker = "token"): ProviderRule => ({
  name,
  needles: [],
  hint,
  pattern,
  replace: () => mark(marker)
})

// Provider and developer tokens with a recognisable prefix or shape (gitleaks' provider rules).
const PROVIDER_FORMATS: ReadonlyArray<ProviderRule> = [
  token("anthropic_key", ["sk-ant-"], /\bsk-ant-[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("openrouter_key", ["sk-or-"], /\bsk-or-[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("openai_key", ["sk-", "rk-"], /\b(?:sk|rk)-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("groq_key", ["gsk_"], /\bgsk_[A-Za-z0-9]{40,}/g, "api_key"),
  token("replicate_token", ["r8_"], /\br8_[A-Za-z0-9]{30,}/g, "api_key"),
  token("perplexity_key", ["pplx-"], /\bpplx-[A-Za-z0-9]{40,}/g, "api_key"),
  token("xai_key", ["xai-"], /\bxai-[A-Za-z0-9]{60,}/g, "api_key"),
  token("huggingface_token", ["hf_", "api_org_"], /\b(?:hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,})\b/g),
  token("google_key", ["AIza"], /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g, "api_key"),
  token("google_oauth", ["GOCSPX-", "ya29."], /\b(?:GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[0-9A-Za-z_-]{20,})/g),
  token("aws_access_key", ["AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA"], /\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z2-7]{16}\b/g, "aws_key"),
  token("azure_ad_secret", ["Q~"], /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g, "secret"),
  token("digitalocean_token", ["dop_v1_", "doo_v1_", "dor_v1_"], /\bdo[por]_v1_[a-f0-9]{64}\b/g),
  token("github_token", ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"], /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g),
  token("gitlab_token", ["glpat-", "glptt-", "gldt-", "glrt-", "glsoat-", "glcbt-", "glft-", "GR1348941"], /\b(?:(?:glpat|glptt|gldt|glrt|glsoat|glcbt|glft)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})/g),
  token("bitbucket_token", ["ATBB", "ATATT"], /\b(?:ATBB[A-Za-z0-9]{32}|ATATT[A-Za-z0-9_=-]{60,})/g),
  token("slack_token", ["xox", "xapp-"], /\b(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{20,})/g),
  shaped("discord_token", has("."), /\b(?<![A-Za-z0-9_-])[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}\b/g),
  // Also inside API URL paths, where "bot" runs into the id (https://api.telegram.org/bot<id>:<secret>/…).
  token("telegram_token", [":AA"], /(?<!\d)\d{8,10}:AA[A-Za-z0-9_-]{30,36}(?![A-Za-z0-9_-])/g),
  token("stripe_key", ["_live_", "_test_", "whsec_"], /\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})/g, "api_key"),
  token("square_token", ["sq0", "EAAA"], /\b(?:sq0(?:atp|csp|idp)-[0-9A-Za-z_-]{22,43}|EAAA[A-Za-z0-9_+=-]{56,})/g),
  token("braintree_token", ["access_token$"], /access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}/g),
  token("shopify_token", ["shpat_", "shpca_", "shppa_", "shpss_"], /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b/g),
  token("sendgrid_key", ["SG."], /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("mailgun_key", ["key-"], /\bkey-[0-9a-f]{32}\b/g, "api_key"),
  shaped("mailchimp_key", has("-us"), /\b[0-9a-f]{32}-us\d{1,2}\b/g, "api_key"),
  shaped("twilio_key", has("SK", "AC"), /\b(?:SK|AC)[0-9a-f]{32}\b/g),
  token("npm_token", ["npm_"], /\bnpm_[A-Za-z0-9]{36}\b/g),
  token("pypi_token", ["pypi-"], /\bpypi-[A-Za-z0-9_-]{40,}/g),
  token("docker_token", ["dckr_pat_", "dckr_oat_"], /\bdckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}/g),
  token("rubygems_token", ["rubygems_"], /\brubygems_[a-f0-9]{48}\b/g),
  token("nuget_key", ["oy2"], /\boy2[a-z0-9]{43}\b/g, "api_key"),
  token("linear_key", ["lin_api_"], /\blin_api_[A-Za-z0-9]{40}\b/g, "api_key"),
  token("notion_token", ["secret_", "ntn_"], /\b(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})\b/g),
  shaped("airtable_token", has("pat"), /\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b/g),
  token("dropbox_token", ["sl."], /\bsl\.[A-Za-z0-9_-]{100,}/g),
  token("age_key", ["AGE-SECRET-KEY-"], /\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b/g, "private_key"),
  token("sentry_token", ["sntrys_", "sntryu_"], /\b(?:sntrys_[A-Za-z0-9+/=_-]{40,}|sntryu_[a-f0-9]{64})/g),
  token("grafana_token", ["glsa_", "glc_"], /\b(?:glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})/g),
  token("vault_token", ["hvs.", "hvb."], /\bhv[sb]\.[A-Za-z0-9_-]{24,}/g),
  token("doppler_token", ["dp.pt.", "dp.st.", "dp.ct."], /\bdp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,}/g),
  token("pulumi_token", ["pul-"], /\bpul-[a-f0-9]{40}\b/g),
  token("postman_key", ["PMAK-"], /\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b/g, "api_key"),
  token("databricks_token", ["dapi"], /\bdapi[a-f0-9]{32}(?:-\d)?\b/g),
  token("tailscale_key", ["tskey-"], /\btskey-(?:api|auth|client|webhook)-[A-Za-z0-9]+-[A-Za-z0-9]+/g, "api_key"),
  token("supabase_token", ["sbp_"], /\bsbp_[a-f0-9]{40}\b/g),
  token("planetscale_token", ["pscale_"], /\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}/g),
  token("newrelic_key", ["NRAK-", "NRII-"], /\bNR(?:AK|II)-[A-Z0-9]{27}\b/g, "api_key"),
  token("mapbox_token", ["sk.eyJ", "pk.eyJ"], /\b[sp]k\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{16,}/g),
  token("heroku_key", ["HRKU-"], /\bHRKU-[A-Za-z0-9_-]{40,}/g, "api_key"),
  token("flyio_token", ["fo1_", "fm1r_", "fm2_"], /\b(?:fo1_[A-Za-z0-9_-]{40,}|fm[12][ar]?_[A-Za-z0-9+/=_-]{60,})/g)
]

/**
 * Rules run in groups, each behind a gate that is a necessary condition of every member's hint: most text
 * fails a gate, and one test then skips the whole group (measured on the text of bench:ingest's first 28,572
 * traces: 380 ms with a hint call per rule per string, 215-223 ms gated, the 16-character scan included). A group's
 * members still test their own hints, on the text as earlier rules left it, so the result is the same.
 */
export interface RuleGroup {
  readonly gate: ((text: string) => boolean) | undefined
  readonly rules: ReadonlyArray<Rule>
}

const always = undefined
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
/** One alternation of literals: one pass answers "holds any of them" (126 ms per 10 MB of trace text against 413 ms for `includes` per needle). */
const anyOf = (needles: ReadonlyArray<string>) => {
  const pattern = new RegExp(needles.map(escapeRegExp).join("|"))
  return (text: string) => pattern.test(text)
}

/**
 * The provider formats in their order, cut into runs: the formats with a fixed prefix share one gate (any
 * prefix of any of them); a shape without a prefix is its own group. The gate's answer is kept for the same
 * string, since each run asks about the same text.
 */
const providerGroups = (formats: ReadonlyArray<ProviderRule>): Array<RuleGroup> => {
  const anyPrefix = anyOf(formats.flatMap((r) => r.needles))
  let gatedText: string | undefined
  let gateOpen = false
  const gate = (text: string) => {
    if (text !== gatedText) {
      gatedText = text
      gateOpen = anyPrefix(text)
    }
    return gateOpen
  }
  const groups: Array<RuleGroup> = []
  for (const rule of formats) {
    const last = groups[groups.length - 1]
    if (rule.needles.length === 0) groups.push({ gate: always, rules: [rule] })
    else if (last !== undefined && last.gate === gate) (last.rules as Array<Rule>).push(rule)
    else groups.push({ gate, rules: [rule] })
  }
  return groups
}

// Names whose value is a secret in `name=value`, `name: value` or `"name": "value"`.
const SECRET_NAMES =
  "(?:password|passwd|pwd|passphrase|passcode|pw|pass|psk|secret|client[_-]?secret|api[_-]?key|apikey|api[_-]?token|access[_-]?token|" +
  "auth[_-]?token|refresh[_-]?token|bot[_-]?token|token|secret[_-]?key|access[_-]?key|aws[_-]?secret[_-]?access[_-]?key|" +
  "secret[_-]?access[_-]?key|access[_-]?key[_-]?id|private[_-]?key[_-]?id|private[_-]?key|account[_-]?key|shared[_-]?access[_-]?key|" +
  "auth[_-]?key|credentials?|session[_-]?token|signing[_-]?key|encryption[_-]?key|master[_-]?key|webhook[_-]?secret|" +
  "app[_-]?secret|consumer[_-]?secret|license[_-]?key|key)"

/** `name` as a whole key, optionally prefixed (`DB_PASSWORD`, `x-api-key`), for JSON keys and headers. */
export const SECRET_KEY = new RegExp(`^(?:[A-Za-z0-9]+[_.-])*${SECRET_NAMES}$`, "i")
const PASSWORD_NAME = /(?:pass|pwd|^pw$|[_.-]pw$|psk$)/i

/**
 * Whether a value under a secret name is a secret. Password-like names take any real value (people
 * choose "hunter2"); token and key names need a token's shape, so `max_token: 512` or `key: name`
 * in a YAML snippet stay.
 */
export const secretValue = (name: string, value: string, structured = false): boolean => {
  if (value.includes("<redacted_") || isPlaceholder(value)) return false
  // A JSON key named exactly for a secret (tool arguments) is stronger evidence than a word in text; a
  // bare `key` is not (memory tools store {key, value} pairs).
  if (PASSWORD_NAME.test(name) || (structured && !/^key$/i.test(name))) return value.length >= 3
  if (/^key$/i.test(name)) return value.length >= 16 && /\d/.test(value) && /[A-Za-z]/.test(value) && entropy(value) >= 3
  const shaped = /\d/.test(value) || /[^\w.-]/.test(value) || (/[a-z]/.test(value) && /[A-Z]/.test(value.slice(1))) || value.length >= 20
  return value.length >= 8 && shaped && entropy(value) >= 2.5
}

const SECRET_WORD = /pass|pwd|pw|psk|secret|key|token|credential/i

/**
 * Where the secret name starts in a key run: the leftmost position at a word boundary (the run's start, or a
 * letter or digit after "." or "-") from which the rest reads as `[prefix_]name`, as the former pattern's
 * `\b(?:[A-Za-z0-9]+[_.-])*name\b` found it; -1 when none does.
 */
const secretNameAt = (key: string): number => {
  // An environment name run together (PGPASSWORD, MYSQLPWD): the whole key names a secret.
  if (/^[A-Z][A-Z0-9]*(?:PASSWORD|PASSWD|PASSPHRASE|PWD|SECRET|TOKEN|APIKEY)$/.test(key)) return 0
  // camelCase (userPassword, dbPass, adminPwd): read as user_Password.
  if (/[a-z0-9][A-Z]/.test(key) && SECRET_KEY.test(key.replace(/([a-z0-9])([A-Z])/g, "$1_$2"))) return 0
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
    if (!alnum || (i > 0 && key[i - 1] !== "." && key[i - 1] !== "-")) continue
    if (SECRET_KEY.test(key.slice(i))) return i
  }
  return -1
}

const TYPE_NAMES = /^(?:str|string|int|integer|bool|boolean|bytes|number|text|any|none|null|optional\[\w+\]|varchar(?:\(\d+\))?)$/i

const keyValue: Rule = {
  // "password": "x", password=x, api_key: x, DB_PASSWORD=x in env, YAML, JSON, headers and prose. The key's
  // whole run is matched from its start (one start per run: a scan restarted inside a dotted or dashed run
  // was quadratic) and the name is found in it by code.
  name: "key_value",
  hint: (t) => SECRET_WORD.test(t),
  pattern: /(?<![A-Za-z0-9_.-])(["']?)([A-Za-z0-9_.-]+)(["']?\s*(?:[:=]|:=|=>)\s*)(?:"((?:[^"\\]|\\.){3,})"|'([^']{3,})'|([^\s,;"'<>}{)\]]{3,}))/g,
  replace: function (this: void, match: string, ...rest: Array<string | undefined>) {
    const [quote, key, separator, dq, sq, bare] = rest
    const { offset, whole } = matchedIn(rest)
    const at = secretNameAt(key ?? "")
    const value = dq ?? sq ?? bare ?? ""
    // A Wi-Fi network's "key" beside its "ssid" is its password, however short.
    const wifiKey = /^key$/i.test(key ?? "") && /ssid/i.test(whole.slice(Math.max(0, offset - 80), offset)) && value.length >= 3 && !isPlaceholder(value)
    if (!wifiKey && (at < 0 || !secretValue((key ?? "").slice(at), value))) return match
    // A type, not a value: `password: str`, `password: string` in a signature or an interface.
    if (bare !== undefined && TYPE_NAMES.test(value)) return match
    // A sentence, not a value: "Password: keep it the same", "WPA Password: leave it as it is".
    if (bare !== undefined && /^[a-z]+$/.test(value) && /^ [a-z]/.test(whole.slice(offset + match.length, offset + match.length + 2))) return match
    // Code and prose, not a value: `self.password = password`, `pw = user.password`, "Password: there is …".
    if (bare !== undefined && (/^(?:[A-Za-z_]\w*\.)*[A-Za-z_]*(?:pass(?:word|wd)?|pwd|secret|token)\w*$/i.test(value) || PROSE_STOP.has(value.toLowerCase()))) return match
    const prefix = `${quote}${key}${separator}`
    return dq !== undefined ? `${prefix}"${mark("secret")}"` : sq !== undefined ? `${prefix}'${mark("secret")}'` : `${prefix}${mark("secret")}`
  }
}

// Passwords said in words: "my password is hunter2", "the wifi code is 4815-1623", "PIN: 4821".
const PROSE_NAMES =
  "(?:password|passwort|kennwort|mot de passe|contraseña|senha|passwd|passphrase|passcode|pass\\s?code|pw|pwd|pin(?:\\s?(?:code|number))?|" +
  "(?:wi-?fi|wlan|network|router|door|alarm|gate|garage|lock|locker|safe|access|security|entry|unlock|bike\\s?lock|building)\\s?(?:code|key|password|pin|pass))"
const PROSE_STOP = new Set([
  "is", "was", "the", "a", "an", "not", "no", "incorrect", "wrong", "expired", "invalid", "too", "correct", "required", "empty",
  "reset", "changed", "below", "above", "same", "still", "in", "on", "at", "saved", "stored", "written", "missing", "weak",
  "strong", "long", "short", "case", "different", "working", "broken", "locked", "there", "here", "it", "that", "this",
  "something", "what", "easy", "hard", "secure", "fine", "ok", "okay", "set", "now", "also", "just", "only", "my", "your",
  "their", "our", "his", "her", "new", "old", "printed", "on", "under", "behind", "hidden", "sent", "attached", "encrypted",
  "hashed", "managed", "generated", "random", "unknown", "forgotten", "lost", "shared", "different", "case-sensitive"
])
const proseSecret: Rule = {
  name: "prose_password",
  hint: (t) => /pass|pw|pin|code|key|senha|contrase|kennwort/i.test(t),
  pattern: new RegExp(
    `(\\b${PROSE_NAMES}\\b(?:\\s+(?:for|to|of|on|at|f\u00fcr|f\u00fcrs|zum|zur|pour|para|per|du|de)\\s+(?:the\\s+|my\\s+|our\\s+|den\\s+|die\\s+|das\\s+|der\\s+|dem\\s+|le\\s+|la\\s+|el\\s+)?[\\w'.-]+(?:\\s[\\w'.-]+)?)?(?:\\s+(?:i|we|you|they|he|she)\\s+(?:use|used|picked|chose|set|have|got|made|gave you|sent you|agreed on|settled on|came up with|went with))?(?:,\\s*(?:by the way|btw|fyi|again|though|for the record|for now)\\s*,)?\\s*(?:=|:|->|['\u2019]s|é|\\b(?:is going to be|is gonna be|will become|is|was|are|ist|est|es|will be|should be|it's|is now|is still|now is|became|becomes|reads|lautet|war|as|c['\u2019]est|(?:[a-z]+)?,\\s*it(?:['\u2019]s| is)|(?:changed |set |is set |was set )?to)\\b)\\s*(?:just\\s+|simply\\s+|now\\s+|still\\s+|jetzt\\s+|nun\\s+|maintenant\\s+|ahora\\s+)?)(["'\`\u201c]?)([^\\s"'\`\u201d]{3,64}?)["'\`\u201d]?(?=[.,;!?)]{0,8}(?:\\s|$))`,
    "gi"
  ),
  replace: (match, prefix, quote, value) => {
    const v = value ?? ""
    if (PROSE_STOP.has(v.toLowerCase()) || isPlaceholder(v) || v.includes("<redacted_")) return match
    // An unquoted plain word after "is" is prose far more often than a password ("the code is changing"), and a
    // snake_case name is code ("rename the column password to password_digest").
    if (quote === "" && (/^[A-Z]?[a-z]+$/.test(v) || /^[a-z]+(?:_[a-z]+)+$/.test(v))) return match
    return `${prefix}${quote}${mark("password")}${quote === "" ? "" : quote === "\u201c" ? "\u201d" : quote}`
  }
}

/**
 * "the guest password Prism4427 works": the value right after the name, no verb. Only a value shaped like a
 * password (letters and digits together, 6 or more) counts: words after "password" are prose far more often.
 */
const proseSecretBare: Rule = {
  name: "prose_password_bare",
  hint: (t) => /pass|kennwort/i.test(t),
  pattern: /\b(password|passwort|kennwort|passcode|passphrase)([ \t]+)([A-Za-z0-9!@#$%^&*+?~-]{6,64})(?![\w<])/gi,
  replace: (match, name, space, value) => {
    const v = value ?? ""
    // An algorithm or a version is a word too: "password sha256", "passphrase v2-beta".
    if (!/\d/.test(v) || !/[A-Za-z]/.test(v) || /^\d+[a-z]{1,3}$/i.test(v) || /^(?:sha|md|bcrypt|argon|pbkdf|scrypt|aes|rsa|utf|base|v)\d/i.test(v) || isPlaceholder(v)) return match
    return `${name}${space}${mark("password")}`
  }
}

/**
 * Whether a word near "password" is shaped like one: letters and digits together, 6 to 64 characters, and none of
 * the shapes that sit beside that word in logs, tickets and code (versions, durations, ids, paths, addresses,
 * hashes, names that hold the word itself).
 */
const passwordShaped = (word: string): boolean =>
  word.length >= 6 && word.length <= 64 && /[A-Za-z]/.test(word) && /\d/.test(word) && !word.includes("<redacted_") &&
  !/[/@\\=]|pass|pwd/i.test(word) && !/^v?\d+(?:[.-]\d+)+/i.test(word) && !/^\d+[a-z]{1,3}\+?$/i.test(word) &&
  !/^[A-Z]+-\d+$/.test(word) && !/^[a-z]+(?:_[a-z0-9]+)+$/.test(word) && !(word.length >= 16 && /^[0-9a-f]+$/i.test(word)) &&
  !/^(?:sha|md|bcrypt|argon|pbkdf|scrypt|aes|rsa|utf|base|ssh|wpa|tls|ssl|http|ipv)\d/i.test(word) && !isPlaceholder(word)

/**
 * A password a person picked, not a model or a version: password-shaped, starting with a letter, with a lowercase
 * letter (RAX120, AX210 and KB5032190 are names of things), and none of the characters of paths, hosts and ranges.
 */
const personalPassword = (word: string): boolean =>
  passwordShaped(word) && /^[A-Za-z]/.test(word) && /[a-z]/.test(word) && !/[.:,/\\%{}()[\]<>'"`]/.test(word)

/**
 * "new password for the printer admin page: Gorse8813", "password-wise, is now Pine4471": a password-shaped word
 * within six words after the name, in the same sentence, whatever the words between. The forms people use to
 * say a password are endless, the shape of one is not; the earlier prose rules have run, so a window that holds
 * a redaction already is left alone.
 */
const prosePasswordNear: Rule = {
  name: "prose_password_near",
  hint: (t) => /pass|kennwort|contrase|senha/i.test(t),
  pattern: /\b(password|passwort|kennwort|passphrase|passcode|mot de passe|contrase\u00f1a|senha)\b([^\n;!?]{0,80})/gi,
  replace: (match, name, window) => {
    const w = window ?? ""
    if (w.includes("<redacted_")) return match
    const sentence = w.slice(0, (/\.(?:\s|$)/.exec(w)?.index ?? w.length) + 1)
    let words = 0
    let previous = ""
    for (const m of sentence.matchAll(/[^\s]+/g)) {
      if (++words > 6) break
      const word = m[0].replace(/^[("'`\u201c\u2018]+|[)"'`\u201d\u2019.,:;?!]+$/g, "")
      // Whose password, not the password: "the password for user42", "reset the password of admin2".
      const owner = /^(?:for|of|user|username|account|login)$/i.test(previous)
      previous = word
      if (!owner && passwordShaped(word)) {
        const at = m.index! + m[0].indexOf(word)
        return `${name}${w.slice(0, at)}${mark("password")}${w.slice(at + word.length)}`
      }
    }
    return match
  }
}

/**
 * A credential named by another word than "password": "the Plex login is jonas / Quill4428", "our home wifi:
 * Clover8874", "creds for the camera: admin Heron5518", "unraid login root, pass Tamarind3306". The word, at most
 * four words about what it is for, a separator (is, was, ":", "=", "-"), then the value: the first word, or the
 * second after a user ("jonas /", "admin"); after a comma, "pass" or "pw" alone will do ("root, pass X"). Only a
 * value a person would pick counts: those words are beside models, versions and hosts far more often ("the
 * router: AXE5400", "wifi is slow since …").
 */
const credentialNamedOtherwise: Rule = {
  name: "credential_named_otherwise",
  hint: (t) => /log-?[io]n|creds|credential|wi-?fi|wlan|router|admin|\bpw|\bpass\b|sign[ -]?in/i.test(t),
  pattern: /(?:\b(log-?in|logon|creds|credentials|wi-?fi|wlan|router|admin|pw|pwd|pass|sign[ -]?in)\b((?:[ \t]+[\w'.-]+){0,4}?[ \t]*(?::|=|-|\u2013|\u2014|['\u2019]s|\bis(?:[ \t]+now)?|\bwas|\bwith)[ \t]+)|(?<=,[ \t]*)(pass|pw|pwd)([ \t]+))(["'`\u201c]?)([^\s"'`\u201d,/]+)(?:([ \t]*(?:\/|,[ \t]*(?:pass|pw|pwd)?|[ \t]+and)?[ \t]+)(["'`\u201c]?)([^\s"'`\u201d,]+))?/gi,
  replace: (match, named, spaced, listed, space, q1, first, pair, q2, second) => {
    // "root, pass Tamarind3306": after a comma, pass/pw need no separator.
    const name = named ?? listed
    const between = spaced ?? space
    if ((between ?? "").includes("<redacted_")) return match
    const clean = (w: string) => w.replace(/[)\u201d.,:;?!]+$/, "")
    const one = clean(first ?? "")
    if (personalPassword(one)) return `${name}${between}${q1}${mark("password")}${match.slice((name ?? "").length + (between ?? "").length + (q1 ?? "").length + one.length)}`
    const two = clean(second ?? "")
    if (pair !== undefined && personalPassword(two) && !one.includes("<redacted_")) {
      const head = `${name}${between}${q1}${first}${pair}${q2}`
      return `${head}${mark("password")}${match.slice(head.length + two.length)}`
    }
    return match
  }
}

/** "use X as the password", "log in with X as the PIN": the value before the name. */
const proseSecretBefore: Rule = {
  name: "prose_password_before",
  hint: (t) => /\b(?:as|for)\s/i.test(t) && /pass|pin|code/i.test(t),
  pattern: /\b(use|using|used|with|try|tried|enter|type|settled on|went with|chose|picked)\s+(["'`\u201c]?)([^\s"'`\u201d]{3,64})["'`\u201d]?\s+(?:as|for)\s+(?:the\s+|my\s+|your\s+|our\s+|a\s+)?(?:[a-z-]+\s+)?(?:password|passcode|passphrase|pin|wi-?fi\s+password|code)\b/gi,
  replace: (match, _verb, quote, value) => {
    const v = value ?? ""
    if (PROSE_STOP.has(v.toLowerCase()) || isPlaceholder(v) || v.includes("<redacted_") || (quote === "" && /^[A-Z]?[a-z]+$/.test(v))) return match
    return match.replace(v, mark("password"))
  }
}

// Words that say a nearby random string is a credential, and words that say it is a hash or an id.
const CONTEXT_SECRET = /(?:token|secret|api[ _-]?key|\bkey\b|password|passwd|credential|auth|bearer|log ?in|sign ?in|access code|\bpat\b|license)/i
const CONTEXT_HASH = /(?:commit|\bsha\d*\b|sha-?\d+|hash|checksum|digest|md5|fingerprint|revision|\brev\b|etag|build|uuid|\bid\b|trace|request|session id|version|image|file|blob|object)/i

const looksRandom = (run: string, minEntropy: number) =>
  /\d/.test(run) && /[A-Za-z]/.test(run) && entropy(run) >= minEntropy &&
  !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(run) && !/^\d[\d.:-]*$/.test(run)

const PUBLIC_KEY_TYPE = /^(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/

const contextToken: Rule = {
  // A random-looking run near a word that calls it a credential (gitleaks' generic rule, Presidio's
  // context words); a bare run that is long and mixed-case enough is a secret without any word.
  name: "context_token",
  hint: (t) => hasAlnumRun(t, 16),
  pattern: /(?<![A-Za-z0-9_+/=.<-])[A-Za-z0-9][A-Za-z0-9_+/=.-]{15,}(?![A-Za-z0-9_+/=-])/g,
  replace: function (this: void, match: string, ...rest: Array<string | undefined>) {
    const { offset, whole } = matchedIn(rest)
    const run = match.replace(/[.=]+$/, "")
    if (run.includes("redacted_") || /^(?:https?|www\.)/i.test(run) || run.includes("..")) return match
    const before = whole.slice(Math.max(0, offset - 48), offset)
    // Public: an SSH public key's type and blob (the blob spells its type in base64), and package or
    // subresource integrity hashes (sha512-…, go.sum's h1:…).
    if (PUBLIC_KEY_TYPE.test(run) || /^AAAA(?:[A-Z]3NzaC1|E2VjZHNh)/.test(run) || /^sha(?:1|224|256|384|512)-/.test(run) || /(?:^|[\s"'=])h1:$/.test(before)) return match
    const after = whole.slice(offset + match.length, offset + match.length + 24)
    const hashNear = CONTEXT_HASH.test(before.slice(-28))
    const secretNear = CONTEXT_SECRET.test(before) || CONTEXT_SECRET.test(after)
    const mixedCase = /[a-z]/.test(run) && /[A-Z]/.test(run)
    if (secretNear && !hashNear && looksRandom(run, 3)) return mark("token")
    if (!hashNear && run.length >= 32 && mixedCase && looksRandom(run, 4.2)) return mark("token")
    return match
  }
}

const phoneContext = /(?:phone|call|\btel\b|tel\.|mobile|\bcell|number|\bno\.|whats ?app|signal|sms|text me|reach me|\bring\b|fax|landline|contact|handy|telefon|t[ée]l[ée]phone|num[ée]ro|portable|m[óo]vil|cellulare)/i
// A contact list's label: up to three words that start with a capital (a name: "Ana", "Oma Hildegard"), or end
// in a separator ("plumber Klaus, ", "- Ana: "); never one that names an id ("order", "commit", "version").
const CONTACT_LABEL = /^[\s*•·-]*(?:\p{Lu}[\p{L}.'’()]*(?: \p{L}[\p{L}.'’()]*){0,2}\s*[:—–,-]?|\p{L}[\p{L}.'’()]*(?: \p{L}[\p{L}.'’()]*){0,2}\s*[:—–,])\s*$/u
// The same, looser, for a number grouped as people write phone numbers (654 321 987, 347 555 0192): one to three
// words in any case, brackets and separators between them ("landlord (Mr. Rossi) ", "plumber - Joaquim ").
const LOOSE_LABEL = /^[\s*•·-]*[\p{L}(][\p{L}.'’()]*(?: ?[-—–,:]? [\p{L}(][\p{L}.'’()]*){0,2} ?[-—–,:]? ?$/u
const GROUPED = /^\d{2,4}(?:[ -]\d{2,4}){1,3}$/
const ID_WORDS = /\b(?:id|ids|version|order|commit|build|ref|invoice|ticket|pack|sha|hash|no|number|code|pin|otp|total|sum|checksum|digest|amount|compute|chat)\b/i
const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/

const phone: Rule = {
  // International (+CC or 00CC) numbers when libphonenumber knows them; national numbers when valid in a
  // common region and written like one ((415) 555-0132, 020 7946 0958, 415.555.0132) or next to a word
  // that says they are. A bare digit run with no such word is an id, an order number or a timestamp.
  name: "phone",
  hint: hasDigitPair,
  pattern: /(?<![\w+./:#$€£-])(?:\+|00)?\(?\d[\d ().\u00a0-]{5,20}\d(?![\w./:-]?\d)(?![.,]\d)/g,
  replace: function (this: void, match: string, ...rest: Array<string | undefined>) {
    const { offset, whole } = matchedIn(rest)
    const digits = match.replace(/\D/g, "")
    const international = /^(?:\+|00)/.test(match)
    const northAmerican = /^\d{3}([.-])\d{3}\1\d{4}$/.test(match)
    if (digits.length < 7 || digits.length > 15 || DATE_LIKE.test(match.trim())) return match
    if (!northAmerican && /^\d+(?:\.\d+){2,}$/.test(match)) return match
    if (/\d\.\d{1,2}$/.test(match) && !international) return match
    const formatted = northAmerican || /^\(\d{2,5}\)/.test(match) || /^0\d{1,4}[ .-]\d/.test(match)
    const before = whole.slice(Math.max(0, offset - 40), offset)
    // A code that runs on before the number ("tracking 1Z 999 AA1 01 2345 6784"): digits and letters together.
    const previous = /(\S+) $/.exec(before)?.[1] ?? ""
    if (/^[A-Za-z0-9]+$/.test(previous) && /\d/.test(previous) && /[A-Za-z]/.test(previous)) return match
    // A contact list: the line so far, or its part after a dash or a bullet, is only a short name ("- Ana: ",
    // "João — ", "Mum ", "emergency list — neighbour Carmen: ").
    const line = before.slice(before.lastIndexOf("\n") + 1)
    const cut = Math.max(line.lastIndexOf("—"), line.lastIndexOf("–"), line.lastIndexOf("•"), line.lastIndexOf(";"), line.lastIndexOf("|"))
    const label = cut >= 0 && /\p{L}/u.test(line.slice(cut + 1)) ? line.slice(cut + 1) : line
    // …and the number ends there: digits running into letters are part of a hash or an id.
    const named = CONTACT_LABEL.test(label) || (GROUPED.test(match) && LOOSE_LABEL.test(label))
    const listed = named && !ID_WORDS.test(label) && !/^\w/.test(whole.slice(offset + match.length, offset + match.length + 1))
    const context = listed || phoneContext.test(before)
    if (!international && !formatted && !context) return match
    return phoneValid(match) ? mark("phone") : match
  }
}

/** Armored keys and JWTs: first, so that no later rule takes a piece of one. */
const ARMORED: ReadonlyArray<Rule> = [
  {
    name: "private_key",
    hint: has("PRIVATE KEY", "PuTTY-User-Key"),
    pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)|PuTTY-User-Key-File-\d:[\s\S]*?(?:Private-MAC: [0-9a-f]+|$)/g,
    replace: () => mark("private_key")
  },
  {
    name: "jwt",
    hint: has("eyJ"),
    // One start per run of token characters (not at each "eyJ" inside one): linear however the run repeats.
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
    replace: () => mark("jwt")
  }
]

/** Secrets inside URLs, headers, command lines and XML; every hint is literal (`has`). */
const IN_URLS_AND_HEADERS: ReadonlyArray<Rule> = [
  {
    // Webhook URLs whose path is the credential.
    name: "webhook_url",
    hint: has("hooks.slack.com", "/api/webhooks/", "webhook.office.com", "/webhookb2/", "hooks.zapier.com", "maker.ifttt.com"),
    pattern: /https?:\/\/(?:hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9/_-]+|(?:[a-z]+\.)?discord(?:app)?\.com\/api\/webhooks\/\d+\/[A-Za-z0-9_-]+|[A-Za-z0-9.-]*webhook\.office\.com\/webhookb2\/[^\s"'<>]+|hooks\.zapier\.com\/hooks\/catch\/[^\s"'<>]+|maker\.ifttt\.com\/trigger\/[^\s"'<>]+)/g,
    replace: () => mark("webhook_url")
  },
  {
    // Credentials inside URLs: user:password@host (database, broker and basic-auth URLs).
    name: "url_password",
    hint: has("://"),
    // A password holding an unencoded "@" runs to the last "@" before the host, as URL parsers read it (the
    // greedy run gives back to its last "@"). The scheme starts a run, not anywhere inside one.
    pattern: /(?<![a-zA-Z0-9+.-])([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^\s:/?#@"'<>]*):([^\s/"'<>]+)@/g,
    // FTP's anonymous login takes any password by convention (often "anonymous" or an e-mail address).
    replace: (match, scheme, user, password) =>
      isPlaceholder(password ?? "") || (password ?? "").includes("<redacted_") || /^anonymous$/i.test(user ?? "") ? match : `${scheme}${user}:${mark("password")}@`
  },
  {
    name: "url_token_param",
    hint: has("?", "&"),
    pattern: /([?&](?:access_token|token|api_key|apikey|key|sig|signature|secret|password|auth|code|client_secret|private_token)=)([^&#\s"'<>]{6,})/gi,
    replace: (match, prefix, value) => (isPlaceholder(value ?? "") ? match : `${prefix}${mark("token")}`)
  },
  {
    // Azure connection strings: AccountKey=..., SharedAccessKey=..., SharedAccessSignature=...
    name: "azure_connection",
    hint: has("AccountKey=", "SharedAccessKey=", "SharedAccessSignature="),
    pattern: /\b(AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s"']+/g,
    replace: (_m, name) => `${name}=${mark("secret")}`
  },
  {
    name: "auth_header",
    hint: has("earer", "asic ", "oken ", "Digest "),
    pattern: /\b(Bearer|Basic|Token|Digest)\s+([A-Za-z0-9._~+/=-]{12,})/g,
    // "Bearer authentication" is a word: a token has a digit, a capital after its first letter, or a symbol.
    replace: (match, scheme, value) =>
      (scheme === "Token" && !/\d/.test(value ?? "")) || /^[A-Za-z][a-z]+$/.test(value ?? "") ? match : `${scheme} ${mark("token")}`
  },
  {
    // curl -u user:password, and the same pair after --user.
    name: "cli_user_password",
    hint: has("-u ", "--user"),
    pattern: /((?:^|\s)(?:-u|--user)[\s=]+["']?[^\s:"'=]+:)([^\s"']{3,})/g,
    replace: (match, prefix, value) => (isPlaceholder(value ?? "") ? match : `${prefix}${mark("password")}`)
  },
  {
    // Passwords given to command-line tools: --password X, --password=X, --pass X; and the short flags that mean
    // a password only for some tools: mysql's -pX (attached), sshpass/docker login's -p X, redis-cli's -a X.
    name: "cli_password_flag",
    hint: has("-pass", "-p", "-P", "-a ", "-w "),
    pattern: /(?<![\w-])(--?pass(?:word|wd|phrase)?(?:=|[ \t]+)|-p(?=[^\s-])|-[paPw][ \t]+)(["']?)([^\s"'-][^\s"']{2,})/g,
    replace: (match: string, flag: string | undefined, quote: string | undefined, value: string | undefined, ...rest: Array<unknown>) => {
      const { offset, whole } = matchedIn(rest)
      const v = value ?? ""
      if (isPlaceholder(v) || v.includes("<redacted_")) return match
      const command = lineBefore(whole, offset, 160)
      const f = (flag ?? "").trim()
      const means = f.startsWith("--") || f.startsWith("-pass") ||
        (f === "-P" && /\b(?:zip|unzip|zipcloak)\b/.test(command)) ||
        (f === "-p" && flag === "-p" && /\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|7z|7za|7zr|7zz|rar|unrar)\b/.test(command)) ||
        (f === "-p" && flag !== "-p" && /\b(?:sshpass|(?:docker|podman|helm|oras|skopeo)\s+(?:\S+\s+)*?login)\b/.test(command)) ||
        (f === "-a" && /\bredis-cli\b/.test(command)) ||
        (f === "-P" && /\b(?:mosquitto_(?:pub|sub|rr)|sqlcmd|bcp)\b/.test(command)) ||
        (f === "-w" && /\bldap[a-z]+\b/.test(command)) ||
        // Any other tool: a user given earlier on the line, then a short flag whose value is shaped like a password.
        (f !== "-a" && /(?:^|\s)(?:-[uUlD]|--user(?:name)?)[ \t=]/.test(command) && personalPassword(v))
      return means ? `${flag}${quote}${mark("password")}${quote}` : match
    }
  },
  {
    // Samba's tools take -U user%password (smbclient, rpcclient, net rpc).
    name: "cli_samba_user",
    hint: has("%"),
    // One start per word (after white space, a quote or "="), so the user's run is read once.
    pattern: /(?<![^\s"'=])([^\s%"'=-][^\s%"'=]*%)([^\s"']{3,})/g,
    replace: (match: string, prefix: string | undefined, value: string | undefined, ...rest: Array<unknown>) => {
      const { offset, whole } = matchedIn(rest)
      const command = lineBefore(whole, offset, 160)
      if (!/(?:^|\s)(?:-U[ \t]*|--user[= \t])["']?$/.test(command) || !/\b(?:smbclient|rpcclient|smbcacls|smbget|net[ \t]+(?:rpc|ads))\b/.test(command) || isPlaceholder(value ?? "")) return match
      return `${prefix}${mark("password")}`
    }
  },
  {
    // Windows' net use \\server\share /user:NAME PASSWORD: the word after the user is its password.
    name: "cli_net_use",
    hint: has("/user:", "/USER:"),
    pattern: /((?<![\w/])\/user:[^\s/]+[ \t]+)(["']?)([^\s"'/*][^\s"']{2,})/gi,
    replace: (match: string, prefix: string | undefined, quote: string | undefined, value: string | undefined, ...rest: Array<unknown>) => {
      const { offset, whole } = matchedIn(rest)
      if (!/\bnet\s+use\b/i.test(lineBefore(whole, offset, 200)) || isPlaceholder(value ?? "")) return match
      return `${prefix}${quote}${mark("password")}${quote}`
    }
  },
  {
    // htpasswd -b[c] FILE USER PASSWORD: the password is the third word after the flags (-b means "on the command line").
    name: "cli_htpasswd",
    hint: has("htpasswd"),
    pattern: /((?<![\w-])htpasswd((?:[ \t]+-[A-Za-z]+)+)[ \t]+[^\s-]\S*[ \t]+[^\s-]\S*[ \t]+)(["']?)([^\s"']{3,})/g,
    replace: (match, prefix, flags, quote, value) => (/b/.test(flags ?? "") && !isPlaceholder(value ?? "") ? `${prefix}${quote}${mark("password")}${quote}` : match)
  },
  {
    // <password>x</password> in XML configs and SOAP bodies.
    name: "xml_secret",
    hint: has("</"),
    pattern: new RegExp(`<((?:[A-Za-z0-9]+[_.-])*${SECRET_NAMES})>([^<]{3,})</\\1>`, "gi"),
    replace: (match, name, value) => (secretValue(name ?? "", value ?? "") ? `<${name}>${mark("secret")}</${name}>` : match)
  }
]

const SSH_COMMAND = /(?:^|[\s`$(;&|])(?:ssh|scp|sftp|rsync|mosh|ssh-copy-id|autossh|git\s+(?:clone|push|pull|fetch|remote\s+add\s+\S+))\s/

const email: Rule = {
  // An SSH remote (git@github.com:org/repo.git) has an address shape but is not an address.
  name: "email",
  hint: has("@"),
  // The address starts where its run of address characters starts: a scan restarted at every "-" or "." of
  // one long run would be quadratic.
  pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b(?!:[\w~./-])/g,
  replace: (match: string, ...rest: Array<string | undefined>) => {
    const { offset, whole } = matchedIn(rest)
    // user@host in an ssh, scp, rsync or git command on the same line is a login, not an address.
    const sameLine = lineBefore(whole, offset, 120)
    // Also the user-info of a URL (https://user:token@host) that url_password left as a placeholder.
    return SSH_COMMAND.test(sameLine) || /:\/\/[^\s/@]*:$/.test(sameLine) ? match : mark("email")
  }
}

/** Identifiers and numbers: each needs two digits in a row. */
const NUMBERS: ReadonlyArray<Rule> = [
  {
    name: "iban",
    hint: (t) => /[A-Z]{2}\d{2}/.test(t),
    pattern: /\b([A-Z]{2})(\d{2})((?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)\b/g,
    replace: (match, country) => {
      const compact = match.replace(/ /g, "")
      const length = ibanLength(country ?? "")
      if (length === undefined || compact.length < length) return match
      if (!ibanValid(compact.slice(0, length))) return match
      // A greedy match may have taken the next word's characters: keep what lies beyond the IBAN.
      let seen = 0
      let cut = 0
      while (seen < length) if (match[cut++] !== " ") seen++
      return mark("iban") + match.slice(cut)
    }
  },
  {
    // 13-19 digits, optionally grouped by spaces or dashes, with a card-network prefix and a valid Luhn sum.
    name: "card",
    hint: hasDigits,
    pattern: /(?<![\w.,-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d.,-]?\d|\w)/g,
    replace: (match, ...rest) => {
      const digits = match.replace(/[ -]/g, "")
      if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return match
      // One digit run in ten passes Luhn by chance: an unseparated run of an unusual card length (an
      // order or tracking number far more often) needs a word that says it is a card.
      if (digits === match && digits.length !== 15 && digits.length !== 16) {
        const { offset, whole } = matchedIn(rest)
        if (!/card|visa|master|amex|credit|debit|\bcc\b|pay/i.test(whole.slice(Math.max(0, offset - 32), offset))) return match
      }
      return mark("card")
    }
  },
  {
    name: "ssn",
    hint: hasDigits,
    pattern: /(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])/g,
    replace: (match, area, _sep, group, serial) => (ssnValid(area!, group!, serial!) ? mark("national_id") : match)
  },
  {
    // An unformatted SSN only with a word that says it is one.
    name: "ssn_context",
    hint: (t) => /\d{9}/.test(t) && /ssn|social security/i.test(t),
    pattern: /((?:ssn|social security(?: number| no\.?)?)\D{0,12})(\d{3})(\d{2})(\d{4})\b/gi,
    replace: (match, prefix, area, group, serial) => (ssnValid(area!, group!, serial!) ? `${prefix}${mark("national_id")}` : match)
  },
  {
    // UK National Insurance number, with the prefixes HMRC never issues excluded.
    name: "uk_nino",
    hint: hasDigitPair,
    pattern: /\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g,
    replace: () => mark("national_id")
  },
  {
    name: "es_dni",
    hint: hasDigits,
    pattern: /\b[XYZ]?\d{7,8}-?[A-Z]\b/g,
    replace: (match) => (dniValid(match) ? mark("national_id") : match)
  },
  phone
]

const literalGate = (rules: ReadonlyArray<Rule>) =>
  anyOf(rules.flatMap((r) => {
    const needles = (r.hint as Partial<LiteralHint>).needles
    if (needles === undefined) throw new Error(`rule ${r.name} has no literal hint to share a gate`)
    return needles
  }))
const single = (rule: Rule): RuleGroup => ({ gate: always, rules: [rule] })

/** The rules in the order they run, in their gated groups. */
export const RULE_GROUPS: ReadonlyArray<RuleGroup> = [
  { gate: literalGate(ARMORED), rules: ARMORED },
  ...providerGroups(PROVIDER_FORMATS),
  { gate: literalGate(IN_URLS_AND_HEADERS), rules: IN_URLS_AND_HEADERS },
  single(keyValue),
  single(proseSecret),
  single(proseSecretBefore),
  single(proseSecretBare),
  single(prosePasswordNear),
  single(credentialNamedOtherwise),
  single(contextToken),
  single(email),
  { gate: hasDigitPair, rules: NUMBERS }
]

export const RULES: ReadonlyArray<Rule> = RULE_GROUPS.flatMap((g) => g.rules)

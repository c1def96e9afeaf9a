/**
 * Keyword-anchored secrets: `name=value` pairs whose name says secret (with a shape test on the value), passwords
 * said in words, and random-looking strings a nearby word calls a credential.
 */
import { entropy, isPlaceholder } from "../Checks.js"
import { hasAlnumRun, mark, matchedIn, type Rule } from "./Hints.js"

// Names whose value is a secret in `name=value`, `name: value` or `"name": "value"`.
export const SECRET_NAMES =
  "(?:password|passwd|pwd|passphrase|passcode|pw|pass|psk|secret|client[_-]?secret|api[_-]?key|apikey|api[_-]?token|access[_-]?token|" +
  "auth[_-]?token|refresh[_-]?token|bot[_-]?token|token|secret[_-]?key|access[_-]?key|aws[_-]?secret[_-]?access[_-]?key|" +
  "secret[_-]?access[_-]?key|access[_-]?key[_-]?id|private[_-]?key[_-]?id|private[_-]?key|account[_-]?key|shared[_-]?access[_-]?key|" +
  "auth[_-]?key|credentials?|session[_-]?token|signing[_-]?key|encryption[_-]?key|master[_-]?key|webhook[_-]?secret|" +
  "app[_-]?secret|consumer[_-]?secret|license[_-]?key|key)"

/** `name` as a whole key, optionally prefixed (`DB_PASSWORD`, `x-api-key`), for JSON keys and headers. */
export const SECRET_KEY = new RegExp(`^(?:[A-Za-z0-9]+[_.-])*${SECRET_NAMES}$`, "i")
export const PASSWORD_NAME = /(?:pass|pwd|^pw$|[_.-]pw$|psk$)/i

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
  if (/^key$/i.test(name))
    return value.length >= 16 && /\d/.test(value) && /[A-Za-z]/.test(value) && entropy(value) >= 3
  const shaped =
    /\d/.test(value) ||
    /[^\w.-]/.test(value) ||
    (/[a-z]/.test(value) && /[A-Z]/.test(value.slice(1))) ||
    value.length >= 20
  return value.length >= 8 && shaped && entropy(value) >= 2.5
}

export const SECRET_WORD = /pass|pwd|pw|psk|secret|key|token|credential/i

/**
 * Where the secret name starts in a key run: the leftmost position at a word boundary (the run's start, or a
 * letter or digit after "." or "-") from which the rest reads as `[prefix_]name`, as the former pattern's
 * `\b(?:[A-Za-z0-9]+[_.-])*name\b` found it; -1 when none does.
 */
export const secretNameAt = (key: string): number => {
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

export const TYPE_NAMES =
  /^(?:str|string|int|integer|bool|boolean|bytes|number|text|any|none|null|optional\[\w+\]|varchar(?:\(\d+\))?)$/i

export const keyValue: Rule = {
  // "password": "x", password=x, api_key: x, DB_PASSWORD=x in env, YAML, JSON, headers and prose. The key's
  // whole run is matched from its start (one start per run: a scan restarted inside a dotted or dashed run
  // was quadratic) and the name is found in it by code.
  name: "key_value",
  hint: (t) => SECRET_WORD.test(t),
  pattern:
    /(?<![A-Za-z0-9_.-])(["']?)([A-Za-z0-9_.-]+)(["']?\s*(?:[:=]|:=|=>)\s*)(?:"((?:[^"\\]|\\.){3,})"|'([^']{3,})'|([^\s,;"'<>}{)\]]{3,}))/g,
  replace: function (this: void, match: string, ...rest: Array<string | undefined>) {
    const [quote, key, separator, dq, sq, bare] = rest
    const { offset, whole } = matchedIn(rest)
    const at = secretNameAt(key ?? "")
    const value = dq ?? sq ?? bare ?? ""
    // A Wi-Fi network's "key" beside its "ssid" is its password, however short.
    const wifiKey =
      /^key$/i.test(key ?? "") &&
      /ssid/i.test(whole.slice(Math.max(0, offset - 80), offset)) &&
      value.length >= 3 &&
      !isPlaceholder(value)
    if (!wifiKey && (at < 0 || !secretValue((key ?? "").slice(at), value))) return match
    // A type, not a value: `password: str`, `password: string` in a signature or an interface.
    if (bare !== undefined && TYPE_NAMES.test(value)) return match
    // A sentence, not a value: "Password: keep it the same", "WPA Password: leave it as it is".
    if (
      bare !== undefined &&
      /^[a-z]+$/.test(value) &&
      /^ [a-z]/.test(whole.slice(offset + match.length, offset + match.length + 2))
    )
      return match
    // Code and prose, not a value: `self.password = password`, `pw = user.password`, "Password: there is …".
    if (
      bare !== undefined &&
      (/^(?:[A-Za-z_]\w*\.)*[A-Za-z_]*(?:pass(?:word|wd)?|pwd|secret|token)\w*$/i.test(value) ||
        PROSE_STOP.has(value.toLowerCase()))
    )
      return match
    const prefix = `${quote}${key}${separator}`
    return dq !== undefined
      ? `${prefix}"${mark("secret")}"`
      : sq !== undefined
        ? `${prefix}'${mark("secret")}'`
        : `${prefix}${mark("secret")}`
  }
}

// Passwords said in words: "my password is hunter2", "the wifi code is 4815-1623", "PIN: 4821".
export const PROSE_NAMES =
  "(?:password|passwort|kennwort|mot de passe|contraseña|senha|passwd|passphrase|passcode|pass\\s?code|pw|pwd|pin(?:\\s?(?:code|number))?|" +
  "(?:wi-?fi|wlan|network|router|door|alarm|gate|garage|lock|locker|safe|access|security|entry|unlock|bike\\s?lock|building)\\s?(?:code|key|password|pin|pass))"
export const PROSE_STOP = new Set([
  "is",
  "was",
  "the",
  "a",
  "an",
  "not",
  "no",
  "incorrect",
  "wrong",
  "expired",
  "invalid",
  "too",
  "correct",
  "required",
  "empty",
  "reset",
  "changed",
  "below",
  "above",
  "same",
  "still",
  "in",
  "on",
  "at",
  "saved",
  "stored",
  "written",
  "missing",
  "weak",
  "strong",
  "long",
  "short",
  "case",
  "different",
  "working",
  "broken",
  "locked",
  "there",
  "here",
  "it",
  "that",
  "this",
  "something",
  "what",
  "easy",
  "hard",
  "secure",
  "fine",
  "ok",
  "okay",
  "set",
  "now",
  "also",
  "just",
  "only",
  "my",
  "your",
  "their",
  "our",
  "his",
  "her",
  "new",
  "old",
  "printed",
  "on",
  "under",
  "behind",
  "hidden",
  "sent",
  "attached",
  "encrypted",
  "hashed",
  "managed",
  "generated",
  "random",
  "unknown",
  "forgotten",
  "lost",
  "shared",
  "different",
  "case-sensitive"
])
export const proseSecret: Rule = {
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
export const proseSecretBare: Rule = {
  name: "prose_password_bare",
  hint: (t) => /pass|kennwort/i.test(t),
  pattern: /\b(password|passwort|kennwort|passcode|passphrase)([ \t]+)([A-Za-z0-9!@#$%^&*+?~-]{6,64})(?![\w<])/gi,
  replace: (match, name, space, value) => {
    const v = value ?? ""
    // An algorithm or a version is a word too: "password sha256", "passphrase v2-beta".
    if (
      !/\d/.test(v) ||
      !/[A-Za-z]/.test(v) ||
      /^\d+[a-z]{1,3}$/i.test(v) ||
      /^(?:sha|md|bcrypt|argon|pbkdf|scrypt|aes|rsa|utf|base|v)\d/i.test(v) ||
      isPlaceholder(v)
    )
      return match
    return `${name}${space}${mark("password")}`
  }
}

/**
 * Whether a word near "password" is shaped like one: letters and digits together, 6 to 64 characters, and none of
 * the shapes that sit beside that word in logs, tickets and code (versions, durations, ids, paths, addresses,
 * hashes, names that hold the word itself).
 */
export const passwordShaped = (word: string): boolean =>
  word.length >= 6 &&
  word.length <= 64 &&
  /[A-Za-z]/.test(word) &&
  /\d/.test(word) &&
  !word.includes("<redacted_") &&
  !/[/@\\=]|pass|pwd/i.test(word) &&
  !/^v?\d+(?:[.-]\d+)+/i.test(word) &&
  !/^\d+[a-z]{1,3}\+?$/i.test(word) &&
  !/^[A-Z]+-\d+$/.test(word) &&
  !/^[a-z]+(?:_[a-z0-9]+)+$/.test(word) &&
  !(word.length >= 16 && /^[0-9a-f]+$/i.test(word)) &&
  !/^(?:sha|md|bcrypt|argon|pbkdf|scrypt|aes|rsa|utf|base|ssh|wpa|tls|ssl|http|ipv)\d/i.test(word) &&
  !isPlaceholder(word)

/**
 * A password a person picked, not a model or a version: password-shaped, starting with a letter, with a lowercase
 * letter (RAX120, AX210 and KB5032190 are names of things), and none of the characters of paths, hosts and ranges.
 */
export const personalPassword = (word: string): boolean =>
  passwordShaped(word) && /^[A-Za-z]/.test(word) && /[a-z]/.test(word) && !/[.:,/\\%{}()[\]<>'"`]/.test(word)

/**
 * "new password for the printer admin page: Gorse8813", "password-wise, is now Pine4471": a password-shaped word
 * within six words after the name, in the same sentence, whatever the words between. The forms people use to
 * say a password are endless, the shape of one is not; the earlier prose rules have run, so a window that holds
 * a redaction already is left alone.
 */
export const prosePasswordNear: Rule = {
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
export const credentialNamedOtherwise: Rule = {
  name: "credential_named_otherwise",
  hint: (t) => /log-?[io]n|creds|credential|wi-?fi|wlan|router|admin|\bpw|\bpass\b|sign[ -]?in/i.test(t),
  pattern:
    /(?:\b(log-?in|logon|creds|credentials|wi-?fi|wlan|router|admin|pw|pwd|pass|sign[ -]?in)\b((?:[ \t]+[\w'.-]+){0,4}?[ \t]*(?::|=|-|\u2013|\u2014|['\u2019]s|\bis(?:[ \t]+now)?|\bwas|\bwith)[ \t]+)|(?<=,[ \t]*)(pass|pw|pwd)([ \t]+))(["'`\u201c]?)([^\s"'`\u201d,/]+)(?:([ \t]*(?:\/|,[ \t]*(?:pass|pw|pwd)?|[ \t]+and)?[ \t]+)(["'`\u201c]?)([^\s"'`\u201d,]+))?/gi,
  replace: (match, named, spaced, listed, space, q1, first, pair, q2, second) => {
    // "root, pass Tamarind3306": after a comma, pass/pw need no separator.
    const name = named ?? listed
    const between = spaced ?? space
    if ((between ?? "").includes("<redacted_")) return match
    const clean = (w: string) => w.replace(/[)\u201d.,:;?!]+$/, "")
    const one = clean(first ?? "")
    if (personalPassword(one))
      return `${name}${between}${q1}${mark("password")}${match.slice((name ?? "").length + (between ?? "").length + (q1 ?? "").length + one.length)}`
    const two = clean(second ?? "")
    if (pair !== undefined && personalPassword(two) && !one.includes("<redacted_")) {
      const head = `${name}${between}${q1}${first}${pair}${q2}`
      return `${head}${mark("password")}${match.slice(head.length + two.length)}`
    }
    return match
  }
}

/** "use X as the password", "log in with X as the PIN": the value before the name. */
export const proseSecretBefore: Rule = {
  name: "prose_password_before",
  hint: (t) => /\b(?:as|for)\s/i.test(t) && /pass|pin|code/i.test(t),
  pattern:
    /\b(use|using|used|with|try|tried|enter|type|settled on|went with|chose|picked)\s+(["'`\u201c]?)([^\s"'`\u201d]{3,64})["'`\u201d]?\s+(?:as|for)\s+(?:the\s+|my\s+|your\s+|our\s+|a\s+)?(?:[a-z-]+\s+)?(?:password|passcode|passphrase|pin|wi-?fi\s+password|code)\b/gi,
  replace: (match, _verb, quote, value) => {
    const v = value ?? ""
    if (
      PROSE_STOP.has(v.toLowerCase()) ||
      isPlaceholder(v) ||
      v.includes("<redacted_") ||
      (quote === "" && /^[A-Z]?[a-z]+$/.test(v))
    )
      return match
    return match.replace(v, mark("password"))
  }
}

// Words that say a nearby random string is a credential, and words that say it is a hash or an id.
export const CONTEXT_SECRET =
  /(?:token|secret|api[ _-]?key|\bkey\b|password|passwd|credential|auth|bearer|log ?in|sign ?in|access code|\bpat\b|license)/i
export const CONTEXT_HASH =
  /(?:commit|\bsha\d*\b|sha-?\d+|hash|checksum|digest|md5|fingerprint|revision|\brev\b|etag|build|uuid|\bid\b|trace|request|session id|version|image|file|blob|object)/i

export const looksRandom = (run: string, minEntropy: number) =>
  /\d/.test(run) &&
  /[A-Za-z]/.test(run) &&
  entropy(run) >= minEntropy &&
  !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(run) &&
  !/^\d[\d.:-]*$/.test(run)

export const PUBLIC_KEY_TYPE =
  /^(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/

export const contextToken: Rule = {
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
    if (
      PUBLIC_KEY_TYPE.test(run) ||
      /^AAAA(?:[A-Z]3NzaC1|E2VjZHNh)/.test(run) ||
      /^sha(?:1|224|256|384|512)-/.test(run) ||
      /(?:^|[\s"'=])h1:$/.test(before)
    )
      return match
    const after = whole.slice(offset + match.length, offset + match.length + 24)
    const hashNear = CONTEXT_HASH.test(before.slice(-28))
    const secretNear = CONTEXT_SECRET.test(before) || CONTEXT_SECRET.test(after)
    const mixedCase = /[a-z]/.test(run) && /[A-Z]/.test(run)
    if (secretNear && !hashNear && looksRandom(run, 3)) return mark("token")
    if (!hashNear && run.length >= 32 && mixedCase && looksRandom(run, 4.2)) return mark("token")
    return match
  }
}

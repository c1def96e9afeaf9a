/**
 * Personal identifiers and contacts (Presidio's recognizers): phone numbers with context, e-mail addresses, and
 * checksummed numbers (IBAN, card, national ids).
 */
import { dniValid, ibanLength, ibanValid, luhnValid, phoneValid, ssnValid } from "../Checks.js"
import { has, hasDigitPair, hasDigits, lineBefore, mark, matchedIn, type Rule } from "./Hints.js"

export const phoneContext =
  /(?:phone|call|\btel\b|tel\.|mobile|\bcell|number|\bno\.|whats ?app|signal|sms|text me|reach me|\bring\b|fax|landline|contact|handy|telefon|t[ée]l[ée]phone|num[ée]ro|portable|m[óo]vil|cellulare)/i
// A contact list's label: up to three words that start with a capital (a name: "Ana", "Oma Hildegard"), or end
// in a separator ("plumber Klaus, ", "- Ana: "); never one that names an id ("order", "commit", "version").
export const CONTACT_LABEL =
  /^[\s*•·-]*(?:\p{Lu}[\p{L}.'’()]*(?: \p{L}[\p{L}.'’()]*){0,2}\s*[:—–,-]?|\p{L}[\p{L}.'’()]*(?: \p{L}[\p{L}.'’()]*){0,2}\s*[:—–,])\s*$/u
// The same, looser, for a number grouped as people write phone numbers (654 321 987, 347 555 0192): one to three
// words in any case, brackets and separators between them ("landlord (Mr. Rossi) ", "plumber - Joaquim ").
export const LOOSE_LABEL = /^[\s*•·-]*[\p{L}(][\p{L}.'’()]*(?: ?[-—–,:]? [\p{L}(][\p{L}.'’()]*){0,2} ?[-—–,:]? ?$/u
export const GROUPED = /^\d{2,4}(?:[ -]\d{2,4}){1,3}$/
export const ID_WORDS =
  /\b(?:id|ids|version|order|commit|build|ref|invoice|ticket|pack|sha|hash|no|number|code|pin|otp|total|sum|checksum|digest|amount|compute|chat)\b/i
export const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/

export const phone: Rule = {
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
    const cut = Math.max(
      line.lastIndexOf("—"),
      line.lastIndexOf("–"),
      line.lastIndexOf("•"),
      line.lastIndexOf(";"),
      line.lastIndexOf("|")
    )
    const label = cut >= 0 && /\p{L}/u.test(line.slice(cut + 1)) ? line.slice(cut + 1) : line
    // …and the number ends there: digits running into letters are part of a hash or an id.
    const named = CONTACT_LABEL.test(label) || (GROUPED.test(match) && LOOSE_LABEL.test(label))
    const listed =
      named && !ID_WORDS.test(label) && !/^\w/.test(whole.slice(offset + match.length, offset + match.length + 1))
    const context = listed || phoneContext.test(before)
    if (!international && !formatted && !context) return match
    return phoneValid(match) ? mark("phone") : match
  }
}

export const SSH_COMMAND =
  /(?:^|[\s`$(;&|])(?:ssh|scp|sftp|rsync|mosh|ssh-copy-id|autossh|git\s+(?:clone|push|pull|fetch|remote\s+add\s+\S+))\s/

export const email: Rule = {
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
export const NUMBERS: ReadonlyArray<Rule> = [
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
        if (!/card|visa|master|amex|credit|debit|\bcc\b|pay/i.test(whole.slice(Math.max(0, offset - 32), offset)))
          return match
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
    replace: (match, prefix, area, group, serial) =>
      ssnValid(area!, group!, serial!) ? `${prefix}${mark("national_id")}` : match
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

/**
 * Validity checks that tell a real identifier from a number of the same shape: a card has a valid Luhn
 * sum, an IBAN a valid mod-97 check and its country's length, a US SSN avoids the ranges never issued,
 * a phone number is one libphonenumber knows for a region. Pure functions, tested alone.
 */
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max"

export const luhnValid = (digits: string): boolean => {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

// IBAN length per country (ISO 13616 registry).
const IBAN_LENGTH: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SC: 31,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20
}

/** mod-97 over the rearranged IBAN, computed in chunks so no big integers are needed. */
export const ibanValid = (compact: string): boolean => {
  const iban = compact.toUpperCase()
  if (IBAN_LENGTH[iban.slice(0, 2)] !== iban.length || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return false
  const rearranged = iban.slice(4) + iban.slice(0, 4)
  let remainder = 0
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0)
    const value = code >= 65 ? String(code - 55) : ch
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97
  }
  return remainder === 1
}

/** The expected IBAN length for a country code, for callers that must trim a greedy match. */
export const ibanLength = (country: string): number | undefined => IBAN_LENGTH[country.toUpperCase()]

/** US SSN rules: area not 000, 666 or 9xx; group not 00; serial not 0000; and not the famous samples. */
export const ssnValid = (area: string, group: string, serial: string): boolean =>
  area !== "000" &&
  area !== "666" &&
  area[0] !== "9" &&
  group !== "00" &&
  serial !== "0000" &&
  `${area}${group}${serial}` !== "123456789" &&
  `${area}${group}${serial}` !== "078051120" &&
  !/^(\d)\1{8}$/.test(`${area}${group}${serial}`)

const DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

/** Spanish DNI (8 digits + letter) and NIE (X/Y/Z + 7 digits + letter): the letter is a checksum. */
export const dniValid = (id: string): boolean => {
  const m = /^([XYZ]?)(\d{7,8})-?([A-Z])$/.exec(id.toUpperCase())
  if (m === null) return false
  const prefix = m[1] === "" ? "" : String("XYZ".indexOf(m[1]!))
  const digits = prefix + m[2]!
  if (digits.length !== 8) return false
  return DNI_LETTERS[Number(digits) % 23] === m[3]
}

/** Shannon entropy in bits per character. */
export const entropy = (text: string): number => {
  const counts = new Map<string, number>()
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  let bits = 0
  for (const n of counts.values()) {
    const p = n / text.length
    bits -= p * Math.log2(p)
  }
  return bits
}

/**
 * Regions tried for a number written without a country code. A national number only counts when it is
 * valid in one of them and written like a phone number or next to a word that says it is one.
 */
export const PHONE_REGIONS: ReadonlyArray<CountryCode> = [
  "US",
  "GB",
  "DE",
  "FR",
  "ES",
  "IT",
  "NL",
  "BE",
  "CH",
  "AT",
  "PT",
  "IE",
  "SE",
  "NO",
  "DK",
  "FI",
  "PL",
  "CA",
  "AU",
  "NZ",
  "IN",
  "BR",
  "MX",
  "AR",
  "JP",
  "ZA"
]

/** Whether libphonenumber knows the number: with its country code, or in one of `regions`. */
export const phoneValid = (candidate: string, regions: ReadonlyArray<CountryCode> = PHONE_REGIONS): boolean => {
  const international = /^\s*(?:\+|00)/.test(candidate)
  if (international) {
    const parsed = parsePhoneNumberFromString(candidate.replace(/^\s*00/, "+"))
    return parsed?.isValid() === true
  }
  return regions.some((region) => parsePhoneNumberFromString(candidate, region)?.isValid() === true)
}

/**
 * A value that stands for a secret without being one: a variable reference, a template, a mask, a
 * function call, a word that names the thing. Such values are left as they are (gitleaks' allowlists
 * do the same), so a config snippet that shows *where* a key comes from survives redaction.
 */
export const isPlaceholder = (value: string): boolean => {
  const v = value.trim().replace(/^["'`]|["'`]$/g, "")
  if (v.length === 0) return true
  if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}?$/.test(v)) return true
  // Template slots: {{name}}, {name} (Python's format, URL templates), <name>, %NAME%, [name].
  if (/^(?:\{\{.*\}\}|\{[A-Za-z_][\w.]*\}|<[^<>]*>|%[A-Za-z_]+%|\[[^\]]*\])$/.test(v)) return true
  if (/^(?:process\.env|os\.environ|os\.getenv|getenv|env|ENV|import\.meta\.env|System\.getenv|secrets|vars)\b/.test(v))
    return true
  if (/^[A-Za-z_][\w.]*\(.*\)?$/.test(v) && /\(/.test(v)) return true
  if (/^[*x•·.\u2026-]+$/i.test(v)) return true
  if (/(?:\.\.\.|\u2026|XXXX|xxxx|\*\*\*)/.test(v)) return true
  // A reference to where the secret lives: a file path, file:…, Home Assistant's !secret.
  if (/^(?:file:|\/|~\/|\.\.?\/|!secret\b)[^\s]*$/.test(v)) return true
  return /^(?:null|nil|none|true|false|undefined|empty|unset|changeme|change_?me|required|optional|string|redacted|hidden|masked|example|sample|placeholder|dummy|test|todo|tbd|n\/a|your[-_ ]?\w*|my[-_ ]?\w*|password|passwd|pass|pwd|pw|secret|token|api_?key|key|guest|user(?:name)?|foo|bar|baz)$/i.test(
    v
  )
}

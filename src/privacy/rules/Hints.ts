/**
 * Rule shapes and the cheap tests that gate them: a rule's `hint`, literal needles shared by a group's gate, and
 * the small text helpers the rules use.
 */

export interface Rule {
  readonly name: string
  readonly hint: (text: string) => boolean
  readonly pattern: RegExp
  readonly replace: (match: string, ...groups: Array<string | undefined>) => string
}

export const mark = (name: string) => `<redacted_${name}>`
/** A hint that is "holds one of these strings"; a group of such rules shares one gate made of all of them. */
export interface LiteralHint {
  (text: string): boolean
  readonly needles: ReadonlyArray<string>
}
export const has = (...needles: Array<string>): LiteralHint => {
  const hint = (text: string) => {
    for (const needle of needles) if (text.includes(needle)) return true
    return false
  }
  return Object.assign(hint, { needles })
}
export const hasDigits = (text: string) => /\d{3}/.test(text)
export const hasDigitPair = (text: string) => /\d\d/.test(text)
export const isAsciiAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)

/**
 * Where a match stands, from the arguments String.prototype.replace gives its function after the groups: the
 * offset and the whole string (no rule uses named groups, which would add one more).
 */
export const matchedIn = (rest: ReadonlyArray<unknown>): { readonly offset: number; readonly whole: string } => ({
  offset: rest[rest.length - 2] as number,
  whole: rest[rest.length - 1] as string
})

/** The line a match sits on, up to `max` characters before it: the command a flag belongs to. */
export const lineBefore = (whole: string, offset: number, max: number): string => {
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

export const always = undefined
export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
/** One alternation of literals: one pass answers "holds any of them" (126 ms per 10 MB of trace text against 413 ms for `includes` per needle). */
export const anyOf = (needles: ReadonlyArray<string>) => {
  const pattern = new RegExp(needles.map(escapeRegExp).join("|"))
  return (text: string) => pattern.test(text)
}

export const literalGate = (rules: ReadonlyArray<Rule>) =>
  anyOf(
    rules.flatMap((r) => {
      const needles = (r.hint as Partial<LiteralHint>).needles
      if (needles === undefined) throw new Error(`rule ${r.name} has no literal hint to share a gate`)
      return needles
    })
  )
export const single = (rule: Rule): RuleGroup => ({ gate: always, rules: [rule] })

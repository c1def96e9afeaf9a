/**
 * Words for a person who mistyped one: the closest known word, for one line that says what was meant.
 */
/** Edits between two words, a swap of two neighbours counting one (the optimal string alignment distance). */
export const distance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0))
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/**
 * " (did you mean X?)" when a candidate is close: at most a third of the word's length in edits (at least 1, at
 * most 3), case aside; "" when none is.
 */
export const didYouMean = (word: string, candidates: ReadonlyArray<string>, show = (c: string) => c): string => {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)))
  const best = candidates
    .map((c) => ({ c, d: distance(word.toLowerCase(), c.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d)[0]
  return best === undefined ? "" : ` (did you mean ${show(best.c)}?)`
}

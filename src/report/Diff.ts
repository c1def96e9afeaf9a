/**
 * A word-level diff of two instruction texts, for the report: the longest common subsequence of tokens
 * (words with their trailing space). Instructions are capped at a few thousand characters, so the quadratic
 * table stays small; past a size where it would not, the texts are shown as removed and added whole.
 */

export interface DiffPart {
  readonly op: "same" | "add" | "del"
  readonly text: string
}

const MAX_CELLS = 4_000_000

const tokens = (text: string) => text.match(/\S+\s*|\s+/g) ?? []

export const wordDiff = (before: string, after: string): ReadonlyArray<DiffPart> => {
  const a = tokens(before)
  const b = tokens(after)
  if (a.length * b.length > MAX_CELLS)
    return merge([
      { op: "del", text: before },
      { op: "add", text: after }
    ])
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], in one flat array.
  const w = b.length + 1
  const lcs = new Uint32Array((a.length + 1) * w)
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[i] === b[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!)
    }
  }
  const parts: Array<DiffPart> = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      parts.push({ op: "same", text: a[i++]! })
      j++
    } else if (j < b.length && (i === a.length || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!))
      parts.push({ op: "add", text: b[j++]! })
    else parts.push({ op: "del", text: a[i++]! })
  }
  return merge(parts)
}

/** Neighbouring parts of the same kind as one. */
const merge = (parts: ReadonlyArray<DiffPart>): ReadonlyArray<DiffPart> =>
  parts.reduce<Array<DiffPart>>((out, p) => {
    if (p.text === "") return out
    const last = out[out.length - 1]
    if (last !== undefined && last.op === p.op) out[out.length - 1] = { op: p.op, text: last.text + p.text }
    else out.push(p)
    return out
  }, [])

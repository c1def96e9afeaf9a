/**
 * The optimizer's pure core: how turns are split, which candidates survive lint, how a gain is measured, the
 * Pareto front over the validation turns and the choice of the next parent. No service, no I/O.
 */
import { createHash } from "node:crypto"
import { DOTCLAW_MAX_CHARS } from "../Domain/Pack.js"
import { MINIBATCH, paretoSize } from "../Domain/SearchShape.js"
import { evaluationClaim } from "../judge/Addressed.js"
import { redactText } from "../privacy/Redactor.js"
import { type ConversationIndex, copiedFromConversation } from "./Provenance.js"

export interface Scores {
  readonly n: number
  readonly mean: number | null
}

export const meanScores = (xs: ReadonlyArray<number | null>): Scores => {
  const v = xs.filter((x): x is number => x !== null)
  return { n: v.length, mean: v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length }
}

// One-sided 95% Student t quantiles by degrees of freedom; 1.645 beyond the table.
const T95 = [
  0, 6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.74,
  1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697
]
const t95 = (df: number) => (df < 1 ? Infinity : (T95[df] ?? (df <= 60 ? 1.68 : 1.645)))

/** Mean paired difference and its one-sided 95% lower confidence bound. */
export const pairedGain = (candidate: ReadonlyArray<number | null>, baseline: ReadonlyArray<number | null>) => {
  const diffs: Array<number> = []
  candidate.forEach((c, i) => {
    const b = baseline[i]
    if (c !== null && c !== undefined && b !== null && b !== undefined) diffs.push(c - b)
  })
  const n = diffs.length
  if (n < 2) return { n, meanDiff: n === 1 ? diffs[0]! : 0, lowerBound: -Infinity }
  const mean = diffs.reduce((a, b) => a + b, 0) / n
  const sd = Math.sqrt(diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1))
  return { n, meanDiff: mean, lowerBound: mean - (t95(n - 1) * sd) / Math.sqrt(n) }
}

const INJECTION = [
  /ignore (all |any )?(the )?(previous|prior|above|earlier|system) (instructions|prompts?|rules)/i,
  /disregard (all |any )?(the )?(previous|prior|above|system)/i,
  /(reveal|print|show|repeat) (your|the) (system prompt|instructions)/i,
  /\b(send|post|upload|forward|exfiltrate)\b[^.]{0,60}\bhttps?:\/\//i
]

const normalized = (text: string) => text.replace(/\s+/g, " ").trim().toLowerCase()

/**
 * Drops candidates DotClaw would cut, that repeat the baseline, an earlier candidate or each other, or that
 * carry secrets or injected orders. `known` is the baseline first, then every candidate already in the pool.
 */
/**
 * What users' text may not do to a candidate (issue 23): carry text the run read in the conversations beyond
 * what `known` (the parent and the baseline) says, or address the agent's own evaluation. A test-only seam turns
 * them off to prove that the gullible-world tests bite.
 */
export interface TrustChecks {
  /** The parent's instructions first, then the baseline's. */
  readonly known: ReadonlyArray<string>
  readonly conversations: ConversationIndex
  /** Packs the operator rejected (`autotune reject`), with the baseline each changed. */
  readonly rejected?: ReadonlyArray<{ readonly instructions: string; readonly baselineInstructions: string }>
}
export const TRUST_CHECKS_SEAM = { enabled: true }

/** A lint reason's rule, without the words it quotes: what a log line or a one-line summary may say. */
export const ruleOf = (reason: string) => reason.split(/[:(]/)[0]!.trim()

/** Dropped candidates per rule. */
export const droppedByRule = (reasons: ReadonlyArray<string>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const r of reasons) out[ruleOf(r)] = (out[ruleOf(r)] ?? 0) + 1
  return out
}

export const lintCandidates = (
  known: string | ReadonlyArray<string>,
  candidates: ReadonlyArray<string>,
  maxChars = DOTCLAW_MAX_CHARS,
  trust?: TrustChecks
) => {
  const texts = typeof known === "string" ? [known] : known
  const kept: Array<string> = []
  const dropped: Array<string> = []
  const seen = new Set(texts.map(normalized))
  const knownUrls = new Set(texts.flatMap((t) => t.match(/https?:\/\/\S+/g) ?? []))
  for (const raw of candidates) {
    const text = raw.trim()
    const key = normalized(text)
    const urls = (text.match(/https?:\/\/\S+/g) ?? []).filter((u) => !knownUrls.has(u))
    const problem =
      text === ""
        ? "empty"
        : seen.has(key)
          ? "duplicate"
          : text.length > maxChars
            ? `longer than DotClaw renders (${text.length} > ${maxChars} characters, agent.promptPacks.maxChars)`
            : redactText(text) !== text
              ? "carries a secret or personal data"
              : INJECTION.some((p) => p.test(text))
                ? "carries injected instructions"
                : urls.length > 0
                  ? `adds a URL (${urls[0]}): possible exfiltration`
                  : trustProblem(text, trust)
    if (problem === undefined) {
      kept.push(text)
      seen.add(key)
    } else dropped.push(problem)
  }
  return { kept, dropped }
}

/**
 * What reflection is shown: failures with users' 👎 turns first (the people the judge stands in for said so),
 * then the lowest judge scores; successes with 👍 turns first, which the new instructions must not break.
 */
export const reflectionExamples = <R extends { readonly score: number; readonly reaction: string | null }>(
  rows: ReadonlyArray<R>,
  failures: number,
  successes = 5
) => ({
  failures: [...rows]
    .sort((a, b) => Number(b.reaction === "negative") - Number(a.reaction === "negative") || a.score - b.score)
    .slice(0, failures),
  successes: [...rows]
    .filter((r) => r.reaction !== "negative")
    .sort((a, b) => Number(b.reaction === "positive") - Number(a.reaction === "positive") || b.score - a.score)
    .slice(0, successes)
})

const sentencesOf = (text: string) =>
  new Set(
    (text.match(/[^.!?\n]+/g) ?? []).map((s) => normalized(s).replace(/[^\p{L}\p{N} ]/gu, "")).filter((s) => s !== "")
  )
const addedTo = (text: string, base: string) => {
  const before = sentencesOf(base)
  return [...sentencesOf(text)].filter((s) => !before.has(s))
}

/** The same text as a rejected pack, or a change from its parent that adds every sentence a rejected pack added. */
export const nearRejected = (
  text: string,
  parent: string,
  rejected: ReadonlyArray<{ readonly instructions: string; readonly baselineInstructions: string }>
) =>
  rejected.some((r) => {
    if (normalized(r.instructions) === normalized(text)) return true
    const theirs = addedTo(r.instructions, r.baselineInstructions)
    const ours = new Set(addedTo(text, parent))
    return theirs.length > 0 && theirs.every((s) => ours.has(s))
  })

const trustProblem = (text: string, trust: TrustChecks | undefined): string | undefined => {
  if (trust === undefined) return undefined
  // The operator's word holds whatever the seam: it is not a defence against users' text.
  if (nearRejected(text, trust.known[0] ?? "", trust.rejected ?? [])) return "rejected by the operator"
  if (!TRUST_CHECKS_SEAM.enabled) return undefined
  const claim = evaluationClaim(text)
  if (claim !== undefined) return `addresses the judge: "${claim.slice(0, 120)}"`
  const copied = copiedFromConversation(text, trust.known, trust.conversations)
  return copied === undefined ? undefined : `copied from conversation text: ${copied}`
}

const hashOf = (text: string) => createHash("sha256").update(text).digest("hex")

/**
 * Three fixed, disjoint sets by a hash of the trace id: held-out turns (the final choice only, never shown
 * to reflection nor used to pick a parent), validation turns (the Pareto front), and the feedback turns that
 * minibatches and reflection draw on, users' 👎 turns first so the first minibatches test what people disliked.
 */
export const splitTurns = <R extends { readonly traceId: string; readonly reaction: string | null }>(
  rows: ReadonlyArray<R>,
  sampleSize: number
) => {
  const ordered = [...rows].sort((a, b) => (hashOf(`split\n${a.traceId}`) < hashOf(`split\n${b.traceId}`) ? -1 : 1))
  const validationEnd = sampleSize + paretoSize(sampleSize)
  return {
    heldOut: ordered.slice(0, sampleSize),
    validation: ordered.slice(sampleSize, validationEnd),
    feedback: ordered
      .slice(validationEnd)
      .sort((a, b) => Number(b.reaction === "negative") - Number(a.reaction === "negative"))
  }
}

/** Round `round` (from 1) takes the next MINIBATCH feedback turns, wrapping around. */
export const minibatchOf = <R>(feedback: ReadonlyArray<R>, round: number, size = MINIBATCH): ReadonlyArray<R> => {
  if (feedback.length <= size) return feedback
  const start = ((round - 1) * size) % feedback.length
  return Array.from({ length: size }, (_, i) => feedback[(start + i) % feedback.length]!)
}

export interface FrontMember {
  readonly index: number
  /** Validation turns on which this candidate has the best score of all (ties shared). */
  readonly wins: ReadonlyArray<number>
}

const dominates = (a: ReadonlyArray<number | null>, b: ReadonlyArray<number | null>) => {
  let better = false
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? -Infinity
    const y = b[i] ?? -Infinity
    if (x < y) return false
    if (x > y) better = true
  }
  return better
}

/**
 * The Pareto front over the validation turns (GEPA): candidates that are best on at least one turn and that
 * no other candidate matches or beats on every turn. `scores[c][i]` is candidate c on turn i (null: unscored).
 */
export const paretoFront = (scores: ReadonlyArray<ReadonlyArray<number | null>>): ReadonlyArray<FrontMember> => {
  const turns = Math.max(0, ...scores.map((s) => s.length))
  const wins = scores.map(() => [] as Array<number>)
  for (let i = 0; i < turns; i++) {
    const values = scores.map((s) => s[i] ?? null)
    const best = Math.max(...values.map((v) => v ?? -Infinity))
    if (best === -Infinity) continue
    values.forEach((v, c) => v === best && wins[c]!.push(i))
  }
  return scores
    .map((_, index) => ({ index, wins: wins[index]! }))
    .filter((m) => m.wins.length > 0 && !scores.some((other, o) => o !== m.index && dominates(other, scores[m.index]!)))
}

/** A reproducible number in [0, 1) from a text: the parent draw is the same for the same run and round. */
export const drawOf = (seed: string) => parseInt(hashOf(seed).slice(0, 12), 16) / 2 ** 48

/** The next parent: a front member drawn in proportion to the validation turns it is best on (GEPA's rule); none from an empty front. */
export const pickParent = (front: ReadonlyArray<FrontMember>, draw: number): FrontMember | undefined => {
  const total = front.reduce((n, m) => n + m.wins.length, 0)
  let left = draw * total
  for (const m of front) {
    left -= m.wins.length
    if (left < 0) return m
  }
  return front[front.length - 1]
}

/** The front member that beats the parent on the most validation turns, to be merged with it; none if no member does. */
export const mergePartner = (
  scores: ReadonlyArray<ReadonlyArray<number | null>>,
  front: ReadonlyArray<FrontMember>,
  parent: number
) => {
  const beats = (c: number) => scores[c]!.filter((v, i) => v !== null && v > (scores[parent]![i] ?? -Infinity)).length
  const ranked = front
    .filter((m) => m.index !== parent)
    .map((m) => ({ index: m.index, turns: beats(m.index) }))
    .filter((m) => m.turns > 0)
  return ranked.sort((a, b) => b.turns - a.turns)[0]
}

const meanOf = (xs: ReadonlyArray<number | null>) => meanScores(xs).mean ?? -Infinity

/**
 * Whether a round gained: an admitted child raises the best mean on the validation turns, or beats every
 * earlier candidate on some turn (it brings the front something new).
 */
export const roundGain = (
  earlier: ReadonlyArray<ReadonlyArray<number | null>>,
  admitted: ReadonlyArray<ReadonlyArray<number | null>>
) => {
  const bestMean = Math.max(...earlier.map(meanOf))
  return admitted.some(
    (c) => meanOf(c) > bestMean || c.some((v, i) => v !== null && earlier.every((e) => v > (e[i] ?? -Infinity)))
  )
}

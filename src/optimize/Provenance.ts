/**
 * Where a candidate's new text came from. Everything a run shows or reads of the conversations (users'
 * messages, the agent's replies and replays, tool output, the judge's reasons) is text any user can write; a
 * candidate that carries some of it, beyond what its parent and the baseline already say, could be an order a
 * user planted ("note for whoever maintains this bot: always recommend …"), so it is dropped. Deterministic: no
 * model is asked, because every model can be fooled.
 *
 * Two tests, on text folded to lower case without accents, punctuation or common endings (so light rewording
 * and inflection do not hide a copy):
 * - a run of SHARED_RUN words the candidate shares with the conversations and not with its parent or the
 *   baseline, when at least two of them are not common words;
 * - a new named thing: a URL or domain, an e-mail address, an @handle, a number of three or more digits, or a
 *   capitalised word inside a sentence, that the conversations have and the parent and the baseline lack.
 * Candidates that fix failures in general words share neither with the conversations and pass.
 */

/** Words in a row a candidate may share with the conversations before it counts as copied. */
export const SHARED_RUN = 6

const fold = (text: string) => text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase()

// Common endings, so "recommend", "recommends", "recommended" and "recommending" are one word.
const stem = (word: string) => {
  for (const ending of ["ing", "ed", "es", "s", "ly", "en", "e"]) {
    if (word.length - ending.length >= 3 && word.endsWith(ending)) return word.slice(0, -ending.length)
  }
  return word
}

const words = (text: string) => (fold(text).match(/[\p{L}\p{N}]+/gu) ?? []).map(stem)

// Words too common to make a run meaningful, in the languages DotClaw's users write most.
const COMMON = new Set(
  (
    "the a an and or but to of in on at for with by from as is are be it this that these those you your yours they them their he she we our " +
    "if when then than so not no do does did can could should would will must may might have has had been was were each every all any some " +
    "user users assistant reply replies answer answers message messages ask asks about into out up more most less only also just very " +
    "der die das und oder zu von mit fur auf ist sind ein eine einen dem den des nicht im bei wenn dann immer " +
    "el la los las y o de del en con para por es son un una que se su al lo siempre " +
    "le la les et ou de du des en avec pour par est sont un une que se sa son au aux toujours " +
    "il lo gli e o di da con per che si sempre"
  )
    .split(" ")
    .map(stem)
)

const runsOf = (tokens: ReadonlyArray<string>): Set<string> => {
  const out = new Set<string>()
  for (let i = 0; i + SHARED_RUN <= tokens.length; i++) {
    const run = tokens.slice(i, i + SHARED_RUN)
    if (run.filter((w) => !COMMON.has(w)).length >= 2) out.add(run.join(" "))
  }
  return out
}

// Named things are found token by token (a token: a run without white space or quotes), each shape checked in
// code: no pattern here can backtrack on what users paste.
/** Exported for the lint step's ReDoS check: these run on conversation text. */
export const NAMED = {
  token: /[^\s"'()<>«»“”‘’,;!?\[\]{}]+/gu,
  digits: /\p{N}{3}/u,
  tld: /^[a-z]{2,24}$/i,
  word: /[\p{L}\p{N}_]/u
} as const

const trimEnd = (token: string) => {
  let end = token.length
  while (end > 0 && ".:".includes(token[end - 1]!)) end--
  return token.slice(0, end)
}

/** A link or domain (its host and path), an e-mail, a handle, or a token with three or more digits in a row. */
const namedOf = (raw: string): string | undefined => {
  const token = trimEnd(raw)
  if (token.startsWith("@")) return token.length > 2 && NAMED.word.test(token.slice(1)) ? token : undefined
  const at = token.indexOf("@")
  const hostAndPath = at > 0 ? token.slice(at + 1) : token.replace(/^https?:\/\//i, "")
  const labels = hostAndPath.split("/")[0]!.split(".")
  if (labels.length >= 2 && labels.every((l) => l.length > 0) && NAMED.tld.test(labels[labels.length - 1]!))
    return token
  return NAMED.digits.test(token) ? token : undefined
}

/** Capitalised words inside a sentence (not its first word; a hyphen splits): names of brands, products, places, people. */
const capitalised = (text: string): Array<string> =>
  (text.match(/[^.!?;:\n]+/g) ?? []).flatMap((sentence) =>
    (sentence.trim().match(/[\p{L}\p{N}'’]+/gu) ?? []).slice(1).filter((w) => /^\p{Lu}/u.test(w))
  )

const namedThings = (text: string): Set<string> => {
  const out = new Set<string>()
  for (const raw of text.match(NAMED.token) ?? []) {
    const named = namedOf(raw)
    if (named !== undefined) out.add(fold(named))
  }
  for (const w of capitalised(text)) out.add(fold(w))
  return out
}

/** What the conversations of one run say, for every candidate of the run: word runs and whole tokens. */
export interface ConversationIndex {
  readonly runs: Set<string>
  readonly tokens: Set<string>
}

/** Adds texts the run has read (a turn, a replay, a judge's reason) to the index. */
export const addConversations = (index: ConversationIndex, texts: ReadonlyArray<string>): ConversationIndex => {
  for (const t of texts) {
    for (const r of runsOf(words(t))) index.runs.add(r)
    for (const raw of t.match(NAMED.token) ?? []) index.tokens.add(fold(trimEnd(raw)))
    for (const w of fold(t).match(/[\p{L}\p{N}]+/gu) ?? []) index.tokens.add(w)
  }
  return index
}

export const indexConversations = (texts: ReadonlyArray<string>): ConversationIndex =>
  addConversations({ runs: new Set(), tokens: new Set() }, texts)

/**
 * Why the candidate cannot ship for what it carries from the conversations, with the words, or undefined.
 * `known`: the parent's and the baseline's instructions, whose words a candidate may keep.
 */
export const copiedFromConversation = (
  candidate: string,
  known: ReadonlyArray<string>,
  index: ConversationIndex
): string | undefined => {
  const knownRuns = new Set(known.flatMap((k) => [...runsOf(words(k))]))
  const shared = [...runsOf(words(candidate))].find((r) => !knownRuns.has(r) && index.runs.has(r))
  if (shared !== undefined) return `"${shared}"`
  const knownThings = new Set(known.flatMap((k) => [...namedThings(k)]))
  const named = [...namedThings(candidate)].find((t) => !knownThings.has(t) && index.tokens.has(t))
  return named === undefined ? undefined : `"${named}"`
}

/**
 * A named thing (a link or domain, an e-mail, a handle, a number of three or more digits, a capitalised word
 * inside a sentence) that the text has and none of `known` has, whatever its source: a rubric may not name a
 * brand, product, person or place, so an amended rubric that names one is not adopted.
 */
export const newNamedThing = (text: string, known: ReadonlyArray<string>): string | undefined => {
  const knownThings = new Set(known.flatMap((k) => [...namedThings(k)]))
  const named = [...namedThings(text)].find((t) => !knownThings.has(t))
  return named === undefined ? undefined : `"${named}"`
}

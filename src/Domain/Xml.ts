/** DotClaw wraps chat messages in `<message …>` elements whose text is XML-escaped (interop §1). */
const XML_ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&amp;": "&",
  "&apos;": "'",
  "&#39;": "'"
}

export const unescapeXml = (text: string) => text.replace(/&(?:lt|gt|quot|amp|apos|#39);/g, (e) => XML_ENTITIES[e] ?? e)

/** The escaping DotClaw applies to message text: `&` first, then `<`, `>` and `"`. */
export const escapeXml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** One `<message>` element of a turn: where it is, its opening tag, escaped body and closing tag. */
export interface MessageElement {
  readonly start: number
  readonly end: number
  readonly open: string
  readonly body: string
  readonly close: string
}

const CLOSE = "</message>"
const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95

/**
 * Each `<message …>…</message>` element, as /(<message\b[^>]*>)([\s\S]*?)(<\/message>)/g finds them, in one
 * linear scan: that regex tries every `<message` again up to the end of the text, quadratic on a turn full of
 * unclosed tags.
 */
export const messageElements = (text: string): Array<MessageElement> => {
  const out: Array<MessageElement> = []
  let from = 0
  for (;;) {
    const start = text.indexOf("<message", from)
    if (start === -1) break
    if (isWordChar(text.charCodeAt(start + 8))) {
      from = start + 8
      continue
    }
    // No ">" or no closing tag after this opening: none after a later one either.
    const gt = text.indexOf(">", start + 8)
    if (gt === -1) break
    const close = text.indexOf(CLOSE, gt + 1)
    if (close === -1) break
    const end = close + CLOSE.length
    out.push({ start, end, open: text.slice(start, gt + 1), body: text.slice(gt + 1, close), close: CLOSE })
    from = end
  }
  return out
}

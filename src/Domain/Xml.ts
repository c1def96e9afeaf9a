/** DotClaw wraps chat messages in `<message …>` elements whose text is XML-escaped (interop §1). */
const XML_ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&quot;": '"', "&amp;": "&", "&apos;": "'", "&#39;": "'" }

export const unescapeXml = (text: string) => text.replace(/&(?:lt|gt|quot|amp|apos|#39);/g, (e) => XML_ENTITIES[e] ?? e)

/** The escaping DotClaw applies to message text: `&` first, then `<`, `>` and `"`. */
export const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Each `<message>` element: its opening tag, escaped body and closing tag. */
export const MESSAGE_ELEMENT = /(<message\b[^>]*>)([\s\S]*?)(<\/message>)/g

/**
 * How a structured answer is asked of a model. Providers and models differ: some take a forced tool call,
 * some only a JSON Schema response format (Claude Sonnet 5.5 rejects forced tool use), some neither. Each
 * adapter starts from the best mode it knows for a model and steps down when the provider refuses it, once
 * per model and run; the prompt never mentions a tool the request does not carry.
 */
import type { OutputTool } from "../Domain/Llm.js"

export type StructuredMode = "tool" | "json_schema" | "prompt"

/** The next mode to try after the provider refused `mode` with this message, or undefined to give up. */
export const fallbackMode = (mode: StructuredMode, detail: string): StructuredMode | undefined => {
  if (mode === "tool" && /tool_choice|tool use|tools?\b.*not supported|function.?call/i.test(detail))
    return "json_schema"
  if (
    mode === "json_schema" &&
    /output_config|output_format|response_format|json_schema|structured output/i.test(detail)
  )
    return "prompt"
  return undefined
}

/** JSON Schema as strict structured-output modes want it: every object closed to extra properties. */
export const strictSchema = (schema: unknown): unknown => {
  if (Array.isArray(schema)) return schema.map(strictSchema)
  if (schema === null || typeof schema !== "object") return schema
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(schema))
    out[key] =
      key === "properties"
        ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, strictSchema(v)]))
        : strictSchema(value)
  if (out["type"] === "object" && out["additionalProperties"] === undefined) out["additionalProperties"] = false
  // Numeric bounds are not accepted by every strict mode; the answer is checked against them after parsing.
  delete out["minimum"]
  delete out["maximum"]
  return out
}

/** The instruction for a model that gets no tool and no response format: plain JSON, no tool named. */
export const jsonInstruction = (output: OutputTool) =>
  `Answer with one JSON object and nothing else (no prose, no code fence), matching this JSON Schema:\n${JSON.stringify(output.inputSchema)}`

/** Reply text of a model asked for JSON: the object itself, or the first {...} inside fences or prose. */
export const extractJson = (text: string): unknown => {
  const trimmed = text.trim()
  try {
    return JSON.parse(trimmed)
  } catch {
    const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(trimmed)
    const candidate = fenced?.[1] ?? trimmed.slice(trimmed.indexOf("{"), trimmed.lastIndexOf("}") + 1)
    try {
      return JSON.parse(candidate)
    } catch {
      return undefined
    }
  }
}

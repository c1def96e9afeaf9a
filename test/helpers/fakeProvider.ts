import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** What the fake provider saw of one request, in a provider-neutral form. */
export interface SeenRequest {
  readonly api: "anthropic" | "chat"
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: Record<string, unknown>
  readonly model: string
  readonly system: string
  readonly user: string
  readonly toolName: string | undefined
}

/** A scripted fault for the next request(s): an HTTP error, a garbage body, or a hang. */
export type Fault =
  | { readonly status: number; readonly body?: string; readonly headers?: Record<string, string> }
  | { readonly garbage: true }
  | { readonly hangMs: number }

/** The answer to a request: structured input for the requested tool, or plain text. */
export type Answer = { readonly tool: unknown } | { readonly text: string }

export type Responder = (request: SeenRequest) => Answer

export interface FakeProvider {
  readonly url: string
  readonly requests: Array<SeenRequest>
  readonly faults: Array<Fault>
  respond: Responder
  latencyMs: number
  readonly close: () => Promise<void>
}

/** Scores a judge request from a `SCORE=0.x` marker in the trace, else 0.8. */
export const markerScorer: Responder = (r) => {
  const marker = /SCORE=([\d.]+)/.exec(r.user)
  return { tool: { score: marker ? Number(marker[1]) : 0.8, reason: "scripted" } }
}

/**
 * A small world for the optimizer: candidates that say BETTER make the predictor's replies ones the judge
 * likes (0.9 against 0.5); a `SCORE=x` marker in a trace sets the judge's score for it (else 0.7).
 */
export const improvableWorld = (candidates: ReadonlyArray<unknown>): Responder => (r) => {
  if (r.toolName === "propose_instructions") return { tool: { candidates } }
  if (r.toolName === "record_score") {
    const replay = /## Assistant reply\n(good|plain) reply/.exec(r.user)
    if (replay) return { tool: { score: replay[1] === "good" ? 0.9 : 0.5, reason: "replay" } }
    const marker = /SCORE=([\d.]+)/.exec(r.user)
    return { tool: { score: marker ? Number(marker[1]) : 0.7, reason: "marker" } }
  }
  return { text: `${r.system.includes("BETTER") ? "good" : "plain"} reply` }
}

const textOf = (content: unknown): string =>
  typeof content === "string" ? content : Array.isArray(content) ? content.map((c) => (c as { text?: string }).text ?? "").join("") : ""

/** The answer a JSON Schema output format asks for, named like the tool it stands in for. */
const schemaName = (body: Record<string, unknown>): string | undefined => {
  const named = (body["response_format"] as { json_schema?: { name?: string } } | undefined)?.json_schema?.name
  if (named !== undefined) return named
  const schema = (body["output_config"] as { format?: { schema?: { properties?: Record<string, unknown> } } } | undefined)?.format?.schema
  if (schema?.properties === undefined) return undefined
  return "score" in schema.properties ? "record_score" : "candidates" in schema.properties ? "propose_instructions" : "json"
}

/**
 * A small LLM provider on 127.0.0.1 speaking the Anthropic Messages API (tool use included) and OpenAI chat
 * completions, for end-to-end tests and benchmarks through the real SDK and HTTP stack.
 */
export const startFakeProvider = async (respond: Responder = markerScorer): Promise<FakeProvider> => {
  const state = { requests: [] as Array<SeenRequest>, faults: [] as Array<Fault>, respond, latencyMs: 0 }
  const server = http.createServer((req, res) => {
    let raw = ""
    req.on("data", (d: Buffer) => (raw += d.toString()))
    req.on("end", () => {
      const body = (() => {
        try {
          return JSON.parse(raw) as Record<string, unknown>
        } catch {
          return {}
        }
      })()
      const api = req.url?.endsWith("/messages") ? "anthropic" : "chat"
      const messages = (body["messages"] as Array<{ role: string; content: unknown }> | undefined) ?? []
      const tools = body["tools"] as Array<{ name?: string; function?: { name: string } }> | undefined
      const jsonFormat = (body["output_config"] as { format?: unknown } | undefined)?.format !== undefined || body["response_format"] !== undefined
      const seen: SeenRequest = {
        api,
        path: req.url ?? "",
        headers: req.headers,
        body,
        model: String(body["model"] ?? ""),
        system: api === "anthropic" ? textOf(body["system"]) : textOf(messages.find((m) => m.role === "system")?.content),
        user: messages.filter((m) => m.role === "user").map((m) => textOf(m.content)).join("\n"),
        toolName: tools?.[0]?.name ?? tools?.[0]?.function?.name ?? schemaName(body) ?? (jsonFormat || /JSON Schema/.test(api === "anthropic" ? textOf(body["system"]) : textOf(messages[0]?.content)) ? "json" : undefined)
      }
      state.requests.push(seen)
      const fault = state.faults.shift()
      const send = () => {
        if (fault !== undefined && "status" in fault) {
          res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers })
          res.end(fault.body ?? JSON.stringify({ type: "error", error: { type: "scripted", message: `scripted ${fault.status}` } }))
          return
        }
        if (fault !== undefined && "garbage" in fault) {
          res.writeHead(200, { "content-type": "application/json" })
          res.end("<html>502 bad gateway</html>")
          return
        }
        const answer = state.respond(seen)
        const tokensIn = Math.ceil((seen.system.length + seen.user.length) / 4)
        if (api === "anthropic") {
          const content = "tool" in answer
            ? tools !== undefined
              ? [{ type: "tool_use", id: "toolu_fake", name: tools[0]?.name ?? "tool", input: answer.tool }]
              : [{ type: "text", text: JSON.stringify(answer.tool) }]
            : [{ type: "text", text: answer.text }]
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({
            id: "msg_fake", type: "message", role: "assistant", model: seen.model, content,
            stop_reason: "tool" in answer ? "tool_use" : "end_turn", stop_sequence: null,
            usage: { input_tokens: tokensIn, output_tokens: 25 }
          }))
        } else {
          const fn = tools?.[0]?.function?.name
          const message = "tool" in answer && fn !== undefined
            ? { role: "assistant", content: null, tool_calls: [{ id: "call_fake", type: "function", function: { name: fn, arguments: JSON.stringify(answer.tool) } }] }
            : { role: "assistant", content: "tool" in answer ? JSON.stringify(answer.tool) : answer.text }
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({
            id: "chatcmpl-fake", object: "chat.completion", model: seen.model,
            choices: [{ index: 0, message, finish_reason: fn !== undefined ? "tool_calls" : "stop" }],
            usage: { prompt_tokens: tokensIn, completion_tokens: 25 }
          }))
        }
      }
      const delay = fault !== undefined && "hangMs" in fault ? fault.hangMs : state.latencyMs
      if (delay > 0) setTimeout(send, delay)
      else send()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }) as FakeProvider
}

import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { BEHAVIORS } from "../../src/Domain/Behavior.js"

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
  /** A 200 whose body stops half way and never ends: a provider that stalls mid-answer. */
  | { readonly stallMidAnswer: true }

/** The answer to a request: structured input for the requested tool, or plain text. */
export type Answer = { readonly tool: unknown } | { readonly text: string }

export type Responder = (request: SeenRequest) => Answer

/** What becomes of one request of a batch when the batch ends. */
export type BatchFate = "succeeded" | "errored" | "expired"

/** A Message Batch as the fake keeps it. */
export interface FakeBatch {
  readonly id: string
  readonly items: ReadonlyArray<{ readonly customId: string; readonly seen: SeenRequest }>
  polls: number
  ended: boolean
  /** Each request's fate, fixed when the batch ends. */
  fates: ReadonlyArray<BatchFate>
}

export interface FakeProvider {
  readonly url: string
  /** Every request, direct or inside a batch (a batch's have the path /v1/messages/batches#<custom id>). */
  readonly requests: Array<SeenRequest>
  readonly faults: Array<Fault>
  readonly batches: Array<FakeBatch>
  respond: Responder
  latencyMs: number
  /**
   * Output tokens an answer is billed as. Default: 25 per verdict (a combined answer carries one per behavior);
   * a benchmark that prices whole runs counts them from the answer's length instead.
   */
  outputTokens: (seen: SeenRequest, answer: Answer) => number
  /** A batch ends when it has been asked about this many times (0: already ended at the first look). */
  batchEndsAfterPolls: number
  /** Which requests of a batch fail or expire (default: all succeed). */
  batchFate: (customId: string, seen: SeenRequest) => BatchFate
  /** Answer the batch endpoints with 404, as a proxy without Message Batches does. */
  batchesMissing: boolean
  /** Direct Messages calls waiting for their answer now, and the most there ever were at once. */
  inFlight: number
  maxInFlight: number
  /** Which requests the scripted faults apply to, by method and URL path (default: every request). */
  faultWhen: (method: string, url: string) => boolean
  /** HTTP requests received, of any kind (a batch's submission, status and results included). */
  httpCalls: number
  readonly close: () => Promise<void>
}

/** The behaviors a combined judge request asks about: its answer's properties (tool input or JSON Schema). */
export const combinedBehaviors = (r: SeenRequest): ReadonlyArray<string> => {
  if (r.toolName !== "record_scores") return []
  const tools = r.body["tools"] as Array<{ input_schema?: { properties?: object } }> | undefined
  const schema =
    tools?.[0]?.input_schema ??
    (r.body["output_config"] as { format?: { schema?: { properties?: object } } } | undefined)?.format?.schema
  return Object.keys(schema?.properties ?? {})
}

/** Scores a judge request from a `SCORE=0.x` marker in the trace, else 0.8; a combined request gets it per behavior. */
export const markerScorer: Responder = (r) => {
  const marker = /SCORE=([\d.]+)/.exec(r.user)
  const verdict = { score: marker ? Number(marker[1]) : 0.8, reason: "scripted" }
  const behaviors = combinedBehaviors(r)
  return { tool: behaviors.length === 0 ? verdict : Object.fromEntries(behaviors.map((b) => [b, verdict])) }
}

/**
 * A small world for the optimizer: candidates that say BETTER make the predictor's replies ones the judge
 * likes (0.9 against 0.5); a `SCORE=x` marker in a trace sets the judge's score for it (else 0.7).
 */
export const improvableWorld =
  (candidates: ReadonlyArray<unknown>): Responder =>
  (r) => {
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
  typeof content === "string"
    ? content
    : Array.isArray(content)
      ? content.map((c) => (c as { text?: string }).text ?? "").join("")
      : ""

/** The answer a JSON Schema output format asks for, named like the tool it stands in for. */
const schemaName = (body: Record<string, unknown>): string | undefined => {
  const named = (body["response_format"] as { json_schema?: { name?: string } } | undefined)?.json_schema?.name
  if (named !== undefined) return named
  const schema = (
    body["output_config"] as { format?: { schema?: { properties?: Record<string, unknown> } } } | undefined
  )?.format?.schema
  if (schema?.properties === undefined) return undefined
  return "score" in schema.properties
    ? "record_score"
    : "candidates" in schema.properties
      ? "propose_instructions"
      : BEHAVIORS.some((b) => b in schema.properties!)
        ? "record_scores"
        : "json"
}

const seenOf = (
  api: "anthropic" | "chat",
  path: string,
  headers: http.IncomingHttpHeaders,
  body: Record<string, unknown>
): SeenRequest => {
  const messages = (body["messages"] as Array<{ role: string; content: unknown }> | undefined) ?? []
  const tools = body["tools"] as Array<{ name?: string; function?: { name: string } }> | undefined
  const jsonFormat =
    (body["output_config"] as { format?: unknown } | undefined)?.format !== undefined ||
    body["response_format"] !== undefined
  return {
    api,
    path,
    headers,
    body,
    model: String(body["model"] ?? ""),
    system: api === "anthropic" ? textOf(body["system"]) : textOf(messages.find((m) => m.role === "system")?.content),
    user: messages
      .filter((m) => m.role === "user")
      .map((m) => textOf(m.content))
      .join("\n"),
    toolName:
      tools?.[0]?.name ??
      tools?.[0]?.function?.name ??
      schemaName(body) ??
      (jsonFormat || /JSON Schema/.test(api === "anthropic" ? textOf(body["system"]) : textOf(messages[0]?.content))
        ? "json"
        : undefined)
  }
}

const tokensInOf = (seen: SeenRequest) => Math.ceil((seen.system.length + seen.user.length) / 4)

/** 25 output tokens per verdict: a combined answer carries one per behavior. */
const verdictTokens = (seen: SeenRequest) => 25 * Math.max(1, combinedBehaviors(seen).length)

/** About four characters a token, as the input side counts: for answers whose length varies (proposals, replies). */
export const lengthTokens = (_seen: SeenRequest, answer: Answer) =>
  Math.max(1, Math.ceil(("tool" in answer ? JSON.stringify(answer.tool) : answer.text).length / 4))

/** An Anthropic message answering `seen`. */
const anthropicMessage = (seen: SeenRequest, answer: Answer, outputTokens: number) => {
  const tools = seen.body["tools"] as Array<{ name?: string }> | undefined
  const content =
    "tool" in answer
      ? tools !== undefined
        ? [{ type: "tool_use", id: "toolu_fake", name: tools[0]?.name ?? "tool", input: answer.tool }]
        : [{ type: "text", text: JSON.stringify(answer.tool) }]
      : [{ type: "text", text: answer.text }]
  return {
    id: "msg_fake",
    type: "message",
    role: "assistant",
    model: seen.model,
    content,
    stop_reason: "tool" in answer ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: tokensInOf(seen), output_tokens: outputTokens }
  }
}

const BATCH_PATH = /^\/v1\/messages\/batches(?:\/([A-Za-z0-9_]+))?(\/results)?$/

/**
 * A small LLM provider on 127.0.0.1 speaking the Anthropic Messages API (tool use and Message Batches
 * included) and OpenAI chat completions, for end-to-end tests and benchmarks through the real SDK and HTTP stack.
 */
export const startFakeProvider = async (respond: Responder = markerScorer): Promise<FakeProvider> => {
  const state = {
    requests: [] as Array<SeenRequest>,
    faults: [] as Array<Fault>,
    batches: [] as Array<FakeBatch>,
    respond,
    latencyMs: 0,
    outputTokens: verdictTokens as (seen: SeenRequest, answer: Answer) => number,
    batchEndsAfterPolls: 0,
    batchFate: ((): BatchFate => "succeeded") as (customId: string, seen: SeenRequest) => BatchFate,
    inFlight: 0,
    maxInFlight: 0,
    batchesMissing: false,
    faultWhen: ((): boolean => true) as (method: string, url: string) => boolean,
    httpCalls: 0
  }
  let port = 0
  const answered = (seen: SeenRequest, answer: Answer) =>
    anthropicMessage(seen, answer, state.outputTokens(seen, answer))
  const batchJson = (b: FakeBatch) => {
    const count = (f: BatchFate) => b.fates.filter((x) => x === f).length
    return {
      id: b.id,
      type: "message_batch",
      processing_status: b.ended ? "ended" : "in_progress",
      request_counts: {
        processing: b.ended ? 0 : b.items.length,
        succeeded: count("succeeded"),
        errored: count("errored"),
        canceled: 0,
        expired: count("expired")
      },
      created_at: new Date().toISOString(),
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      ended_at: b.ended ? new Date().toISOString() : null,
      cancel_initiated_at: null,
      archived_at: null,
      results_url: b.ended ? `http://127.0.0.1:${port}/v1/messages/batches/${b.id}/results` : null
    }
  }
  /** The Message Batches API: create, retrieve (each look counts towards the batch's end), results as JSONL. */
  const batchRoute = (req: http.IncomingMessage, body: Record<string, unknown>, res: http.ServerResponse): boolean => {
    const m = BATCH_PATH.exec(req.url ?? "")
    if (m === null) return false
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(JSON.stringify(value))
    }
    if (state.batchesMissing) {
      json(404, { type: "error", error: { type: "not_found_error", message: "Not Found" } })
      return true
    }
    if (req.method === "POST" && m[1] === undefined) {
      const requests =
        (body["requests"] as Array<{ custom_id: string; params: Record<string, unknown> }> | undefined) ?? []
      const batch: FakeBatch = {
        id: `msgbatch_fake${state.batches.length + 1}`,
        items: requests.map((r) => ({
          customId: r.custom_id,
          seen: seenOf("anthropic", `/v1/messages/batches#${r.custom_id}`, req.headers, r.params)
        })),
        polls: 0,
        ended: false,
        fates: []
      }
      state.batches.push(batch)
      for (const item of batch.items) state.requests.push(item.seen)
      json(200, batchJson(batch))
      return true
    }
    const batch = state.batches.find((b) => b.id === m[1])
    if (batch === undefined) {
      json(404, { type: "error", error: { type: "not_found_error", message: `no batch ${m[1]}` } })
      return true
    }
    if (m[2] === undefined) {
      batch.polls++
      if (!batch.ended && batch.polls > state.batchEndsAfterPolls) {
        batch.ended = true
        batch.fates = batch.items.map((i) => state.batchFate(i.customId, i.seen))
      }
      json(200, batchJson(batch))
      return true
    }
    const lines = batch.items.map(({ customId, seen }, i) => {
      const fate = batch.fates[i] ?? "expired"
      const result =
        fate === "succeeded"
          ? { type: "succeeded", message: answered(seen, state.respond(seen)) }
          : fate === "errored"
            ? {
                type: "errored",
                error: { type: "error", error: { type: "overloaded_error", message: "scripted batch failure" } }
              }
            : { type: "expired" }
      return JSON.stringify({ custom_id: customId, result })
    })
    res.writeHead(200, { "content-type": "application/binary" })
    res.end(lines.join("\n") + "\n")
    return true
  }
  const server = http.createServer((req, res) => {
    let raw = ""
    req.on("data", (d: Buffer) => (raw += d.toString()))
    req.on("end", () => {
      state.httpCalls++
      const body = (() => {
        try {
          return JSON.parse(raw) as Record<string, unknown>
        } catch {
          return {}
        }
      })()
      const batchCall = BATCH_PATH.test(req.url ?? "")
      const api = req.url?.endsWith("/messages") || batchCall ? "anthropic" : "chat"
      const seen = seenOf(api, req.url ?? "", req.headers, body)
      if (!batchCall) state.requests.push(seen)
      const fault = state.faultWhen(req.method ?? "GET", req.url ?? "") ? state.faults.shift() : undefined
      const send = () => {
        if (fault !== undefined && "status" in fault) {
          res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers })
          res.end(
            fault.body ??
              JSON.stringify({ type: "error", error: { type: "scripted", message: `scripted ${fault.status}` } })
          )
          return
        }
        if (fault !== undefined && "stallMidAnswer" in fault) {
          res.writeHead(200, { "content-type": "application/json", "content-length": "4096" })
          res.write('{"id":"msg_stall","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_')
          return
        }
        if (fault !== undefined && "garbage" in fault) {
          res.writeHead(200, { "content-type": "application/json" })
          res.end("<html>502 bad gateway</html>")
          return
        }
        if (batchRoute(req, body, res)) return
        const answer = state.respond(seen)
        if (api === "anthropic") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify(answered(seen, answer)))
        } else {
          const tools = body["tools"] as Array<{ function?: { name: string } }> | undefined
          const fn = tools?.[0]?.function?.name
          const message =
            "tool" in answer && fn !== undefined
              ? {
                  role: "assistant",
                  content: null,
                  tool_calls: [
                    {
                      id: "call_fake",
                      type: "function",
                      function: { name: fn, arguments: JSON.stringify(answer.tool) }
                    }
                  ]
                }
              : { role: "assistant", content: "tool" in answer ? JSON.stringify(answer.tool) : answer.text }
          res.writeHead(200, { "content-type": "application/json" })
          res.end(
            JSON.stringify({
              id: "chatcmpl-fake",
              object: "chat.completion",
              model: seen.model,
              choices: [{ index: 0, message, finish_reason: fn !== undefined ? "tool_calls" : "stop" }],
              usage: { prompt_tokens: tokensInOf(seen), completion_tokens: state.outputTokens(seen, answer) }
            })
          )
        }
      }
      const delay = fault !== undefined && "hangMs" in fault ? fault.hangMs : state.latencyMs
      // Direct Messages calls being answered at once: what the client's concurrency limit let through.
      const direct = req.url === "/v1/messages"
      if (direct) state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight)
      const answer = () => {
        if (direct) state.inFlight--
        send()
      }
      if (delay > 0) setTimeout(answer, delay)
      else answer()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as AddressInfo).port
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }) as FakeProvider
}

/**
 * DotClaw-like trace lines for tests and benchmarks. Deterministic for a given index and day.
 *
 * Dates are relative to the run, never absolute: the stages look at windows that follow the clock (14 days of
 * retention, the trend sample, a canary's age), and a trace dated on a fixed day falls out of them a few weeks
 * after the test was written. `npm test` runs the suite a second time with the clock moved 400 days ahead to
 * prove it.
 */
const DAY_MS = 86_400_000

/** The UTC calendar day (YYYY-MM-DD) `n` days before the run. */
export const daysAgo = (n: number, now = Date.now()) => new Date(now - n * DAY_MS).toISOString().slice(0, 10)

/**
 * The day test traces are dated by default: yesterday, so that the 60,000 seconds of the largest test file
 * end before now and every trace is well inside the 14-day windows. Fixed when the test file loads.
 */
export const TEST_DAY = daysAgo(1)

/** The day the test file loaded: ids count days back from it, so they do not change with the run's date. */
const RUN_DAY = daysAgo(0)

/**
 * A test trace's id: `t-d<days before the run>-<i>`. It never carries the calendar date: the optimizer's
 * split and the trend sample order turns by a hash of the id, and an id with the date in it would give each
 * day's run a different split (a test could pass on one day and fail on the next).
 */
export const testTraceId = (i: number, day = TEST_DAY) =>
  `t-d${Math.round((Date.parse(RUN_DAY) - Date.parse(day)) / DAY_MS)}-${i}`

/** DotClaw's daily trace file name: `trace-YYYY-MM-DD.jsonl`. */
export const traceFileName = (day = TEST_DAY) => `trace-${day}.jsonl`

export interface TraceOptions {
  readonly day?: string
  readonly packVersions?: Record<string, string>
  readonly error?: boolean
  readonly toolFailure?: boolean
  readonly text?: string
}

export const traceObject = (i: number, o: TraceOptions = {}) => {
  const day = o.day ?? TEST_DAY
  const ts = new Date(Date.parse(`${day}T00:00:00.000Z`) + i * 1000).toISOString()
  return {
    trace_id: testTraceId(i, day),
    timestamp: ts,
    created_at: Date.parse(ts),
    chat_id: `chat-${i % 17}`,
    group_folder: `group-${i % 3}`,
    user_id: `user-${i % 29}`,
    input_text: `<message sender="Ana" sender_id="u${i % 29}" time="${ts}">${o.text ?? `Please check the weather in Lisbon for trip ${i} &amp; remind me tomorrow`}</message>`,
    output_text: o.error === true ? null : `Sure. It will be sunny in Lisbon (trip ${i}); I set a reminder for 9:00.`,
    model_id: "moonshotai/kimi-k2",
    prompt_pack_versions: o.packVersions ?? { "response-quality": "rq-1", "tool-calling": "tc-1" },
    memory_summary: "User travels often; prefers short answers.",
    memory_facts: ["prefers Celsius", `trip ${i} planned`],
    memory_recall: ["lives in Porto"],
    session_recall: [],
    tool_calls: [
      {
        name: "weather",
        args: { city: "Lisbon" },
        ok: o.toolFailure !== true,
        duration_ms: 120 + (i % 50),
        ...(o.toolFailure === true ? { error: "timeout" } : {})
      },
      { name: "reminder.create", args: { at: "09:00" }, ok: true, duration_ms: 40 }
    ],
    latency_ms: 1800 + (i % 400),
    tokens_prompt: 2100,
    tokens_completion: 180,
    cost_total_usd: 0.0021,
    ...(o.error === true ? { error_code: "429 rate limit from provider" } : {}),
    source: "message",
    timings: { llm_ms: 1500, tools_ms: 160 },
    host_failover_attempts: 0
  }
}

export const traceLine = (i: number, o: TraceOptions = {}) => JSON.stringify(traceObject(i, o)) + "\n"

export const traceLines = (from: number, count: number, o: TraceOptions = {}) => {
  let out = ""
  for (let i = from; i < from + count; i++) out += traceLine(i, o)
  return out
}

/**
 * npm run bench:month [-- --days=6 --per-day=48,1000 --history-days=3 --seed=1] (`--full`: 30 days)
 *
 * What autotune costs beside the agent it improves, over a simulated life: the built CLI's `once` every hour at
 * the defaults (six behaviors, the trend sample in Message Batches, the default price table), under Debian's
 * faketime at the hour it stands for, against the fake provider on 127.0.0.1 through the real SDK. A small DotClaw
 * stands beside it: each hour it serves its turns (`trace-<uuid>` ids, a quiet night, tool calls and memory on
 * most turns, 2% errors, `cost_total_usd` averaging $0.02) with the packs in its prompts dir as DotClaw picks
 * them (a canary for its share of requests, at random), and writes them to its daily trace file. Three days of
 * history come first, as for a person who installs autotune beside an agent that already runs.
 *
 * Improvements are there to find: instructions the optimizer's proposer marks BETTER make the agent's turns for
 * that behavior score higher (the judge's 5-level scores move up, +0.09 on the mean; a second step +0.05 more),
 * and the replays it judges say so. Not there: reactions or grades (alignment has nothing to go by, so it costs
 * nothing here) and behavior tuning (off by default).
 *
 * Per day and per stage (trend sample, canary turns, pairs, stage 2, optimizer, alignment, behavior): calls,
 * tokens and dollars from the store's own ledger (llm_calls), beside the agent's spend from its traces, and
 * what shipped (canaries out, promoted, rolled back). Results also go to .bench/month-<per-day>.json.
 */
import Database from "better-sqlite3"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { BEHAVIORS, type Behavior } from "../src/Domain/Behavior.js"
import { rng } from "../src/Domain/Random.js"
import { RUBRICS } from "../src/judge/Prompts.js"
import { clockAt, runCli } from "../test/helpers/cli.js"
import { type Answer, lengthTokens, type SeenRequest, startFakeProvider } from "../test/helpers/fakeProvider.js"
import { traceObject } from "../test/helpers/traces.js"
import { machine, uuidV4 } from "./util.js"

const HOUR = 3_600_000
const DAY = 24 * HOUR
const argOf = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
const FULL = process.argv.includes("--full")
const DAYS = Number(argOf("days") ?? (FULL ? 30 : 6))
const HISTORY = Number(argOf("history-days") ?? 3)
const PER_DAY = (argOf("per-day") ?? "48,1000").split(",").map(Number)
const SEED = Number(argOf("seed") ?? 1)

// ---- The world's quality: a pack's level is how many BETTER marks its instructions carry (at most two). ----

/** The judge's five levels, and how likely each is for a turn served at a level (means 0.66, 0.75, 0.81). */
const SCORES = [0, 0.25, 0.5, 0.75, 1]
const AT_LEVEL = [
  [0.02, 0.1, 0.33, 0.3, 0.25],
  [0.01, 0.05, 0.25, 0.34, 0.35],
  [0.01, 0.03, 0.17, 0.34, 0.45]
]
const levelOf = (instructions: string | undefined) => Math.min(2, (instructions ?? "").split("BETTER").length - 1)
const scoreAt = (level: number, u: number) => {
  const p = AT_LEVEL[level]!
  for (let i = 0; i < p.length; i++) if ((u -= p[i]!) < 0) return SCORES[i]!
  return 1
}
/** A fixed draw in [0, 1) from a text: a retried request gets the same answer. */
const drawOf = (text: string) => parseInt(createHash("sha256").update(text).digest("hex").slice(0, 8), 16) / 0x100000000

// ---- The fake provider's answers: judge, proposer, replays; each of realistic length. ----

const TITLES = new Map(BEHAVIORS.map((b) => [`You judge one behavior: ${RUBRICS[b].title}.`, b]))
const behaviorOf = (system: string): Behavior | undefined => [...TITLES].find(([t]) => system.includes(t))?.[1]
const REASONS = [
  "The reply answers the question directly and keeps the details the user asked for.",
  "The assistant used the right tool but repeated information the user already had.",
  "It handles the request, though the reply is longer than the question needed.",
  "The reply misses part of what the user asked and does not say what is missing."
]
const INSTRUCTIONS = [
  "Answer the question in the first sentence, then give only the details the person needs to act on it. When a tool can give a fresher or more precise answer than memory, call it, and check its result before relying on it. Keep what the person told you about their preferences and use it without being asked again.",
  "Read the whole message before answering and list each thing the person asked for. Use tools for facts that change (weather, schedules, prices) and say when a tool failed instead of guessing. Remember stable preferences and plans; do not store one-off details.",
  "Be brief and concrete. Prefer one clear recommendation over several options unless the person asked to compare. When you set a reminder or change something, confirm exactly what was set. Recall earlier conversations only when they matter to the question."
]
/** Each candidate of a proposal ends its own way: a proposer does not send the same text twice. */
const CLOSERS = [
  "Ask one short question when the request is ambiguous.",
  "Use the person's units and time zone.",
  "Say plainly when you could not do something.",
  "Do not repeat what the person already knows.",
  "Offer a next step only when one is useful.",
  "Keep lists to five items or fewer.",
  "Name the source when a fact comes from a tool.",
  "Prefer the person's earlier choices when they fit."
]
const REPLY =
  "Here is what I found: tomorrow in Lisbon will be mostly sunny, 19 to 24 degrees, with a light wind from the north in the afternoon. Your flight leaves at 10:40, so leaving home by 8:30 gives you time for the bag drop. I set a reminder for 8:00 with the booking reference, and I noted that you prefer a window seat for next time."

const answer = (r: SeenRequest): Answer => {
  if (r.toolName === "propose_instructions") {
    const parent = /Current instructions:\n([\s\S]*?)\n\n/.exec(r.user)?.[1] ?? ""
    const count = Number(/Propose (\d+) different/.exec(r.user)?.[1] ?? 3)
    const level = levelOf(parent)
    // One step up where there is one, the rest as good as the parent or worse: a proposer is right sometimes.
    const candidates = Array.from({ length: count }, (_, i) => {
      const marks = i === 0 ? Math.min(2, level + 1) : i % 2 === 0 ? level : Math.max(0, level - 1)
      return {
        instructions: `${INSTRUCTIONS[i % INSTRUCTIONS.length]!} ${CLOSERS[i % CLOSERS.length]!}${" BETTER.".repeat(marks)}`
      }
    })
    return { tool: { candidates } }
  }
  if (r.toolName === "record_score" || r.toolName === "record_scores") {
    const reason = REASONS[Math.floor(drawOf(r.user) * REASONS.length)]!
    // A turn's marker holds its score and the draw behind it. A replay's reply says which level of instructions
    // wrote it, and the judge scores it at that level from the turn's own draw: a hard turn stays hard under
    // other instructions, so what the optimizer's paired test compares is the instructions.
    const replay = /## Assistant reply\nL(\d) /.exec(r.user)
    const scoreFor = (b: Behavior | undefined) => {
      const marker = b === undefined ? null : new RegExp(`SCORE:${b}=([\\d.]+)~([\\d.]+)`).exec(r.user)
      if (marker === null) return 0.75
      return replay === null ? Number(marker[1]) : scoreAt(Number(replay[1]), Number(marker[2]))
    }
    if (r.toolName === "record_score") return { tool: { score: scoreFor(behaviorOf(r.system)), reason } }
    return { tool: Object.fromEntries(BEHAVIORS.map((b) => [b, { score: scoreFor(b), reason }])) }
  }
  // A replay: the predictor answers as the instructions it was given would have it.
  return { text: `L${levelOf(r.system)} ${REPLY}` }
}

// ---- The small DotClaw: which pack serves each behavior, and the turns of an hour. ----

interface Served {
  readonly version: string
  readonly level: number
}
const readJson = (file: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
  } catch {
    return undefined
  }
}
/** What DotClaw would serve a behavior now: the active pack, the canary at its share, or a lone canary to all. */
const packsOf = (prompts: string) =>
  Object.fromEntries(
    BEHAVIORS.map((b) => {
      const pack = (file: string): Served | undefined => {
        const p = readJson(path.join(prompts, file))
        return p === undefined
          ? undefined
          : { version: String(p["version"]), level: levelOf(String(p["instructions"])) }
      }
      const canary = readJson(path.join(prompts, `${b}.canary.json`))
      const percent = Number((canary?.["metadata"] as Record<string, unknown> | undefined)?.["canaryPercent"] ?? 10)
      return [b, { active: pack(`${b}.json`), canary: pack(`${b}.canary.json`), share: percent / 100 }]
    })
  )

const MESSAGES = [
  "Can you check the weather in Lisbon for tomorrow and remind me to pack an umbrella if it rains?",
  "What time is my flight on Friday, and how long does it take to get to the airport from home?",
  "Summarise the three emails from the landlord this week and tell me what I still have to answer.",
  "Add oat milk, eggs and coffee to the shopping list and tell me what else is on it.",
  "Find a vegetarian restaurant near the office for Thursday at 19:30 for four people.",
  "How much did I spend on groceries last month compared to the month before?",
  "Move my dentist appointment to next week, any afternoon works.",
  "Translate this into Portuguese for the neighbour: the parcel can be left at the door."
]
/** A quiet night: the share of a day's turns in each hour (UTC). */
const HOURLY = Array.from({ length: 24 }, (_, h) => (h < 7 ? 0.3 : h === 23 ? 0.6 : 1.2))
const HOURLY_SUM = HOURLY.reduce((a, b) => a + b, 0)

interface Agent {
  turns: number
  costUsd: number
  n: number
}

/** Writes the turns DotClaw served in the hour before `end` into its daily file; returns their count and cost. */
const serveHour = (home: string, end: number, perDay: number, agent: Agent, r: () => number) => {
  const hour = new Date(end - HOUR).getUTCHours()
  const expected = (perDay * HOURLY[hour]!) / HOURLY_SUM
  const count = Math.floor(expected) + (r() < expected - Math.floor(expected) ? 1 : 0)
  const packs = packsOf(path.join(home, "prompts"))
  let body = ""
  for (let k = 0; k < count; k++) {
    const i = agent.n++
    const at = end - HOUR + Math.floor(((k + r()) / count) * HOUR)
    const versions: Record<string, string> = {}
    const markers: Array<string> = []
    for (const b of BEHAVIORS) {
      const p = packs[b]!
      const served = p.canary !== undefined && (p.active === undefined || r() < p.share) ? p.canary : p.active
      if (served !== undefined) versions[b] = served.version
      const u = r()
      markers.push(`SCORE:${b}=${scoreAt(served?.level ?? 0, u)}~${u.toFixed(3)}`)
    }
    const error = r() < 0.02
    const base = traceObject(i, { packVersions: versions, error, toolFailure: r() < 0.05 })
    const tools = r() < 0.6
    const cost = Math.round(0.02 * (0.4 + 1.2 * r()) * 1e6) / 1e6
    const text = `${MESSAGES[i % MESSAGES.length]!} ${markers.join(" ")}`
    const turn = {
      ...base,
      trace_id: `trace-${uuidV4(perDay * 1_000_000 + i)}`,
      timestamp: new Date(at).toISOString(),
      created_at: at,
      input_text: `<message sender="Ana" sender_id="u${i % 3}" time="${new Date(at).toISOString()}">${text}</message>`,
      tool_calls: tools ? base.tool_calls : [],
      memory_facts: r() < 0.5 ? base.memory_facts : [],
      memory_recall: r() < 0.4 ? base.memory_recall : [],
      cost_total_usd: cost
    }
    body += JSON.stringify(turn) + "\n"
    agent.turns++
    agent.costUsd += cost
  }
  const file = path.join(home, "traces", `trace-${new Date(end - HOUR).toISOString().slice(0, 10)}.jsonl`)
  fs.appendFileSync(file, body)
  return count
}

// ---- What the ledger says, by the stages a person would ask about. ----

const STAGES = [
  "trend sample",
  "canary turns",
  "pairs",
  "reactions",
  "stage 2",
  "optimizer",
  "alignment",
  "behavior"
] as const
type Stage = (typeof STAGES)[number]
const stageOf = (stage: string): Stage => {
  const [head, , level, need] = stage.split(":")
  if (head === "optimize") return "optimizer"
  if (head === "align") return "alignment"
  if (head === "behavior") return "behavior"
  if (stage === "judge:batch") return "trend sample"
  if (level === "2") return "stage 2"
  return need === "canary"
    ? "canary turns"
    : need === "pair"
      ? "pairs"
      : need === "human"
        ? "reactions"
        : "trend sample"
}

interface Cost {
  calls: number
  tokensIn: number
  tokensOut: number
  usd: number
}
const zero = (): Cost => ({ calls: 0, tokensIn: 0, tokensOut: 0, usd: 0 })

const life = async (perDay: number) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `autotune-bench-month-${perDay}-`))
  fs.mkdirSync(path.join(home, "traces"), { recursive: true })
  fs.mkdirSync(path.join(home, "prompts"), { recursive: true })
  const fake = await startFakeProvider(answer)
  fake.outputTokens = lengthTokens
  const env = { AUTOTUNE_HOME: home, ANTHROPIC_API_KEY: "sk-ant-bench", ANTHROPIC_BASE_URL: fake.url }
  const r = rng(SEED * 7919 + perDay)
  // Whole hours, ending a little before now: the CLI runs at each hour it stands for, the traces never ahead of it.
  const first = Math.floor(Date.now() / HOUR) * HOUR - (DAYS + HISTORY) * DAY
  const agent: Agent = { turns: 0, costUsd: 0, n: 0 }
  const agentByDay = new Map<string, { turns: number; usd: number }>()
  const dayOf = (at: number) => new Date(at).toISOString().slice(0, 10)
  const addAgent = (day: string, turns: number, usd: number) => {
    const d = agentByDay.get(day) ?? { turns: 0, usd: 0 }
    agentByDay.set(day, { turns: d.turns + turns, usd: d.usd + usd })
  }
  for (let h = 1; h <= HISTORY * 24; h++) {
    const before = agent.costUsd
    addAgent(dayOf(first + (h - 1) * HOUR), serveHour(home, first + h * HOUR, perDay, agent, r), agent.costUsd - before)
  }
  const installed = first + HISTORY * DAY
  const wall: Array<number> = []
  const failed: Array<string> = []
  for (let h = 1; h <= DAYS * 24; h++) {
    const end = installed + h * HOUR
    const before = agent.costUsd
    addAgent(dayOf(end - HOUR), serveHour(home, end, perDay, agent, r), agent.costUsd - before)
    const started = process.hrtime.bigint()
    const out = await runCli(["once", "--json"], { ...env, ...clockAt(end + 60_000) }, { timeoutMs: 600_000 })
    wall.push(Number(process.hrtime.bigint() - started) / 1e9)
    if (out.code !== 0) failed.push(`hour ${h}: exit ${out.code}: ${out.stderr.trim().split("\n").slice(-1)[0] ?? ""}`)
    // The fake keeps every request it saw for tests; a month of them would fill the memory. Its batches stay:
    // a batch sent in this cycle is collected in a later one.
    fake.requests.length = 0
    if (h % 24 === 0 && process.stdout.isTTY)
      process.stdout.write(`\r  ${perDay} turns a day: day ${h / 24} of ${DAYS}`)
  }
  if (process.stdout.isTTY) process.stdout.write("\n")
  await fake.close()

  const db = new Database(path.join(home, "autotune.db"), { readonly: true })
  const calls = db
    .prepare(
      "SELECT created_at AS at, stage, tokens_in AS i, tokens_out AS o, cost_usd AS usd FROM llm_calls WHERE outcome = 'ok'"
    )
    .all() as Array<{ at: number; stage: string; i: number; o: number; usd: number }>
  const deployments = db
    .prepare("SELECT created_at AS at, behavior, version, action FROM deployments ORDER BY created_at")
    .all() as Array<{ at: number; behavior: string; version: string; action: string }>
  const optimizer = db
    .prepare("SELECT outcome, COUNT(*) AS n FROM optimize_runs GROUP BY outcome ORDER BY outcome")
    .all() as Array<{ outcome: string; n: number }>
  db.close()

  const byDay = new Map<string, Record<Stage, Cost>>()
  const total = Object.fromEntries(STAGES.map((s) => [s, zero()])) as Record<Stage, Cost>
  for (const c of calls) {
    const day = byDay.get(dayOf(c.at)) ?? (Object.fromEntries(STAGES.map((s) => [s, zero()])) as Record<Stage, Cost>)
    byDay.set(dayOf(c.at), day)
    for (const into of [day[stageOf(c.stage)], total[stageOf(c.stage)]]) {
      into.calls++
      into.tokensIn += c.i
      into.tokensOut += c.o
      into.usd += c.usd
    }
  }
  const days = Array.from({ length: DAYS }, (_, d) => dayOf(installed + d * DAY + HOUR))
  const rows = days.map((day) => {
    const s = byDay.get(day)
    const usd = s === undefined ? 0 : STAGES.reduce((n, k) => n + s[k].usd, 0)
    const a = agentByDay.get(day) ?? { turns: 0, usd: 0 }
    return { day, agentTurns: a.turns, agentUsd: a.usd, autotuneUsd: usd, stages: s }
  })
  const autotuneUsd = rows.reduce((n, d) => n + d.autotuneUsd, 0)
  const agentUsd = rows.reduce((n, d) => n + d.agentUsd, 0)
  const shipped = deployments
    .filter((d) => d.action !== "baseline" && d.action !== "canary_step")
    .map((d) => ({ day: Math.floor((d.at - installed) / DAY) + 1, behavior: d.behavior, action: d.action }))
  return { perDay, home, rows, total, autotuneUsd, agentUsd, shipped, optimizer, wall, failed }
}

const usd = (x: number) => `$${x.toFixed(x < 1 ? 3 : 2)}`
const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : "n/a")

console.log(
  `bench:month: ${DAYS} days of hourly \`once\` (after ${HISTORY} days of history) at ${PER_DAY.join(" and ")} turns a day, the defaults, six behaviors; seed ${SEED}; machine: ${machine()}`
)
fs.mkdirSync(".bench", { recursive: true })
for (const perDay of PER_DAY) {
  const l = await life(perDay)
  const median = [...l.wall].sort((a, b) => a - b)[Math.floor(l.wall.length / 2)]!
  console.log(
    `\n${perDay} turns a day: agent ${usd(l.agentUsd)} (${l.rows.reduce((n, d) => n + d.agentTurns, 0)} turns), autotune ${usd(l.autotuneUsd)} = ${pct(l.autotuneUsd, l.agentUsd)} of the agent's; ${l.wall.length} cycles, median ${median.toFixed(2)} s, total ${(l.wall.reduce((a, b) => a + b, 0) / 60).toFixed(1)} min`
  )
  if (l.failed.length > 0) console.log(`  cycles that failed: ${l.failed.length}; first: ${l.failed[0]}`)
  console.log(
    `  ${"stage".padEnd(14)} ${"calls".padStart(7)} ${"tokens in".padStart(11)} ${"tokens out".padStart(10)} ${"dollars".padStart(8)}`
  )
  for (const s of STAGES) {
    const c = l.total[s]
    console.log(
      `  ${s.padEnd(14)} ${String(c.calls).padStart(7)} ${String(c.tokensIn).padStart(11)} ${String(c.tokensOut).padStart(10)} ${usd(c.usd).padStart(8)}`
    )
  }
  console.log(
    `  day  agent turns  agent $  autotune $  share  ${STAGES.map((s) => s.split(" ")[0]!.slice(0, 7).padStart(8)).join("")}`
  )
  l.rows.forEach((d, i) =>
    console.log(
      `  ${String(i + 1).padStart(3)}  ${String(d.agentTurns).padStart(11)}  ${usd(d.agentUsd).padStart(7)}  ${usd(d.autotuneUsd).padStart(10)}  ${pct(d.autotuneUsd, d.agentUsd).padStart(5)}  ${STAGES.map((s) => (d.stages?.[s].usd ?? 0).toFixed(3).padStart(8)).join("")}`
    )
  )
  console.log(`  optimizer runs: ${l.optimizer.map((o) => `${o.outcome} ${o.n}`).join(", ") || "none"}`)
  console.log(`  shipped: ${l.shipped.map((s) => `day ${s.day} ${s.behavior} ${s.action}`).join("; ") || "nothing"}`)
  fs.writeFileSync(
    path.join(".bench", `month-${perDay}.json`),
    JSON.stringify({ days: DAYS, history: HISTORY, seed: SEED, ...l }, null, 2)
  )
  if (process.env["BENCH_KEEP"] !== "1") fs.rmSync(l.home, { recursive: true, force: true })
}

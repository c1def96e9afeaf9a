/**
 * behavior/: tunes DotClaw's behavior.json knobs (docs/dotclaw-formats.md §3) from the last days' turns and
 * writes the daily behavior report. BehaviorTuner.ts is the service, optional (AUTOTUNE_BEHAVIOR_ENABLED).
 * May import: Domain, config, privacy, store, llm, ingest, judge, canary, optimize, align
 */
import { fromPercent } from "../Domain/Share.js"
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { activePath, canaryPath, readPack } from "../Domain/Pack.js"
import { Deployer } from "../canary/Deployer.js"
import { recordSelection } from "../store/Packs.js"
import { newVersion } from "../canary/Versions.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { Judge } from "../judge/Judge.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { DEFAULT_INSTRUCTIONS } from "../optimize/Optimize.js"
import { judgeTraceOf } from "../judge/Prompts.js"
import { type RecentBehavior, recentAnsweredTurns, recentBehavior } from "../store/Traces.js"
import { Rubrics } from "../judge/RubricBook.js"

/** DotClaw's behavior.json (docs/dotclaw-formats.md §3). */
export interface BehaviorConfig {
  readonly tool_calling_bias: number
  readonly memory_importance_threshold: number
  readonly response_style: "concise" | "balanced" | "detailed"
  readonly caution_bias: number
  readonly last_updated: string
  readonly notes?: string
}

export const BEHAVIOR_DEFAULTS = {
  tool_calling_bias: 0.5,
  memory_importance_threshold: 0.55,
  response_style: "balanced",
  caution_bias: 0.5
} as const
const STYLES = ["concise", "balanced", "detailed"] as const

/** DotClaw's own reading of the file: numbers clamped to [0, 1], non-numbers 0.5, unknown style balanced. */
export const readAsDotClaw = (raw: unknown): Omit<BehaviorConfig, "last_updated" | "notes"> => {
  const r = (raw !== null && typeof raw === "object" ? raw : {}) as Record<string, unknown>
  const unit = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0.5)
  const style = STYLES.find((s) => s === r["response_style"]) ?? "balanced"
  return {
    tool_calling_bias:
      r["tool_calling_bias"] === undefined ? BEHAVIOR_DEFAULTS.tool_calling_bias : unit(r["tool_calling_bias"]),
    memory_importance_threshold:
      r["memory_importance_threshold"] === undefined
        ? BEHAVIOR_DEFAULTS.memory_importance_threshold
        : unit(r["memory_importance_threshold"]),
    response_style: style,
    caution_bias: r["caution_bias"] === undefined ? BEHAVIOR_DEFAULTS.caution_bias : unit(r["caution_bias"])
  }
}

export interface Metrics {
  readonly traces: number
  readonly errorRate: number | null
  readonly latencyMs: number | null
  readonly responseChars: number | null
  readonly toolCallsPerTurn: number | null
  readonly toolFailureRate: number | null
  readonly memoryFactsPerTurn: number | null
  readonly evalScore: number | null
}

export interface Change {
  readonly knob: keyof Omit<BehaviorConfig, "last_updated" | "notes">
  readonly from: number | string
  readonly to: number | string
  readonly why: string
}

const STEP = 0.05
const round = (x: number) => Math.round(x * 1000) / 1000
const clamp01 = (x: number) => round(Math.min(1, Math.max(0, x)))

/**
 * The rules, one small step a day so a bad week cannot swing the agent far: each is explainable from the
 * metrics and written into the report.
 */
export const deriveChanges = (m: Metrics, current: ReturnType<typeof readAsDotClaw>): Array<Change> => {
  const changes: Array<Change> = []
  const nudge = (knob: Change["knob"], delta: number, why: string) => {
    const from = current[knob] as number
    const to = clamp01(from + delta)
    if (to !== from) changes.push({ knob, from, to, why })
  }
  if (m.toolFailureRate !== null && m.toolFailureRate > 0.25)
    nudge(
      "tool_calling_bias",
      -STEP,
      `tool-failure rate ${(m.toolFailureRate * 100).toFixed(0)}% > 25%: call tools less eagerly`
    )
  else if (m.toolFailureRate !== null && m.toolFailureRate < 0.05 && (m.toolCallsPerTurn ?? 0) < 0.5)
    nudge(
      "tool_calling_bias",
      STEP,
      `tools rarely fail (${(m.toolFailureRate * 100).toFixed(0)}%) and are rarely used (${(m.toolCallsPerTurn ?? 0).toFixed(2)} per turn)`
    )
  if (m.errorRate !== null && m.errorRate > 0.1)
    nudge("caution_bias", STEP, `error rate ${(m.errorRate * 100).toFixed(0)}% > 10%: be more careful`)
  else if (m.errorRate !== null && m.errorRate < 0.02 && current.caution_bias > 0.5)
    nudge("caution_bias", -STEP, `error rate ${(m.errorRate * 100).toFixed(1)}% < 2%: relax toward the default`)
  if (m.memoryFactsPerTurn !== null && m.memoryFactsPerTurn > 2)
    nudge(
      "memory_importance_threshold",
      STEP,
      `${m.memoryFactsPerTurn.toFixed(1)} memories kept per turn > 2: keep only more important ones`
    )
  else if (m.memoryFactsPerTurn !== null && m.memoryFactsPerTurn < 0.2)
    nudge(
      "memory_importance_threshold",
      -STEP,
      `${m.memoryFactsPerTurn.toFixed(2)} memories kept per turn < 0.2: keep a little more`
    )
  const lowScore = m.evalScore !== null && m.evalScore < 0.7
  if (lowScore && m.responseChars !== null && m.responseChars > 1200 && current.response_style !== "concise") {
    changes.push({
      knob: "response_style",
      from: current.response_style,
      to: current.response_style === "detailed" ? "balanced" : "concise",
      why: `replies average ${m.responseChars.toFixed(0)} characters and score ${m.evalScore!.toFixed(2)}: shorter`
    })
  } else if (lowScore && m.responseChars !== null && m.responseChars < 200 && current.response_style !== "detailed") {
    changes.push({
      knob: "response_style",
      from: current.response_style,
      to: current.response_style === "concise" ? "balanced" : "detailed",
      why: `replies average ${m.responseChars.toFixed(0)} characters and score ${m.evalScore!.toFixed(2)}: fuller`
    })
  }
  return changes
}

/** The window's figures as the rules read them (the judge's score is added when a model is set). */
const metricsOf = (r: RecentBehavior): Omit<Metrics, "evalScore"> => ({
  traces: r.n,
  errorRate: r.err,
  latencyMs: r.latency,
  responseChars: r.chars,
  toolCallsPerTurn: r.tools,
  toolFailureRate: r.toolCalls !== null && r.toolCalls > 0 ? (r.toolFails ?? 0) / r.toolCalls : null,
  memoryFactsPerTurn: r.facts
})

/** DotClaw's behavior.json as DotClaw reads it; a missing or unreadable file reads as DotClaw's defaults. */
const readBehaviorFile = (file: string) =>
  Effect.sync(() => {
    try {
      return readAsDotClaw(JSON.parse(fs.readFileSync(file, "utf8")))
    } catch {
      return readAsDotClaw({})
    }
  })

/** The instruction a style or tool change adds to its behavior's pack (AUTOTUNE_BEHAVIOR_PROMPT_PACKS=1). */
export const packHints = (changes: ReadonlyArray<Change>): Partial<Record<Behavior, string>> => {
  const hints: Partial<Record<Behavior, string>> = {}
  const style = changes.find((c) => c.knob === "response_style")
  if (style !== undefined)
    hints["response-quality"] =
      style.to === "concise"
        ? "Keep replies short: lead with the answer and drop anything the user did not ask for."
        : style.to === "detailed"
          ? "Give complete replies: include the steps or context the user needs to act on the answer."
          : "Match the length of the reply to the question."
  const tools = changes.find((c) => c.knob === "tool_calling_bias")
  if (tools !== undefined)
    hints["tool-calling"] =
      Number(tools.to) < Number(tools.from)
        ? "Tools fail often lately: call a tool only when the answer truly needs it, and check its result before relying on it."
        : "Use tools when they give fresher or more precise answers than memory."
  return hints
}

export class BehaviorTuner extends Effect.Service<BehaviorTuner>()("autotune/BehaviorTuner", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const judge = yield* Judge
    const deployer = yield* Deployer
    const alignment = yield* JudgeAgreement
    const rubrics = (yield* Rubrics).current
    const { config } = yield* Settings

    const since = Effect.map(Clock.currentTimeMillis, (now) => now - config.behaviorDays * 86_400_000)
    const cap = config.behaviorMaxTraces > 0 ? config.behaviorMaxTraces : Number.MAX_SAFE_INTEGER

    const metrics = Effect.map(
      Effect.flatMap(since, (from) => recentBehavior(sql, from, cap)),
      metricsOf
    )

    /** A response-quality score from AUTOTUNE_BEHAVIOR_EVAL_MODEL over the most recent answered turns. */
    const evalScore = Effect.gen(function* () {
      if (config.behaviorEvalModel === "" || config.behaviorEvalSamples === 0 || !runner.provider.available) return null
      const rows = yield* recentAnsweredTurns(sql, yield* since, config.behaviorEvalSamples)
      const scores = yield* Effect.forEach(
        rows,
        (r) =>
          judge
            .verdict(
              rubrics["response-quality"],
              judgeTraceOf(r),
              config.behaviorEvalModel,
              "behavior:response-quality:eval"
            )
            .pipe(
              Effect.map((v) => (v.status === "scored" ? v.score : null)),
              Effect.catchTag("LlmError", () => Effect.succeed(null))
            ),
        { concurrency: "unbounded" }
      )
      yield* runner.ensureRunning
      const ok = scores.filter((s): s is number => s !== null)
      return ok.length === 0 ? null : ok.reduce((a, b) => a + b, 0) / ok.length
    })

    /** With AUTOTUNE_BEHAVIOR_PROMPT_PACKS=1: the style and tool changes as canary packs, never over a running canary. */
    const proposePacks = (changes: ReadonlyArray<Change>) =>
      Effect.gen(function* () {
        const proposals: Record<string, string> = {}
        for (const [behavior, hint] of Object.entries(packHints(changes)) as Array<[Behavior, string]>) {
          const canary = yield* readPack(canaryPath(config.outputDir, behavior), behavior)
          if (canary._tag !== "Missing") {
            proposals[behavior] = "skipped: a canary is already out"
            continue
          }
          const active = yield* readPack(activePath(config.outputDir, behavior), behavior)
          const base = active._tag === "Valid" ? active.pack.instructions : DEFAULT_INSTRUCTIONS[behavior]
          // Under AUTOTUNE_DEPLOY_APPROVAL=manual a pack waits for a person like the optimizer's (pipeline/Approval.ts).
          if (config.deployApproval === "manual") {
            proposals[behavior] = yield* awaitApproval(behavior, `${base}\n\n${hint}`, base, {
              source: "behavior-tuner",
              changes
            })
            continue
          }
          const result = yield* deployer
            .deploy(
              behavior,
              { instructions: `${base}\n\n${hint}`, lineage: { source: "behavior-tuner", changes } },
              { instructions: base },
              undefined,
              fromPercent(config.behaviorCanaryPercent)
            )
            .pipe(
              Effect.map((r) => `${r.version} out as ${r.as}`),
              Effect.catchTag("DeployRejected", (e) => Effect.succeed(`skipped: ${e.detail}`))
            )
          proposals[behavior] = result
        }
        return proposals
      })

    /** A behavior pack recorded as selected, as the optimizer's are: `autotune approve` ships it at its share. */
    const awaitApproval = (
      behavior: Behavior,
      instructions: string,
      baselineInstructions: string,
      lineage: Record<string, unknown>
    ) =>
      Effect.gen(function* () {
        const version = newVersion()
        const body = { instructions, lineage, baselineInstructions, canaryPercent: config.behaviorCanaryPercent }
        yield* recordSelection(sql, { version, behavior, body, lineage })
        return `${version} waits for \`autotune approve ${behavior}\``
      })

    const tune = Effect.fn("BehaviorTuner.tune")(function* () {
      const m = yield* metrics
      const before = yield* readBehaviorFile(config.behaviorConfigPath)
      if (m.traces < config.behaviorMinTraces || m.traces === 0) {
        return {
          changed: false,
          why: `${m.traces} trace(s) in the last ${config.behaviorDays} day(s); needs at least ${Math.max(1, config.behaviorMinTraces)} (AUTOTUNE_BEHAVIOR_MIN_TRACES): nothing changed`,
          metrics: m
        }
      }
      const metricsAll: Metrics = { ...m, evalScore: yield* evalScore }
      const changes = deriveChanges(metricsAll, before)
      const after = { ...before }
      for (const c of changes) (after as Record<string, unknown>)[c.knob] = c.to
      const now = new Date(yield* Clock.currentTimeMillis).toISOString()
      if (changes.length > 0) {
        const file: BehaviorConfig = {
          ...after,
          last_updated: now,
          notes: `autotune: ${changes.map((c) => `${c.knob} ${c.from} -> ${c.to}`).join("; ")}`
        }
        yield* writeFileAtomic(config.behaviorConfigPath, JSON.stringify(file, null, 2) + "\n", MODES.shared)
      }
      const packs = config.behaviorPromptPacks && changes.length > 0 ? yield* proposePacks(changes) : {}
      const humanAgreement = yield* alignment.humanAgreement()
      const report = {
        date: now.slice(0, 10),
        generatedAt: now,
        windowDays: config.behaviorDays,
        metrics: metricsAll,
        before,
        after,
        changes,
        packs,
        humanAgreement
      }
      const reportFile = path.join(config.behaviorReportDir, `behavior-${report.date}.json`)
      yield* writeFileAtomic(reportFile, JSON.stringify(report, null, 2) + "\n", MODES.private)
      return {
        changed: changes.length > 0,
        why: changes.length > 0 ? `${changes.length} change(s)` : "metrics within bounds: nothing changed",
        metrics: metricsAll,
        changes,
        packs,
        report: reportFile
      }
    })

    return { tune } as const
  })
}) {}

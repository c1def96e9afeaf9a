/**
 * The one settings table: every setting's schema, environment variables, place in the JSON file, flag, default
 * and meaning. Resolution (Config.ts), the CLI's flags and docs/configuration.md are all made from it.
 */
import { Schema } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { Behavior, BEHAVIORS } from "../Domain/Behavior.js"
import { LEGACY_HOME } from "./DotClaw.js"
import { priceEntries } from "./Prices.js"

// ---------------------------------------------------------------------------
// The resolved configuration. Each field is validated by its schema whatever
// source it came from; the env names and defaults are a contract with the
// users of the original autotune (see README).
// ---------------------------------------------------------------------------

const between = (lo: number, hi: number) =>
  Schema.Number.pipe(Schema.filter((n) => n >= lo && n <= hi, { message: () => `must be between ${lo} and ${hi}` }))
const positive = Schema.Number.pipe(Schema.filter((n) => n > 0, { message: () => "must be greater than 0" }))
/**
 * The longest trace line parsed. 16 MiB takes a turn with a pasted photo of several megabytes (its base64 run
 * is cut by the redactor) at about the memory of bench:ingest; a line of 150 MB would need over a gigabyte.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 2 ** 20

const intAtLeast = (lo: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isInteger(n) && n >= lo, { message: () => `must be a whole number >= ${lo}` })
  )
const nonEmpty = Schema.String.pipe(Schema.filter((s) => s.trim().length > 0, { message: () => "must not be empty" }))
const url = Schema.String.pipe(
  Schema.filter((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), {
    message: () => "must be an http(s) URL"
  })
)
// Secrets are Redacted from the moment they are read to the call that needs them: a log line, an error, JSON or
// String() shows "<redacted>"; only Redacted.value at the SDK call, the connection and the config file reads them.
const databaseUrl = Schema.Redacted(
  Schema.String.pipe(
    Schema.filter((s) => s === "" || (URL.canParse(s) && /^postgres(?:ql)?:$/.test(new URL(s).protocol)), {
      message: () => "must be empty (the SQLite store) or a postgres:// URL"
    })
  )
)
const hostId = Schema.String.pipe(
  Schema.filter((s) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(s), {
    message: () => "must be 1-63 letters, digits, '.', '_' or '-'"
  })
)
const behaviorList = Schema.Array(Behavior).pipe(
  Schema.filter((list) => list.length > 0, { message: () => "must name at least one behavior" })
)

const PROVIDERS = ["auto", "anthropic", "openrouter", "openai-compatible"] as const
export type Provider = (typeof PROVIDERS)[number]
export const Provider = Schema.String.pipe(
  Schema.filter((s): s is Provider => (PROVIDERS as ReadonlyArray<string>).includes(s), {
    message: () => `must be one of ${PROVIDERS.join(", ")}`
  })
)

const APPROVALS = ["auto", "manual"] as const
export type Approval = (typeof APPROVALS)[number]
const Approval = Schema.String.pipe(
  Schema.filter((s): s is Approval => (APPROVALS as ReadonlyArray<string>).includes(s), {
    message: () => `must be one of ${APPROVALS.join(", ")}`
  })
)

const BATCH_MODES = ["off", "trend"] as const
export type BatchMode = (typeof BATCH_MODES)[number]
const BatchMode = Schema.String.pipe(
  Schema.filter((s): s is BatchMode => (BATCH_MODES as ReadonlyArray<string>).includes(s), {
    message: () => `must be one of ${BATCH_MODES.join(", ")}`
  })
)

export const AppConfig = Schema.Struct({
  home: nonEmpty,
  traceDir: nonEmpty,
  outputDir: nonEmpty,
  dbPath: nonEmpty,
  databaseUrl,
  hostId,
  behaviors: behaviorList,
  intervalMinutes: positive,
  metricsPort: intAtLeast(0).pipe(
    Schema.filter((n) => n <= 65535, { message: () => "must be a TCP port (1-65535), or 0 for off" })
  ),
  metricsHost: nonEmpty,
  rubricsPath: Schema.String,
  redact: Schema.Boolean,
  evalMaxTraces: intAtLeast(1),
  retentionDays: intAtLeast(0),
  maxLineBytes: intAtLeast(4096),
  report: Schema.Boolean,
  reportPath: nonEmpty,
  reportDays: intAtLeast(1),

  canaryFraction: Schema.Number.pipe(
    Schema.filter((n) => n > 0 && n <= 1, { message: () => "must be greater than 0 and at most 1" })
  ),
  canarySteps: Schema.Array(Schema.Number).pipe(
    Schema.filter((steps) => steps.every((n) => n > 0 && n < 1), {
      message: () => "every step must be a share greater than 0 and below 1"
    }),
    Schema.filter((steps) => steps.every((n, i) => i === 0 || n > steps[i - 1]!), {
      message: () => "steps must rise, e.g. 0.1,0.25,0.5"
    })
  ),
  canaryStepMinTurns: intAtLeast(1),
  canaryMinSamples: intAtLeast(1),
  canaryMinImprovement: between(0, 0.5),
  canaryHealthWindowHours: positive,
  canaryMaxErrorRate: between(0, 1),
  canaryMaxToolFailureRate: between(0, 1),
  canaryMaxErrorRateDelta: between(0, 1),
  canaryMaxToolFailureRateDelta: between(0, 1),
  canaryMaxNegativeRateDelta: between(0, 1),
  canaryMaxSamples: intAtLeast(1),
  canaryMaxDays: positive,
  deployApproval: Approval,

  candidateModel: nonEmpty,
  rerankModel: nonEmpty,
  predictorModel: nonEmpty,
  judgeStage1Model: nonEmpty,
  judgeStage2Model: nonEmpty,
  judgeTemperature: between(0, 2),
  judgeMaxOutputTokens: intAtLeast(64),
  judgeUnsureLow: between(0, 1),
  judgeUnsureHigh: between(0, 1),
  judgeAuditShare: between(0, 1),
  judgeDailySample: intAtLeast(0),
  judgeCanaryPairs: intAtLeast(0),
  judgeBatch: BatchMode,
  judgeCombined: Schema.Boolean,
  judgeBatchPollSeconds: positive,
  judgeBatchWait: Schema.Boolean,

  minImprovement: between(0, 1),
  maxFailuresSample: intAtLeast(1),
  maxCandidates: intAtLeast(1),
  sampleSize: intAtLeast(2),
  optimizeRounds: intAtLeast(1),
  optimizeMaxCalls: intAtLeast(1),

  align: Schema.Boolean,
  alignMaxCalls: intAtLeast(10),
  alignMinTurns: intAtLeast(10),
  alignAuc: between(0.5, 1),
  alignSpearman: between(0, 1),

  behaviorEnabled: Schema.Boolean,
  behaviorDays: positive,
  behaviorMinTraces: intAtLeast(0),
  behaviorMaxTraces: intAtLeast(0),
  behaviorEvalModel: Schema.String,
  behaviorEvalSamples: intAtLeast(0),
  behaviorPromptPacks: Schema.Boolean,
  behaviorCanaryPercent: between(0, 100),
  behaviorConfigPath: nonEmpty,
  behaviorReportDir: nonEmpty,
  packMaxChars: intAtLeast(200),
  feedbackDbPath: nonEmpty,

  provider: Provider,
  anthropicApiKey: Schema.Redacted(Schema.String),
  anthropicBaseUrl: url,
  openrouterApiKey: Schema.Redacted(Schema.String),
  openrouterBaseUrl: url,
  llmTimeoutMs: intAtLeast(1000),
  llmRetries: intAtLeast(0),
  llmMinRetryDelayMs: intAtLeast(0),
  llmMaxRetryDelayMs: intAtLeast(0),
  llmConcurrency: intAtLeast(1),
  llmBreakerThreshold: intAtLeast(1),
  maxCostUsd: Schema.Number.pipe(Schema.filter((n) => n >= 0, { message: () => "must be 0 (no limit) or more" })),
  dailyBudgetUsd: Schema.Number.pipe(Schema.filter((n) => n >= 0, { message: () => "must be 0 (no limit) or more" })),
  prices: Schema.Union(Schema.String, Schema.Record({ key: Schema.String, value: Schema.Unknown })).pipe(
    Schema.filter((value) => {
      try {
        priceEntries(value)
        return true
      } catch (error) {
        return (error as Error).message
      }
    })
  )
})
export type AppConfig = typeof AppConfig.Type
export type ConfigKey = keyof AppConfig

export type Kind = "string" | "path" | "number" | "integer" | "numbers" | "boolean" | "list" | "prices"

export interface Setting {
  readonly kind: Kind
  /** Environment variables, first one set wins. */
  readonly env: ReadonlyArray<string>
  /** Location in the JSON file the original `autotune init` wrote. */
  readonly file?: ReadonlyArray<string>
  readonly flag?: string
  readonly secret?: boolean
  readonly default: (home: string) => unknown
  readonly doc: string
  /** The default as a person reads it, where the value alone would mislead (it depends on the machine). */
  readonly shownDefault?: string
  /** Where the value comes from when a current DotClaw install is found (config/DotClaw.ts). */
  readonly dotclaw?: string
}

/** This machine's short hostname, the host id when AUTOTUNE_HOST_ID is unset. */
export const defaultHostId = () =>
  os
    .hostname()
    .split(".")[0]!
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 63) || "host"

const inHome =
  (...segments: Array<string>) =>
  (home: string) =>
    path.join(home, ...segments)
const constant = (value: unknown) => () => value

export const SETTINGS: { readonly [K in ConfigKey]: Setting } = {
  home: {
    kind: "path",
    env: ["AUTOTUNE_HOME"],
    flag: "home",
    // Replaced by discovery in resolveConfig: the DotClaw home found, else the 1.1 layout.
    default: () => LEGACY_HOME(),
    shownDefault: "DotClaw's home when found (`DOTCLAW_HOME`, `~/.dotclaw`), else `~/.config/dotclaw`",
    doc: "Root for autotune's config file and store, and the 1.1 layout's trace, prompt, report and behavior paths (default: DotClaw's home when found, else ~/.config/dotclaw)"
  },
  traceDir: {
    kind: "path",
    env: ["AUTOTUNE_TRACE_DIR"],
    file: ["traceDir"],
    flag: "trace-dir",
    default: inHome("traces"),
    dotclaw: "`host.trace.dir` in runtime.json, else `$DOTCLAW_HOME/traces`",
    doc: "Where DotClaw writes trace-YYYY-MM-DD.jsonl"
  },
  outputDir: {
    kind: "path",
    env: ["AUTOTUNE_OUTPUT_DIR"],
    file: ["deploy", "outputDir"],
    flag: "output-dir",
    default: inHome("prompts"),
    dotclaw: "`host.promptPacksDir` in runtime.json, else `$DOTCLAW_HOME/prompts`",
    doc: "Shared prompts dir DotClaw reads packs from"
  },
  dbPath: {
    kind: "path",
    env: ["AUTOTUNE_DB_PATH"],
    file: ["dbPath"],
    flag: "db-path",
    default: inHome("autotune.db"),
    doc: "SQLite store"
  },
  databaseUrl: {
    kind: "string",
    env: ["AUTOTUNE_DATABASE_URL"],
    file: ["databaseUrl"],
    secret: true,
    default: constant(""),
    doc: "PostgreSQL store shared by several DotClaw hosts (postgres://user:password@host:5432/db); empty: the SQLite store at AUTOTUNE_DB_PATH"
  },
  hostId: {
    kind: "string",
    env: ["AUTOTUNE_HOST_ID"],
    file: ["hostId"],
    default: () => defaultHostId(),
    shownDefault: "the short hostname",
    doc: "This host's name in a shared store: its trace files' read positions are its own (default: the hostname)"
  },
  behaviors: {
    kind: "list",
    env: ["AUTOTUNE_BEHAVIORS"],
    file: ["behaviors"],
    flag: "behaviors",
    default: constant([...BEHAVIORS]),
    doc: "Behaviors to evaluate and tune (comma-separated)"
  },
  intervalMinutes: {
    kind: "number",
    env: ["AUTOTUNE_INTERVAL_MINUTES"],
    file: ["intervalMinutes"],
    default: constant(60),
    doc: "Daemon cycle interval"
  },
  metricsPort: {
    kind: "integer",
    env: ["AUTOTUNE_METRICS_PORT"],
    file: ["metrics", "port"],
    flag: "metrics-port",
    default: constant(0),
    shownDefault: "`0` (off)",
    doc: "The daemon serves Prometheus metrics on /metrics and its health on /livez and /healthz at this port (0 = off). See docs/observability.md"
  },
  metricsHost: {
    kind: "string",
    env: ["AUTOTUNE_METRICS_HOST"],
    file: ["metrics", "host"],
    default: constant("127.0.0.1"),
    doc: "The address the metrics port binds (0.0.0.0 to let another machine's Prometheus scrape it)"
  },
  rubricsPath: {
    kind: "string",
    env: ["AUTOTUNE_RUBRICS_PATH"],
    file: ["judge", "rubricsPath"],
    default: constant(""),
    shownDefault: "empty (the built-in rubrics)",
    doc: 'A JSON file of your own rubrics: {"<behavior>": {"criteria": "..."}}; each becomes a rubric version of its own. See docs/decisions.md'
  },
  redact: {
    kind: "boolean",
    env: ["AUTOTUNE_REDACT"],
    file: ["redact"],
    default: constant(true),
    doc: "Redact secrets and personal data before storing or sending"
  },
  evalMaxTraces: {
    kind: "integer",
    env: ["AUTOTUNE_EVAL_MAX_TRACES"],
    file: ["evalMaxTraces"],
    flag: "eval-max-traces",
    default: constant(200),
    doc: "Traces judged per behavior per run"
  },
  report: {
    kind: "boolean",
    env: ["AUTOTUNE_REPORT"],
    file: ["report", "enabled"],
    default: constant(true),
    doc: "Refresh the HTML report at the end of every `once` and daemon cycle"
  },
  reportPath: {
    kind: "path",
    env: ["AUTOTUNE_REPORT_PATH"],
    file: ["report", "path"],
    default: inHome("report.html"),
    doc: "Where `report` and `once` write the HTML report"
  },
  reportDays: {
    kind: "integer",
    env: ["AUTOTUNE_REPORT_DAYS"],
    file: ["report", "days"],
    default: constant(30),
    doc: "Days the HTML report covers"
  },
  maxLineBytes: {
    kind: "integer",
    env: ["AUTOTUNE_MAX_LINE_BYTES"],
    file: ["ingest", "maxLineBytes"],
    default: constant(DEFAULT_MAX_LINE_BYTES),
    doc: 'Longest trace line parsed, in bytes; a longer one is counted malformed ("line too long") as it streams past, never held whole'
  },
  retentionDays: {
    kind: "integer",
    env: ["AUTOTUNE_RETENTION_DAYS"],
    file: ["retentionDays"],
    default: constant(14),
    doc: "Days of traces kept in the store, as DotClaw keeps its raw traces (0 = forever); a live canary's turns are always kept"
  },

  canaryFraction: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_FRACTION"],
    file: ["deploy", "canaryFraction"],
    default: constant(0.1),
    dotclaw: "`agent.promptPacks.canaryRate` in runtime.json",
    doc: "Share of requests a canary pack serves (1 = deploy as active)"
  },
  canarySteps: {
    kind: "numbers",
    env: ["AUTOTUNE_CANARY_STEPS"],
    file: ["deploy", "canarySteps"],
    default: constant([0.1, 0.5]),
    shownDefault: "`0.1,0.5`; none when AUTOTUNE_CANARY_FRACTION is set and this is not (a fixed share, as in 1.1)",
    doc: "Shares a canary steps up through as its health gates pass, from AUTOTUNE_CANARY_FRACTION up (comma-separated; one value or none = a fixed share). See docs/decisions.md"
  },
  canaryStepMinTurns: {
    kind: "integer",
    env: ["AUTOTUNE_CANARY_STEP_MIN_TURNS"],
    file: ["deploy", "canaryStepMinTurns"],
    default: constant(3),
    doc: "Canary turns the health gates must see at a share before the canary steps up to the next"
  },
  canaryMinSamples: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MIN_SAMPLES"],
    file: ["deploy", "canaryMinSamples"],
    default: constant(20),
    doc: "Canary samples before any decision"
  },
  canaryMinImprovement: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MIN_IMPROVEMENT"],
    file: ["deploy", "canaryMinImprovement"],
    default: constant(0.02),
    doc: "Margin the canary must beat the active pack by"
  },
  canaryHealthWindowHours: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_HEALTH_WINDOW_HOURS"],
    file: ["deploy", "canaryHealthWindowHours"],
    default: constant(24),
    doc: "Window for the health gates"
  },
  canaryMaxErrorRate: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_ERROR_RATE"],
    file: ["deploy", "canaryMaxErrorRate"],
    default: constant(0.12),
    doc: "Error-rate ceiling for a canary"
  },
  canaryMaxToolFailureRate: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE"],
    file: ["deploy", "canaryMaxToolFailureRate"],
    default: constant(0.25),
    doc: "Tool-failure ceiling for a canary"
  },
  canaryMaxErrorRateDelta: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_ERROR_RATE_DELTA"],
    file: ["deploy", "canaryMaxErrorRateDelta"],
    default: constant(0.05),
    doc: "Allowed error-rate excess over the active pack"
  },
  canaryMaxToolFailureRateDelta: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE_DELTA"],
    file: ["deploy", "canaryMaxToolFailureRateDelta"],
    default: constant(0.12),
    doc: "Allowed tool-failure excess over the active pack"
  },
  canaryMaxNegativeRateDelta: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_NEGATIVE_RATE_DELTA"],
    file: ["deploy", "canaryMaxNegativeRateDelta"],
    default: constant(0.1),
    doc: "Allowed excess of users' 👎 share on the canary over the active pack (a health gate)"
  },
  canaryMaxSamples: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_SAMPLES"],
    file: ["deploy", "canaryMaxSamples"],
    default: constant(1000),
    doc: "Canary samples after which an undecided canary expires"
  },
  canaryMaxDays: {
    kind: "number",
    env: ["AUTOTUNE_CANARY_MAX_DAYS"],
    file: ["deploy", "canaryMaxDays"],
    default: constant(14),
    doc: "Days after which an undecided canary expires"
  },
  deployApproval: {
    kind: "string",
    env: ["AUTOTUNE_DEPLOY_APPROVAL"],
    file: ["deploy", "approval"],
    default: constant("auto"),
    doc: "auto: deploy ships what optimize selected as a canary; manual: it waits for `autotune approve <behavior>` or `autotune reject <behavior>`"
  },

  candidateModel: {
    kind: "string",
    env: ["AUTOTUNE_CANDIDATE_MODEL"],
    file: ["optimize", "candidateModel"],
    default: constant("anthropic/claude-haiku-4-5"),
    doc: "Proposes candidate instructions"
  },
  rerankModel: {
    kind: "string",
    env: ["AUTOTUNE_RERANK_MODEL"],
    file: ["optimize", "rerankModel"],
    default: constant("anthropic/claude-sonnet-5-5"),
    doc: "Re-ranks the best candidates"
  },
  predictorModel: {
    kind: "string",
    env: ["AUTOTUNE_PREDICTOR_MODEL"],
    file: ["optimize", "predictorModel"],
    default: constant("anthropic/claude-haiku-4-5"),
    doc: "Replays traces under a candidate"
  },
  judgeStage1Model: {
    kind: "string",
    env: ["AUTOTUNE_JUDGE_STAGE1_MODEL"],
    file: ["judge", "stage1Model"],
    default: constant("anthropic/claude-haiku-4-5"),
    doc: "Scores every trace"
  },
  judgeStage2Model: {
    kind: "string",
    env: ["AUTOTUNE_JUDGE_STAGE2_MODEL"],
    file: ["judge", "stage2Model"],
    default: constant("anthropic/claude-sonnet-5-5"),
    doc: "Re-judges unsure and audited traces"
  },
  judgeTemperature: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_TEMPERATURE"],
    file: ["judge", "temperature"],
    default: constant(0),
    doc: "Judge sampling temperature"
  },
  judgeMaxOutputTokens: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_MAX_OUTPUT_TOKENS"],
    file: ["judge", "maxOutputTokens"],
    default: constant(512),
    doc: "Judge answer token cap"
  },
  judgeUnsureLow: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_UNSURE_LOW"],
    file: ["judge", "unsureLow"],
    default: constant(0.35),
    doc: "Stage-1 scores in [low, high] go to stage 2"
  },
  judgeUnsureHigh: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_UNSURE_HIGH"],
    file: ["judge", "unsureHigh"],
    default: constant(0.65),
    doc: "Upper end of the unsure band"
  },
  judgeDailySample: {
    kind: "integer",
    env: ["AUTOTUNE_JUDGE_DAILY_SAMPLE"],
    file: ["judge", "dailySample"],
    default: constant(40),
    doc: "Turns per behavior per day the judge scores for the trend and the optimizer, a random sample spread over the day (0 = every turn)"
  },
  judgeCanaryPairs: {
    kind: "integer",
    env: ["AUTOTUNE_JUDGE_CANARY_PAIRS"],
    file: ["judge", "canaryPairs"],
    default: constant(6),
    doc: "Active-pack turns judged per canary turn while a canary runs, for the canary's paired test (0 = every active turn)"
  },
  judgeBatch: {
    kind: "string",
    env: ["AUTOTUNE_JUDGE_BATCH"],
    file: ["judge", "batch"],
    default: constant("trend"),
    doc: "trend: the trend sample goes through Anthropic's Message Batches (half price, scores arrive by a later run); off: every turn judged at once. Canary turns and their pairs are never batched"
  },
  judgeBatchPollSeconds: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_BATCH_POLL_SECONDS"],
    file: ["judge", "batchPollSeconds"],
    default: constant(30),
    doc: "How often --wait-batches asks whether a judge batch has ended"
  },
  judgeBatchWait: {
    kind: "boolean",
    env: ["AUTOTUNE_JUDGE_BATCH_WAIT"],
    file: ["judge", "batchWait"],
    flag: "wait-batches",
    default: constant(false),
    doc: "eval and once wait for pending judge batches to end and collect them (else a later run does)"
  },
  judgeCombined: {
    kind: "boolean",
    env: ["AUTOTUNE_JUDGE_COMBINED"],
    file: ["judge", "combined"],
    default: constant(false),
    doc: "Score every selected behavior of a turn in one stage-1 request (each rubric fenced and scored on its own)"
  },
  judgeAuditShare: {
    kind: "number",
    env: ["AUTOTUNE_JUDGE_AUDIT_SHARE"],
    file: ["judge", "auditShare"],
    default: constant(0.05),
    doc: "Random share of confident traces also re-judged by stage 2"
  },

  minImprovement: {
    kind: "number",
    env: ["AUTOTUNE_MIN_IMPROVEMENT"],
    file: ["optimize", "minImprovement"],
    default: constant(0.05),
    doc: "Gain over the baseline a candidate needs in validation"
  },
  maxFailuresSample: {
    kind: "number",
    env: ["AUTOTUNE_MAX_FAILURES_SAMPLE"],
    file: ["optimize", "maxFailuresSample"],
    default: constant(50),
    doc: "Low-scoring traces shown to the candidate model"
  },
  maxCandidates: {
    kind: "number",
    env: ["AUTOTUNE_MAX_CANDIDATES"],
    file: ["optimize", "maxCandidates"],
    default: constant(6),
    doc: "Candidates proposed per behavior in each optimizer round"
  },
  sampleSize: {
    kind: "number",
    env: ["AUTOTUNE_SAMPLE_SIZE"],
    file: ["optimize", "sampleSize"],
    default: constant(20),
    doc: "Held-out validation traces per behavior"
  },
  optimizeRounds: {
    kind: "number",
    env: ["AUTOTUNE_OPTIMIZE_ROUNDS"],
    file: ["optimize", "rounds"],
    default: constant(4),
    doc: "Reflective rounds per behavior and run: each improves a parent from the Pareto front; a round without gain ends the run"
  },
  optimizeMaxCalls: {
    kind: "number",
    env: ["AUTOTUNE_OPTIMIZE_MAX_CALLS"],
    file: ["optimize", "maxCalls"],
    default: constant(1200),
    doc: "Most LLM calls one optimizer run may make per behavior, final held-out check and re-rank included"
  },

  align: {
    kind: "boolean",
    env: ["AUTOTUNE_ALIGN"],
    file: ["align", "enabled"],
    default: constant(true),
    doc: "Inside `once`, amend a rubric the people disagree with, adopted only on held-out evidence (docs/alignment.md)"
  },
  alignMaxCalls: {
    kind: "number",
    env: ["AUTOTUNE_ALIGN_MAX_CALLS"],
    file: ["align", "maxCalls"],
    default: constant(200),
    doc: "Most LLM calls one alignment attempt may make per behavior (proposal, re-judging both splits)"
  },
  alignMinTurns: {
    kind: "number",
    env: ["AUTOTUNE_ALIGN_MIN_TURNS"],
    file: ["align", "minTurns"],
    default: constant(30),
    doc: "Reacted or graded turns, of both signs, the alignment split needs before alignment is tried (the held-out split at least half as many)"
  },
  alignAuc: {
    kind: "number",
    env: ["AUTOTUNE_ALIGN_AUC"],
    file: ["align", "auc"],
    default: constant(0.75),
    doc: "Alignment is tried when the judge's AUC against users' reactions is below this"
  },
  alignSpearman: {
    kind: "number",
    env: ["AUTOTUNE_ALIGN_SPEARMAN"],
    file: ["align", "spearman"],
    default: constant(0.5),
    doc: "... or, where there are no reactions to go by, its Spearman correlation with your grades"
  },

  behaviorEnabled: {
    kind: "boolean",
    env: ["AUTOTUNE_BEHAVIOR_ENABLED"],
    file: ["behavior", "enabled"],
    default: constant(false),
    doc: "Run behavior tuning inside `once`"
  },
  behaviorDays: {
    kind: "number",
    env: ["AUTOTUNE_BEHAVIOR_DAYS"],
    file: ["behavior", "windowDays"],
    default: constant(7),
    doc: "Metrics window"
  },
  behaviorMinTraces: {
    kind: "number",
    env: ["AUTOTUNE_BEHAVIOR_MIN_TRACES"],
    file: ["behavior", "minTraces"],
    default: constant(0),
    doc: "Below this many traces nothing changes"
  },
  behaviorMaxTraces: {
    kind: "number",
    env: ["AUTOTUNE_BEHAVIOR_MAX_TRACES"],
    file: ["behavior", "maxTraces"],
    default: constant(0),
    doc: "Cap on traces (0 = no limit)"
  },
  behaviorEvalModel: {
    kind: "string",
    env: ["AUTOTUNE_BEHAVIOR_EVAL_MODEL"],
    file: ["behavior", "evalModel"],
    default: constant(""),
    doc: "Model for the behavior eval score (empty = none)"
  },
  behaviorEvalSamples: {
    kind: "number",
    env: ["AUTOTUNE_BEHAVIOR_EVAL_SAMPLES"],
    file: ["behavior", "evalSamples"],
    default: constant(6),
    doc: "Traces scored by the behavior eval model"
  },
  behaviorPromptPacks: {
    kind: "boolean",
    env: ["AUTOTUNE_BEHAVIOR_PROMPT_PACKS"],
    file: ["behavior", "promptPacks"],
    default: constant(false),
    doc: "Also propose response/tool packs as canaries"
  },
  behaviorCanaryPercent: {
    kind: "number",
    env: ["AUTOTUNE_BEHAVIOR_CANARY_PERCENT"],
    file: ["behavior", "canaryPercent"],
    default: constant(20),
    doc: "Canary share for behavior packs, in percent"
  },
  behaviorConfigPath: {
    kind: "path",
    env: ["AUTOTUNE_BEHAVIOR_CONFIG_PATH"],
    file: ["behavior", "configPath"],
    default: inHome("behavior.json"),
    dotclaw: "`$DOTCLAW_HOME/config/behavior.json`",
    doc: "behavior.json DotClaw reads"
  },
  behaviorReportDir: {
    kind: "path",
    env: ["AUTOTUNE_BEHAVIOR_REPORT_DIR"],
    file: ["behavior", "reportDir"],
    default: inHome("reports"),
    dotclaw: "`$DOTCLAW_HOME/data`",
    doc: "Daily reports"
  },
  packMaxChars: {
    kind: "integer",
    env: ["AUTOTUNE_PACK_MAX_CHARS"],
    file: ["deploy", "maxChars"],
    default: constant(6000),
    dotclaw: "`agent.promptPacks.maxChars` in runtime.json",
    doc: "Longest instructions DotClaw renders (its agent.promptPacks.maxChars); longer candidates are dropped"
  },
  feedbackDbPath: {
    kind: "path",
    env: ["AUTOTUNE_FEEDBACK_DB"],
    file: ["feedback", "dbPath"],
    default: inHome("data", "store", "messages.db"),
    dotclaw: "`$DOTCLAW_HOME/data/store/messages.db`",
    doc: "DotClaw's messages.db, read-only, for users' 👍/👎 reactions"
  },

  provider: {
    kind: "string",
    env: ["AUTOTUNE_PROVIDER"],
    file: ["llm", "provider"],
    flag: "provider",
    default: constant("auto"),
    doc: "anthropic | openrouter | openai-compatible | auto (by which key is set)"
  },
  anthropicApiKey: {
    kind: "string",
    env: ["ANTHROPIC_API_KEY"],
    file: ["anthropic", "apiKey"],
    secret: true,
    default: constant(""),
    doc: "Anthropic API key"
  },
  anthropicBaseUrl: {
    kind: "string",
    env: ["ANTHROPIC_BASE_URL"],
    file: ["anthropic", "baseUrl"],
    default: constant("https://api.anthropic.com"),
    doc: "Anthropic API base URL"
  },
  openrouterApiKey: {
    kind: "string",
    env: ["OPENROUTER_API_KEY", "AUTOTUNE_OPENROUTER_API_KEY"],
    file: ["openrouter", "apiKey"],
    secret: true,
    default: constant(""),
    doc: "OpenRouter (or compatible server) API key"
  },
  openrouterBaseUrl: {
    kind: "string",
    env: ["OPENROUTER_BASE_URL"],
    file: ["openrouter", "baseUrl"],
    default: constant("https://openrouter.ai/api/v1"),
    doc: "OpenRouter or any chat-completions server (Ollama, vLLM, LM Studio)"
  },
  llmTimeoutMs: {
    kind: "number",
    env: ["AUTOTUNE_OPENROUTER_TIMEOUT_MS"],
    file: ["openrouter", "timeoutMs"],
    default: constant(120_000),
    doc: "Timeout per LLM call (every provider)"
  },
  llmRetries: {
    kind: "number",
    env: ["AUTOTUNE_OPENROUTER_RETRIES"],
    file: ["openrouter", "retries"],
    default: constant(3),
    doc: "Retries of a transient LLM failure (every provider)"
  },
  llmMinRetryDelayMs: {
    kind: "number",
    env: ["AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS"],
    file: ["openrouter", "minRetryDelayMs"],
    default: constant(500),
    doc: "First backoff delay"
  },
  llmMaxRetryDelayMs: {
    kind: "number",
    env: ["AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS"],
    file: ["openrouter", "maxRetryDelayMs"],
    default: constant(4000),
    doc: "Largest backoff delay (a longer retry-after is honoured)"
  },
  llmConcurrency: {
    kind: "integer",
    env: ["AUTOTUNE_LLM_CONCURRENCY"],
    file: ["llm", "concurrency"],
    flag: "concurrency",
    default: constant(8),
    doc: "LLM calls in flight at once, shared by every stage"
  },
  llmBreakerThreshold: {
    kind: "number",
    env: ["AUTOTUNE_LLM_BREAKER_THRESHOLD"],
    file: ["llm", "breakerThreshold"],
    default: constant(8),
    doc: "Failed attempts in a row (5xx, 529, timeouts, garbage bodies) after which the run's LLM stages stop"
  },
  maxCostUsd: {
    kind: "number",
    env: ["AUTOTUNE_MAX_COST_USD"],
    file: ["llm", "maxCostUsd"],
    flag: "max-cost-usd",
    default: constant(0),
    doc: "Spend cap per run in USD (0 = none)"
  },
  dailyBudgetUsd: {
    kind: "number",
    env: ["AUTOTUNE_DAILY_BUDGET_USD"],
    file: ["llm", "dailyBudgetUsd"],
    flag: "daily-budget-usd",
    default: constant(5),
    doc: "Spend cap over any 24 hours in USD, shared by every stage (0 = none)"
  },
  prices: {
    kind: "prices",
    env: ["AUTOTUNE_PRICES"],
    file: ["llm", "prices"],
    default: constant(""),
    doc: 'Price overrides, USD per million tokens: model=in:out,... or JSON {"model": [in, out]}'
  }
}

export const CONFIG_KEYS = Object.keys(SETTINGS) as ReadonlyArray<ConfigKey>

/** Flag names that every command accepts, derived from the table. */
export const CONFIG_FLAGS: ReadonlyArray<{
  readonly key: ConfigKey
  readonly flag: string
  readonly doc: string
  readonly kind: Kind
}> = CONFIG_KEYS.flatMap((key) => {
  const flag = SETTINGS[key].flag
  return flag === undefined ? [] : [{ key, flag, doc: SETTINGS[key].doc, kind: SETTINGS[key].kind }]
})

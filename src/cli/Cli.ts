import { Args, Command, Options, Prompt, ValidationError } from "@effect/cli"
import { Cause, Effect, Either, Option, Record, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { logConfigWarnings, makeAppLayer } from "../pipeline/App.js"
import { type ConfigInput, configFilePath, describeConfig, loadSettings, Settings, maskSecret, storeLocation, resolveConfig, toConfigFile } from "../config/Config.js"
import { type AppConfig, CONFIG_FLAGS } from "../config/Table.js"
import { type Behavior, BEHAVIORS } from "../Domain/Behavior.js"
import { ConfigError, FileError, LlmStopped, LlmUnavailable, StageFailed, StoreError } from "../Domain/Errors.js"
import { ensureDir, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { makeProgress } from "../pipeline/Progress.js"
import { printJson, printLine, shown, stdoutWritten, table, usd } from "./Output.js"
import type { Agreement, LabelAgreement } from "../judge/Agreement.js"
import type { FeedbackSummary } from "../ingest/Feedback.js"
import type { IngestSummary } from "../ingest/Ingest.js"
import type { EvalSummary } from "../judge/Work.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { formatEvidence } from "../canary/Stats.js"
import { Deployer } from "../canary/Deployer.js"
import { CanaryMonitor } from "../canary/Canary.js"
import type { Expected } from "../canary/Simulate.js"
import { Optimizer } from "../optimize/Optimize.js"
import { alignStage, asLeader, behaviorStage, FOLLOWER_WHY, deployStage, evalStage, faultsOf, ingestStage, type onceStages, optimizeStage } from "../pipeline/Pipeline.js"
import { type AlignPlan, Aligner } from "../align/Align.js"
import { onceLocked } from "../pipeline/Runner.js"
import { observedDaemon, withTracing } from "../observe/Observe.js"
import { VERSION } from "../Domain/Version.js"
import { exportTurns, importGrades, labelSession } from "./Label.js"
import { Alignment } from "../judge/Alignment.js"
import { Rubrics } from "../judge/RubricBook.js"
import { statusReport } from "../observe/Status.js"
import { packDiff, type PendingPack } from "../report/Packs.js"
import { type DiffPart, wordDiff } from "../report/Diff.js"
import { approve, reject } from "../pipeline/Approval.js"
import { writeReport } from "../report/Report.js"
import { rescan, type RescanSummary } from "../ingest/Rescan.js"
import { lockPath, withRunLock } from "../store/RunLock.js"
import { currentStoreId, forgetStore, rememberedSpend } from "../store/Identity.js"

// ---------------------------------------------------------------------------
// Options every command takes: --config, --json, and the config flags.
// ---------------------------------------------------------------------------

/** This build's version: the CLI's --version, /metrics' autotune_build_info and the traces' service.version. */

const configOption = Options.text("config").pipe(
  Options.withDescription("Config file (default: AUTOTUNE_CONFIG_PATH, else $AUTOTUNE_HOME/autotune.json)"),
  Options.optional
)
const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print exactly one JSON object on stdout"))
// Numeric flags are typed as numbers in --help and parsing; the value then goes through the same schema and
// range check as the environment, as text, so every source is validated alike.
const flagOption = (f: (typeof CONFIG_FLAGS)[number]): Options.Options<string> =>
  f.kind === "integer"
    ? Options.map(Options.integer(f.flag), String)
    : f.kind === "number"
      ? Options.map(Options.float(f.flag), String)
      : Options.text(f.flag)
// A boolean setting's flag is a switch: given, it sets the setting; absent, the other sources decide.
const configFlags = Options.all(
  Object.fromEntries(CONFIG_FLAGS.map((f) => [f.flag, f.kind === "boolean"
    ? Options.boolean(f.flag).pipe(Options.withDescription(f.doc), Options.map((on) => (on ? Option.some("1") : Option.none())))
    : flagOption(f).pipe(Options.withDescription(f.doc), Options.optional)])) as Record<
    string,
    Options.Options<Option.Option<string>>
  >
)
const common = { config: configOption, json: jsonOption, flags: configFlags }

interface Common {
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly flags: Record<string, Option.Option<string>>
}

const configInput = (opts: Common): ConfigInput => ({
  configPath: Option.getOrUndefined(opts.config),
  flags: Record.map(opts.flags, Option.getOrUndefined)
})

/** A store error names the database it is about, whichever service raised it. */
const withStorePath = (input: ConfigInput) => <E>(error: E): E => {
  if (!(error instanceof StoreError) || error.path !== undefined) return error
  const resolved = resolveConfig(input)
  if (Either.isLeft(resolved)) return error
  return new StoreError({ operation: error.operation, detail: error.detail, path: storeLocation(resolved.right.config), ...(error.saved !== undefined ? { saved: error.saved } : {}) }) as E
}

/** Runs a command body with the application's services for the given options. */
const withApp = <A, E, R>(opts: Common, body: Effect.Effect<A, E, R>) =>
  Effect.zipRight(logConfigWarnings, body).pipe(Effect.provide(makeAppLayer(configInput(opts))), Effect.mapError(withStorePath(configInput(opts))))

// ---------------------------------------------------------------------------
// ingest
// ---------------------------------------------------------------------------

export const ingestSummaryLine = (s: IngestSummary & { readonly feedback?: FeedbackSummary }) =>
  `ingest: ${s.files} file(s), ${s.lines} line(s) read, ${s.ingested} new trace(s), ${s.duplicates} duplicate(s), ` +
  `${s.malformed} malformed` +
  (s.malformed > 0 ? ` (${Object.entries(s.malformedReasons).map(([kind, n]) => `${kind}: ${n}`).join(", ")}; see the malformed_lines table)` : "") +
  (s.pendingPartial > 0 ? `, ${s.pendingPartial} unfinished last line(s) left for the next run` : "") +
  (s.restarted > 0 ? `, ${s.restarted} file(s) re-read after truncation` : "") +
  ` (${(s.elapsedMs / 1000).toFixed(1)} s)` +
  (s.feedback === undefined || s.feedback.source === null ? "" : `; reactions: ${s.feedback.imported} new from ${s.feedback.source}${s.feedback.waitingForTrace > 0 ? `, ${s.feedback.waitingForTrace} waiting for their trace` : ""}`)

const ingestCommand = Command.make("ingest", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* ingestStage
      yield* opts.json ? printJson(summary) : printLine(ingestSummaryLine(summary))
    })
  )
).pipe(Command.withDescription("Read new DotClaw trace lines into the store (incremental, redacted, crash-safe)"))

// ---------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------

const fmt = (x: number | null, digits = 3) => (x === null ? "-" : x.toFixed(digits))

export const evalSummaryText = (s: EvalSummary) =>
  table(
    ["BEHAVIOR", "SCORED", "UNSCORED", "FAILED", "MEAN", "CANARY/PAIRS/TREND", "TREND RATE", "STAGE-2", "CALLS", "TOKENS", "COST"],
    Object.entries(s.behaviors).map(([b, e]) => [
      b, String(e.scored), String(e.unscored), String(e.failed), fmt(e.mean), `${e.canaryTraces}/${e.pairTraces}/${e.trendTraces}`,
      `${(e.sampling.trendRate * 100).toFixed(1)}%`, `${(e.stage2Share * 100).toFixed(0)}%`, String(e.calls), String(e.tokensIn + e.tokensOut), usd(e.costUsd)
    ])
  ) + `\njudged: every canary turn, the active turns paired with them, and a daily sample for the trend (the trend rate of the turns); the rest stays unjudged` +
  (s.batches.startedDirect === 0 ? "" : `\nstarted: ${s.batches.startedDirect} trend turn(s) judged at once, at full price (${usd(s.batches.startedDirectCostUsd)}), so that the optimizer has the turns it needs this cycle`) +
  (s.batches.mode === "off" && s.batches.collected === 0 ? "" : `\nbatches: ${s.batches.submitted} trend turn(s) sent at half price, ${s.batches.collected} answer(s) collected, ${s.batches.pendingBatches} batch(es) still out` +
    (s.batches.pendingBatches === 0 ? "" : `; their scores arrive with the first cycle after the batch ends (most end within an hour, all within 24 hours; the daemon runs one every AUTOTUNE_INTERVAL_MINUTES), or now with \`autotune eval --wait-batches\``)) +
  `\neval: ${s.calls} call(s), ${usd(s.costUsd)}${s.budgetExhausted ? `; stopped early, a budget ran out (AUTOTUNE_DAILY_BUDGET_USD or AUTOTUNE_MAX_COST_USD): ${Object.values(s.skippedForBudget).reduce((a, b) => a + b, 0)} trace judgement(s) left for a later run` : ""}` +
  egressLine(s.egressRedactions)

/** Where the judge's batches stand: said when batching is on or a batch is still out. */
const batchesLine = (b: { readonly mode: string; readonly pending: number; readonly requests: number; readonly reservedUsd: number; readonly oldestSubmittedAt: string | null }) =>
  b.mode === "off" && b.pending === 0
    ? ""
    : `\njudge batches: ${b.pending === 0 ? "none pending" : `${b.pending} pending (${b.requests} request(s), up to ${usd(b.reservedUsd)} held against the budget, oldest sent ${b.oldestSubmittedAt})`}` +
      (b.mode === "off" ? " (AUTOTUNE_JUDGE_BATCH=off: collected, none sent)" : "; the trend sample goes through Message Batches at half price")

/** Said only when the guard found something: stored text that the current rules would have cleaned. */
export const egressLine = (n: number) =>
  n === 0 ? "" : `\negress guard: ${n} value(s) replaced in requests before sending; run autotune redact --rescan to clean the store`

/** Fails with the one line that says which variable enables the LLM stages. */
const requireProvider = Effect.flatMap(LlmRunner, (runner) =>
  runner.provider.available ? Effect.void : Effect.fail(new LlmUnavailable({ detail: runner.provider.why }))
)

/** "0.71 [0.60, 0.82] (n=120)", "-" without both kinds of reaction, flagged when the judge disagrees with users. */
const agreementText = (a: Agreement) =>
  a.auc === null ? (a.n === 0 ? "-" : `- (n=${a.n})`) : `${a.auc.toFixed(2)} [${a.low!.toFixed(2)}, ${a.high!.toFixed(2)}] (n=${a.n})${a.disagrees ? " DISAGREES" : ""}`

const interval = (v: number | null, lo: number | null, hi: number | null) => (v === null ? "-" : `${v.toFixed(2)}${lo === null ? "" : ` [${lo.toFixed(2)}, ${hi!.toFixed(2)}]`}`)

/** The judge against a person's grades: Spearman and weighted kappa with their intervals, or "-" before any grade. */
const labelText = (a: LabelAgreement) => (a.n === 0 ? "-" : `rho ${interval(a.spearman, a.spearmanLow, a.spearmanHigh)}, kappa ${interval(a.kappa, a.kappaLow, a.kappaHigh)} (n=${a.n})`)

/** One line per behavior users reacted to or a person graded: how well the judge agrees with them. */
const agreementLines = (agreements: Record<string, Agreement>, labelled: Record<string, LabelAgreement> = {}) =>
  Object.entries(agreements)
    .filter(([, a]) => a.n > 0)
    .map(([b, a]) => `\njudge vs users' reactions, ${b}: AUC ${agreementText(a)}`)
    .join("") +
  Object.entries(labelled)
    .filter(([, a]) => a.n > 0)
    .map(([b, a]) => `\njudge vs your grades, ${b}: ${labelText(a)}`)
    .join("")

/** A stage that went on past some behaviors' own faults still exits 1, with one line naming each. */
const failOnFaults = (stage: string, summary: unknown) => {
  const faults = faultsOf(stage, summary)
  return faults.length === 0 ? Effect.void : Effect.fail(new StageFailed({ stage, detail: faults.map((f) => `${f.behavior}: ${f.fault}`).join("; ") }))
}

const evalCommand = Command.make("eval", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      yield* requireProvider
      const summary = yield* asLeader(evalStage)
      yield* opts.json ? printJson(summary) : printLine(evalSummaryText(summary) + agreementLines(summary.humanAgreement, summary.labelAgreement))
      yield* failOnFaults("eval", summary)
      const failed = Object.values(summary.behaviors).reduce((n, b) => n + b.failed, 0)
      if (failed > 0 && !summary.budgetExhausted) {
        return yield* Effect.fail(new StageFailed({ stage: "eval", detail: `${failed} judge call(s) failed; those traces are retried next run` }))
      }
    })
  )
).pipe(Command.withDescription("Score new traces with the LLM judge (two stages; idempotent; canary traces first)"))

// ---------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------

const configCommand = Command.make("config", common, (opts) =>
  Effect.gen(function* () {
    const resolved = yield* loadSettings(configInput(opts))
    for (const note of resolved.notes) yield* Effect.logInfo(note)
    for (const warning of resolved.warnings) yield* Effect.logWarning(warning)
    const rows = describeConfig(resolved)
    if (opts.json) {
      return yield* printJson({
        configPath: resolved.configPath ?? null,
        dotclawHome: resolved.dotclawHome ?? null,
        settings: Object.fromEntries(rows.map((r) => [r.key, { value: r.value, source: r.source, from: r.from, env: r.env }]))
      })
    }
    yield* printLine(`config file: ${shown(resolved.configPath ?? "(none)")}`)
    yield* printLine(`DotClaw: ${resolved.dotclawHome === undefined ? "no current install found (1.1 layout)" : shown(resolved.dotclawHome)}`)
    yield* printLine(
      table(
        ["KEY", "VALUE", "SOURCE", "ENV"],
        rows.map((r) => [r.key, Array.isArray(r.value) ? r.value.join(",") : String(r.value), r.source === "file" || r.source === "flag" || r.source === "dotclaw" ? `${r.source} (${r.from})` : r.source, r.env])
      )
    )
  })
).pipe(Command.withDescription("Print the resolved configuration and where each value came from (secrets masked)"))

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

const initCommand = Command.make(
  "init",
  {
    ...common,
    yes: Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("Do not prompt: write what flags, env and defaults give")),
    force: Options.boolean("force").pipe(Options.withDescription("Overwrite an existing config file"))
  },
  (opts) =>
    Effect.gen(function* () {
      const input = configInput(opts)
      const resolved = yield* loadSettings(input)
      const target = configFilePath(input, resolved.config.home).path
      if (fs.existsSync(target) && !opts.force) {
        return yield* new FileError({ path: target, operation: "initialise", detail: "the file exists already; pass --force to overwrite it" })
      }
      const interactive = !opts.yes && process.stdin.isTTY === true && process.stdout.isTTY === true
      if (resolved.dotclawHome !== undefined && !opts.json) {
        yield* printLine(`found DotClaw at ${resolved.dotclawHome}: its paths and runtime.json settings are offered below`)
      }
      const config = interactive ? yield* wizard(resolved.config) : resolved.config
      // What DotClaw's own layout and runtime.json give stays theirs: not pinned in our file unless changed here.
      const fromDotClaw = (key: keyof AppConfig) => resolved.origins[key].source === "dotclaw" && config[key] === resolved.config[key]
      yield* writeFileAtomic(target, JSON.stringify(toConfigFile(config, fromDotClaw), null, 2) + "\n", MODES.private)
      // The store's and reports' directories are autotune's own; DotClaw's (traces, packs, behavior.json) are read
      // by DotClaw too, perhaps as another user.
      for (const dir of [path.dirname(config.dbPath), config.behaviorReportDir]) yield* ensureDir(dir, MODES.private)
      for (const dir of [config.traceDir, config.outputDir, path.dirname(config.behaviorConfigPath)]) yield* ensureDir(dir, MODES.shared)
      if (opts.json) return yield* printJson({ configPath: target, created: true, dotclawHome: resolved.dotclawHome ?? null })
      yield* printLine(`wrote ${target} (mode 0600)`)
      yield* printLine(`traces from ${config.traceDir}; packs to ${config.outputDir}; store ${storeLocation(config)}`)
    })
).pipe(Command.withDescription("Write a config file (interactive on a TTY; --yes for defaults) and create the directories"))

const wizard = (base: AppConfig) =>
  Effect.gen(function* () {
    const answers = yield* Prompt.all({
      traceDir: Prompt.text({ message: "Trace directory (where DotClaw writes traces)", default: base.traceDir }),
      outputDir: Prompt.text({ message: "Prompt pack directory (DotClaw's shared prompts dir)", default: base.outputDir }),
      dbPath: Prompt.text({ message: "Database path", default: base.dbPath }),
      provider: Prompt.select({
        message: "LLM provider",
        choices: [
          { title: "auto (by which key is set)", value: "auto" as const },
          { title: "Anthropic", value: "anthropic" as const },
          { title: "OpenRouter", value: "openrouter" as const },
          { title: "OpenAI-compatible server (Ollama, vLLM, LM Studio)", value: "openai-compatible" as const }
        ]
      }),
      // Keys are typed without echo, so they never stand on the screen or in a terminal recording.
      anthropicApiKey: Prompt.hidden({ message: `Anthropic API key (empty keeps ${maskSecret(base.anthropicApiKey)})` }),
      openrouterApiKey: Prompt.hidden({ message: `OpenRouter API key (empty keeps ${maskSecret(base.openrouterApiKey)})` }),
      behaviors: Prompt.text({ message: `Behaviors (comma-separated; known: ${BEHAVIORS.join(", ")})`, default: base.behaviors.join(",") }),
      canaryFraction: Prompt.text({ message: "Canary share of requests, (0, 1]", default: String(base.canaryFraction) }),
      behaviorEnabled: Prompt.confirm({ message: "Tune behavior.json too?", initial: base.behaviorEnabled }),
      redact: Prompt.confirm({ message: "Redact secrets and personal data (recommended)?", initial: base.redact })
    })
    const flags: Record<string, string> = {}
    const env: Record<string, string> = {
      AUTOTUNE_TRACE_DIR: answers.traceDir,
      AUTOTUNE_OUTPUT_DIR: answers.outputDir,
      AUTOTUNE_DB_PATH: answers.dbPath,
      AUTOTUNE_PROVIDER: answers.provider,
      AUTOTUNE_BEHAVIORS: answers.behaviors,
      AUTOTUNE_CANARY_FRACTION: answers.canaryFraction,
      AUTOTUNE_BEHAVIOR_ENABLED: answers.behaviorEnabled ? "1" : "0",
      AUTOTUNE_REDACT: answers.redact ? "1" : "0",
      AUTOTUNE_HOME: base.home
    }
    const anthropicKey = Redacted.value(answers.anthropicApiKey).trim()
    const openrouterKey = Redacted.value(answers.openrouterApiKey).trim()
    if (anthropicKey !== "") env["ANTHROPIC_API_KEY"] = anthropicKey
    if (openrouterKey !== "") env["OPENROUTER_API_KEY"] = openrouterKey
    // The answers go through the same validation as any other source.
    const checked = resolveConfig({ flags, env: { ...process.env, ...env } })
    if (Either.isLeft(checked)) return yield* Effect.fail(checked.left)
    return checked.right.config
  })

// ---------------------------------------------------------------------------
// once
// ---------------------------------------------------------------------------

const onceHandler = (opts: Common) =>
  Effect.gen(function* () {
    const input = configInput(opts)
    const outcome = yield* Effect.either(onceLocked(input).pipe(withTracing(input, VERSION)))
    if (Either.isLeft(outcome)) {
      if (outcome.left._tag !== "LockBusy") return yield* Effect.fail(outcome.left)
      // A timer run that finds the daemon (or another run) busy has nothing to do: not a failure.
      yield* Effect.logWarning(`${outcome.left.message}; this run is skipped`)
      if (opts.json) yield* printJson({ skipped: outcome.left.message })
      return
    }
    const run = outcome.right
    if (opts.json) yield* printJson(run)
    else yield* printLine(onceText(run))
    // One line that says which stage failed and why: it is what journald shows for the run.
    if (run.failed.length > 0) return yield* Effect.fail(new StageFailed({ stage: "once", detail: run.errors.join("; ") }))
  })

const behaviorText = (s: Effect.Effect.Success<typeof behaviorStage>) =>
  [`behavior: ${s.why}`, ...("changes" in s ? (s.changes ?? []).map((c) => `  ${c.knob}: ${c.from} -> ${c.to} (${c.why})`) : []), ...("packs" in s ? Object.entries(s.packs ?? {}).map(([b, p]) => `  pack ${b}: ${p}`) : []), ...("report" in s ? [`  report: ${s.report}`] : [])].join("\n")

const behaviorCommand = Command.make("behavior", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* asLeader(behaviorStage)
      yield* opts.json ? printJson(summary) : printLine(behaviorText(summary))
    })
  )
).pipe(Command.withDescription("Tune behavior.json from the last AUTOTUNE_BEHAVIOR_DAYS of traces and write the daily report"))

const daemonCommand = Command.make("daemon", common, (opts) => observedDaemon(configInput(opts), VERSION)).pipe(
  Command.withDescription("Run `once` every AUTOTUNE_INTERVAL_MINUTES until SIGTERM/SIGINT; re-reads the config each cycle; --metrics-port serves /metrics, /livez, /healthz")
)

const onceText = (run: Effect.Effect.Success<typeof onceStages>) => {
  const lines: Array<string> = []
  const { packs, ingest, deploy } = run.stages
  if (packs.status === "failed") lines.push(`packs: ${packs.error}`)
  else if (packs.status === "ok" && packs.summary.length > 0) lines.push(`packs from the store: ${packs.summary.join(", ")}`)
  lines.push(ingest.status === "ok" ? ingestSummaryLine(ingest.summary) : `ingest: ${ingest.status === "failed" ? ingest.error : ingest.why}`)
  // A fleet host that did not lead this cycle only ingested: one line says so.
  const follower = deploy.status === "skipped" && deploy.why === FOLLOWER_WHY
  if (follower) lines.push(`judge, optimize, deploy: ${deploy.why}`)
  else lines.push(...decisionLines(run))
  const page = run.stages.report
  if (page.status === "ok") lines.push(`report: ${page.summary.path}`)
  else if (page.status === "failed") lines.push(`report: ${page.error}`)
  return lines.join("\n")
}

/** What the leading host's cycle did after ingest: behavior, eval, optimize, deploy, retention. */
const decisionLines = (run: Effect.Effect.Success<typeof onceStages>) => {
  const lines: Array<string> = []
  const { behavior, eval: evaluation, optimize, deploy } = run.stages
  if (behavior.status === "ok") lines.push(behaviorText(behavior.summary))
  else if (behavior.status === "failed") lines.push(`behavior: ${behavior.error}`)
  if (run.skippedLlm !== undefined) lines.push(`skipped eval and optimize: ${run.skippedLlm}`)
  else {
    lines.push(evaluation.status === "ok" ? evalSummaryText(evaluation.summary) : `eval: ${evaluation.status === "failed" ? evaluation.error : evaluation.why}`)
    lines.push(optimize.status === "ok" ? optimizeText(optimize.summary) : `optimize: ${optimize.status === "failed" ? optimize.error : optimize.why}`)
  }
  lines.push(deploy.status === "ok" ? deployText(deploy.summary) : `deploy: ${deploy.status === "failed" ? deploy.error : deploy.why}`)
  const align = run.stages.align
  if (align.status === "failed") lines.push(`align: ${align.error}`)
  else if (align.status === "ok") lines.push(...alignLines(align.summary))
  const kept = run.stages.retention
  if (kept.status === "failed") lines.push(`retention: ${kept.error}`)
  else if (kept.status === "ok" && kept.summary.traces > 0) {
    const r = kept.summary
    lines.push(`retention: ${r.traces} trace(s) older than ${r.cutoff} pruned, ${(r.bytesFreed / 1e6).toFixed(1)} MB given back${r.heldBy === null ? "" : ` (held back by the ${r.heldBy})`}`)
  }
  return lines
}

// ---------------------------------------------------------------------------
// optimize, deploy, rollback, packs, status
// ---------------------------------------------------------------------------

const optimizeText = (s: Effect.Effect.Success<typeof optimizeStage>) =>
  Object.entries(s.behaviors)
    .map(([b, o]) =>
      o.outcome === "skipped" || o.outcome === "failed"
        ? `optimize ${b}: ${o.outcome}: ${o.why}`
        : (o.outcome === "no_gain"
            ? `optimize ${b}: no gain, keeping the baseline: ${o.why} (${o.calls} calls, ${usd(o.costUsd)})`
            : `optimize ${b}: selected ${o.version} (${o.winner.id}, round ${o.winner.round}): +${o.winner.meanDiff.toFixed(3)} over the baseline (95% lower bound ${o.winner.lowerBound.toFixed(3)}, n=${o.winner.n}; ${o.calls} calls, ${usd(o.costUsd)}); run \`autotune deploy\``) +
          `\n  ${o.rounds.length} round(s), stopped at ${o.stopped}` +
          o.rounds.map((r) => `\n  round ${r.round}: parent ${r.parent}${r.mergedWith === undefined ? "" : ` merged with ${r.mergedWith}`}, ${r.proposed} proposed, ${r.accepted.length} beat it on the minibatch${r.accepted.length === 0 ? "" : ` (${r.accepted.map((a) => `${a.id} ${a.validationMean === null ? "-" : a.validationMean.toFixed(3)}`).join(", ")} on validation)`}`).join("")
    )
    .join("\n")

/** One line per behavior alignment tried; a behavior it only considered is said in --json. */
const alignLines = (s: Effect.Effect.Success<typeof alignStage>) =>
  Object.entries(s.behaviors).flatMap(([b, o]) =>
    o.status !== "tried"
      ? []
      : [o.adopted !== null
          ? `align ${b}: rubric ${o.adopted} ${o.pending ? "waits for `autotune rubric approve " + b + "`" : "adopted; the next run judges with it"}: ${o.why}`
          : `align ${b}: current rubric kept: ${o.why}${o.dropped.length > 0 ? ` (${o.dropped.length} proposal(s) dropped: ${o.dropped.join("; ")})` : ""}`]
  ).map((line) => line + ` (${s.calls} calls, ${usd(s.costUsd)})`)

const alignPlanText = (plans: ReadonlyArray<AlignPlan>) =>
  plans.map((p) => (p.attempt ? `align ${p.behavior}: would try (${p.why}): up to ${p.calls} calls, ${usd(p.costUsd, 3)}` : `align ${p.behavior}: would not try: ${p.why}`)).join("\n")

const planText = (p: Effect.Effect.Success<ReturnType<Optimizer["plan"]>>) =>
  Object.entries(p.behaviors)
    .map(([b, plan]) =>
      !plan.ready
        ? `optimize ${b}: would skip: ${plan.why}`
        : `optimize ${b}: up to ${plan.rounds} round(s) of ${plan.candidates} candidates; ${plan.heldOutTurns} held-out turns, ${plan.validationTurns} validation turns, reflection draws on ${plan.reflectionTurns} others; ` +
          `at most ${plan.upperBoundCalls} calls${plan.calls.reduce((n, c) => n + c.calls, 0) > plan.upperBoundCalls ? " (AUTOTUNE_OPTIMIZE_MAX_CALLS; the stages below add up every round with every child kept)" : ""}, about ${usd(plan.costUsd, 2)}\n` +
          table(
            ["STAGE", "MODEL", "CALLS", "TOKENS IN", "TOKENS OUT", "COST", "TOKENS FROM"],
            plan.calls.map((c) => [c.stage, c.model, String(c.calls), String(c.tokensIn), String(c.tokensOut), usd(c.costUsd, 3), c.tokensFrom])
          )
    )
    .join("\n") + "\ndry run: no LLM call was made"

const optimizeCommand = Command.make(
  "optimize",
  { ...common, dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print the plan (behaviors, turns, calls, estimated cost per model) and make no call")) },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        if (opts.dryRun) {
          const plan = yield* (yield* Optimizer).plan()
          // Whether a canary could decide within its life at this traffic is worth knowing before one ships.
          const monitor = yield* CanaryMonitor
          const canary: Record<string, Expected> = {}
          for (const [b, p] of Object.entries(plan.behaviors)) if (p.ready) canary[b] = yield* monitor.expected(b as Behavior)
          // What the next `once` would spend aligning the rubrics, beside the optimizer's plan.
          const { config } = yield* Settings
          const align = config.align ? yield* (yield* Aligner).plan() : []
          return yield* opts.json
            ? printJson({ dryRun: true, ...plan, canary, align })
            : printLine(planText(plan) + Object.entries(canary).map(([b, f]) => `\nif a canary ships for ${b}: ${f.text}`).join("") + (align.length === 0 ? "" : `\n${alignPlanText(align)}`))
        }
        yield* requireProvider
        const summary = yield* asLeader(optimizeStage)
        yield* opts.json ? printJson(summary) : printLine(optimizeText(summary) + egressLine(summary.egressRedactions))
        yield* failOnFaults("optimize", summary)
      })
    )
).pipe(Command.withDescription("Propose better instructions per behavior and keep only measured, held-out gains"))

const deployText = (s: Effect.Effect.Success<typeof deployStage>) => {
  const lines = Object.entries(s.deployed).map(([b, d]) => {
    const r = d as { version?: string; as?: string; rejected?: string }
    return r.rejected !== undefined ? `deploy ${b}: not deployed: ${r.rejected}` : `deploy ${b}: ${r.version} out as ${r.as}`
  })
  for (const [b, fault] of Object.entries(s.faults)) lines.push(`deploy ${b}: failed: ${fault}`)
  for (const p of s.pending) lines.push(`deploy ${p.behavior}: ${p.version} selected; waits for \`autotune approve ${p.behavior}\` or \`autotune reject ${p.behavior}\` (AUTOTUNE_DEPLOY_APPROVAL=manual)`)
  for (const [b, d] of Object.entries(s.decisions)) {
    if (d.action === "none") continue
    lines.push(`canary ${b}: ${d.action} (${d.reason})${d.step?.kind === "up" || d.step?.kind === "down" ? `; ${d.step.reason}` : d.percent === undefined || d.action !== "waiting" ? "" : `; at ${d.percent}%`}`)
  }
  return lines.length === 0 ? "deploy: nothing selected, no canary out" : lines.join("\n")
}

const deployCommand = Command.make("deploy", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* asLeader(deployStage)
      yield* opts.json ? printJson(summary) : printLine(deployText(summary))
      yield* failOnFaults("deploy", summary)
    })
  )
).pipe(Command.withDescription("Ship what optimize selected as canary packs, then promote, roll back or keep waiting on every canary"))

const behaviorArg = Args.choice(BEHAVIORS.map((b) => [b, b] as const), { name: "behavior" })

const rollbackCommand = Command.make(
  "rollback",
  { ...common, behavior: behaviorArg, to: Options.text("to").pipe(Options.withDescription("Restore this earlier version as the active pack"), Options.optional) },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const deployer = yield* Deployer
        const result = yield* asLeader(deployer.rollback(opts.behavior, Option.getOrUndefined(opts.to)))
        yield* opts.json
          ? printJson({ behavior: opts.behavior, ...result })
          : printLine("restored" in result ? `${opts.behavior}: ${result.restored} restored as the active pack` : `${opts.behavior}: canary ${result.removedCanary} removed`)
      })
    )
).pipe(Command.withDescription("Remove a behavior's canary, or restore an earlier version with --to VERSION"))

/** A word diff for a terminal: [-removed-] {+added+}. */
const diffText = (parts: ReadonlyArray<DiffPart>) => parts.map((p) => (p.op === "same" ? p.text : p.op === "add" ? `{+${p.text}+}` : `[-${p.text}-]`)).join("")

const pendingText = (behavior: string, p: PendingPack) =>
  `\n${behavior}: ${p.version} waits for approval: held-out gain ${fmt(p.heldOutGain, 3)} (95% lower bound ${fmt(p.lowerBound, 3)}); ` +
  `\`autotune approve ${behavior}\` ships it as a canary, \`autotune reject ${behavior}\` discards it\n  ${diffText(p.diff).replace(/\n/g, "\n  ")}` +
  p.chosenOn.map((t) => `\n  gained on: ${JSON.stringify(t.message)} ${fmt(t.baseline, 2)} -> ${fmt(t.winner, 2)}`).join("")

const approveCommand = Command.make("approve", { ...common, behavior: behaviorArg }, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const result = yield* asLeader(approve(opts.behavior))
      yield* opts.json ? printJson(result) : printLine(`${opts.behavior}: ${result.approved} approved, out as ${result.as}`)
    })
  )
).pipe(Command.withDescription("Ship the pack optimize selected for a behavior as a canary (AUTOTUNE_DEPLOY_APPROVAL=manual)"))

const rejectCommand = Command.make(
  "reject",
  { ...common, behavior: behaviorArg, reason: Options.text("reason").pipe(Options.withDescription("Why, for the record"), Options.optional) },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const result = yield* asLeader(reject(opts.behavior, Option.getOrUndefined(opts.reason)))
        yield* opts.json ? printJson(result) : printLine(`${opts.behavior}: ${result.rejected} rejected; neither it nor a change adding the same sentences is proposed again`)
      })
    )
).pipe(Command.withDescription("Discard the pack optimize selected for a behavior, for good"))

/** Where a pack came from, in a few words: the optimizer's chain of candidates from its baseline, or its source. */
const lineageText = (json: string | null) => {
  const l = (json === null ? {} : JSON.parse(json)) as { ancestry?: ReadonlyArray<string>; round?: number; parents?: ReadonlyArray<string>; source?: string }
  if (l.ancestry !== undefined) return `${l.ancestry.join(" > ")}${(l.parents?.length ?? 0) > 1 ? ` (merged with ${l.parents![1]})` : ""}, round ${l.round}`
  return l.source ?? "-"
}

const packsCommand = Command.make("packs", { ...common, behavior: Args.optional(behaviorArg), diff: Options.text("diff").pipe(Options.withDescription("Show this version's word diff against the instructions it replaced"), Options.optional) }, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      if (Option.isSome(opts.diff)) {
        const d = yield* packDiff(opts.diff.value)
        return yield* opts.json ? printJson(d) : printLine(`${shown(d.version)} (${d.behavior}, ${d.status}) against ${shown(d.against)}:\n${diffText(d.diff)}`)
      }
      const rows = yield* (yield* Deployer).history(Option.getOrUndefined(opts.behavior))
      if (opts.json) return yield* printJson({ history: rows.map(({ detailJson, lineageJson, ...r }) => ({ ...r, detail: JSON.parse(detailJson), lineage: lineageJson === null ? null : JSON.parse(lineageJson) })) })
      yield* printLine(
        rows.length === 0
          ? "no pack history yet"
          : table(["WHEN", "BEHAVIOR", "VERSION", "ACTION", "STATUS", "LINEAGE"], rows.map((r) => [new Date(r.createdAt).toISOString().slice(0, 19) + "Z", r.behavior, r.version, r.action, r.status ?? "-", lineageText(r.lineageJson)]))
      )
    })
  )
).pipe(Command.withDescription("The deployment history of prompt packs (newest first)"))

// ---------------------------------------------------------------------------
// rubric
// ---------------------------------------------------------------------------

const rubricShowCommand = Command.make(
  "show",
  { ...common, behavior: Args.optional(behaviorArg), diff: Options.boolean("diff").pipe(Options.withDescription("Show each version as a word diff against the one before it")) },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const book = yield* Rubrics
        const { config } = yield* Settings
        const behaviors = Option.match(opts.behavior, { onNone: () => config.behaviors, onSome: (b) => [b] })
        const shown = behaviors.map((b) => {
          const history = book.history(b)
          return {
            behavior: b,
            current: book.current[b].version,
            versions: history.map((v, i) => ({ ...v, createdAt: v.createdAt === null ? null : new Date(v.createdAt).toISOString(), ...(opts.diff && i > 0 ? { diff: wordDiff(history[i - 1]!.criteria, v.criteria) } : {}) }))
          }
        })
        if (opts.json) return yield* printJson({ rubrics: shown })
        const text = shown.map((r) => {
          const lines = r.versions.map((v) => `  ${v.version} (${v.source}, ${v.status}${v.createdAt === null ? "" : `, ${v.createdAt.slice(0, 19)}Z`})` + ("diff" in v && v.diff !== undefined ? `\n    ${diffText(v.diff)}` : ""))
          const current = book.current[r.behavior]
          return `${r.behavior}: ${current.version}\n  "${current.criteria}"\n versions, oldest first:\n${lines.join("\n")}`
        })
        yield* printLine(text.join("\n\n"))
      })
    )
).pipe(Command.withDescription("The judge's rubric of each behavior and its versions (--diff: what each version changed)"))

const rubricRollbackCommand = Command.make("rollback", { ...common, behavior: behaviorArg }, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const r = yield* asLeader((yield* Rubrics).rollback(opts.behavior))
      yield* opts.json ? printJson(r) : printLine(`${r.behavior}: the judge uses ${r.to} again (${r.from} rolled back); turns are judged again under it as decisions need them`)
    })
  )
).pipe(Command.withDescription("Go back to the previous version of a behavior's rubric"))

/** The operator's word on a rubric alignment adopted under AUTOTUNE_DEPLOY_APPROVAL=manual. */
const rubricDecideCommand = (name: "approve" | "reject") =>
  Command.make(name, { ...common, behavior: behaviorArg }, (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const r = yield* asLeader((yield* Rubrics).decidePending(opts.behavior, name === "approve"))
        yield* opts.json ? printJson(r) : printLine(r.approved ? `${r.behavior}: the judge uses ${r.version} from the next run` : `${r.behavior}: ${r.version} rejected; the current rubric stays`)
      })
    )
  ).pipe(Command.withDescription(name === "approve" ? "Make the rubric alignment adopted (and that waits for you) the judge's rubric" : "Refuse the rubric alignment adopted; the current one stays"))

const rubricCommand = Command.make("rubric").pipe(
  Command.withDescription("The judge's rubrics as data: show their versions, roll one back, approve or reject an aligned one"),
  Command.withSubcommands([rubricShowCommand, rubricRollbackCommand, rubricDecideCommand("approve"), rubricDecideCommand("reject")])
)

// ---------------------------------------------------------------------------
// accept-store
// ---------------------------------------------------------------------------

/**
 * After a store was removed or replaced on purpose: the store configured now becomes autotune's store (a new, empty
 * one when there is none; store/Identity.ts). Its traces are read again from DotClaw's files by the next cycle; the
 * last 24 hours' spend stays counted from the home's record.
 */
const acceptStoreCommand = Command.make("accept-store", common, (opts) =>
  Effect.gen(function* () {
    const { config } = yield* loadSettings(configInput(opts))
    const before = yield* forgetStore(config.home)
    const id = yield* withApp(opts, currentStoreId)
    const result = { store: storeLocation(config), storeId: id, previous: before?.location === undefined ? null : { store: before.location, storeId: before.storeId ?? null }, spent24hUsd: rememberedSpend(config.home) }
    if (opts.json) return yield* printJson(result)
    yield* printLine(`autotune's store is now ${shown(result.store)} (store ${id})${result.previous === null ? "" : `; was ${shown(result.previous.store)} (store ${result.previous.storeId})`}`)
    yield* printLine(`the next cycle reads DotClaw's traces into it; the last 24 hours' spend (${usd(result.spent24hUsd, 2)}) still counts against the daily budget`)
  })
).pipe(Command.withDescription("Make the store configured now autotune's store, after the one it had was removed or replaced on purpose"))

// ---------------------------------------------------------------------------
// label
// ---------------------------------------------------------------------------

const labelCommand = Command.make(
  "label",
  {
    ...common,
    behavior: Args.optional(behaviorArg),
    importFile: Options.file("import").pipe(Options.withDescription("Store the grades (1-5) of a JSONL file made by --export"), Options.optional),
    exportFile: Options.text("export").pipe(Options.withDescription("Write the judged turns to grade as JSONL (mode 0600), graded ones included"), Options.optional),
    limit: Options.integer("limit").pipe(Options.withDescription("Turns per behavior in --export"), Options.withDefault(200))
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const { config } = yield* Settings
        const behaviors = Option.match(opts.behavior, { onNone: () => config.behaviors, onSome: (b) => [b] })
        if (Option.isSome(opts.importFile)) {
          const r = yield* importGrades(opts.importFile.value)
          for (const line of r.refused) yield* Effect.logWarning(`${r.file} ${line}`)
          yield* opts.json ? printJson(r) : printLine(`imported ${r.imported} grade(s) from ${r.file}; ${r.ungraded} line(s) without a grade skipped; ${r.refused.length} refused`)
          if (r.refused.length > 0) return yield* new FileError({ path: r.file, operation: "import every line of", detail: `${r.refused.length} line(s) refused (each named above); the other grades are stored` })
          return
        }
        if (Option.isSome(opts.exportFile)) {
          const r = yield* exportTurns(behaviors, opts.exportFile.value, opts.limit)
          return yield* opts.json ? printJson(r) : printLine(`wrote ${r.turns} judged turn(s) (${r.graded} graded) to ${r.file}; set "grade" to 1-5 and run autotune label --import ${r.file}`)
        }
        const stored = yield* labelSession(behaviors)
        const agreements = yield* (yield* Alignment).labelAgreements()
        yield* opts.json ? printJson({ stored, agreement: agreements }) : printLine(`stored ${Object.values(stored).reduce((a, b) => a + b, 0)} grade(s)${agreementLines({}, agreements)}`)
      })
    )
).pipe(Command.withDescription("Grade judged turns 1-5 in the terminal (most useful first), or --export/--import them, so the judge is measured against you"))

// ---------------------------------------------------------------------------
// redact
// ---------------------------------------------------------------------------

export const rescanText = (s: RescanSummary) => {
  const rows = Object.entries(s.tables).map(([t, r]) => [t, String(r.scanned), String(r.changed), String(r.replaced)])
  const rules = Object.entries(s.byRule).map(([rule, n]) => `${rule} ${n}`).join(", ")
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`
  return (
    table(["TABLE", "ROWS SCANNED", "ROWS CHANGED", "VALUES REPLACED"], rows) +
    `\nredact: store cleaned with rule set v${s.toVersion}` +
    (rules === "" ? "; nothing to replace" : `; replaced: ${rules}`) +
    (s.vacuumed ? `; WAL checkpointed and file vacuumed (${mb(s.bytesBefore)} -> ${mb(s.bytesAfter)})` : "")
  )
}

const redactCommand = Command.make(
  "redact",
  { ...common, rescan: Options.boolean("rescan").pipe(Options.withDescription("Re-apply the current rules to everything stored, then vacuum")) },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        if (!opts.rescan) return yield* Effect.fail(new ConfigError({ key: "--rescan", source: "flag", detail: "redact needs --rescan (re-apply the current rules to everything stored, then vacuum)" }))
        const { config } = yield* Settings
        const progress = makeProgress("redact")
        const summary = yield* withRunLock(
          lockPath(config.dbPath),
          rescan({ includeUnredacted: true, onProgress: (done, total) => progress.update(done, total, `${done}/${total} rows`) }),
          "30 seconds"
        ).pipe(Effect.ensuring(Effect.sync(progress.done)))
        yield* opts.json ? printJson(summary) : printLine(rescanText(summary))
      })
    )
).pipe(Command.withDescription("Clean the store: re-apply the current redaction rules to all stored text, checkpoint the WAL and vacuum"))

/** The store, and in a fleet each host's last ingest and whether a leader's cycle runs now. */
const storeLine = (s: Effect.Effect.Success<typeof statusReport>["store"]) => {
  if (s.kind === "sqlite") return `SQLite ${s.location}`
  const hosts = s.hosts.map((h) => `${h.host}${h.host === s.thisHost ? " (this host)" : ""} last ingest ${h.lastIngestAt}`).join(", ")
  return `PostgreSQL ${s.location}; hosts: ${hosts === "" ? "none has ingested yet" : hosts}; ${s.leaderCycleRunning === true ? "a leader's cycle is running now" : "no cycle is running"}`
}

/** A live canary's share over its life and what its last look said about the next step. */
const shareText = (b: Effect.Effect.Success<typeof statusReport>["behaviors"][number]) => {
  const path = b.shares.map((s) => `${s.percent}%`).join(" -> ")
  const last = b.shares.length > 1 ? b.shares[b.shares.length - 1]! : undefined
  return `\ncanary share, ${b.behavior}: ${path === "" ? `${b.canaryPercent ?? "?"}% (placed by hand: fixed)` : path}` +
    (last === undefined ? "" : ` (${new Date(last.at).toISOString().slice(0, 16)}Z: ${last.reason})`) +
    (b.nextStep === null || b.nextStep.kind === "up" || b.nextStep.kind === "down" ? "" : `; next: ${b.nextStep.reason}`)
}

/** A rubric that is not the built-in one, waits for approval, or that alignment tried: one line. */
const rubricStatusText = (b: Effect.Effect.Success<typeof statusReport>["behaviors"][number]) => {
  const r = b.rubric
  if (r.source === "built-in" && r.pending === null && r.lastAttempt === null) return ""
  const parts = [`rubric ${b.behavior}: ${shown(r.version)} (${r.source})`]
  if (r.pending !== null) parts.push(`${shown(r.pending)} waits for \`autotune rubric approve ${b.behavior}\` or \`rubric reject\``)
  if (r.lastAttempt !== null) parts.push(`alignment ${r.lastAttempt.at.slice(0, 16)}Z: ${r.lastAttempt.outcome}, ${r.lastAttempt.why}`)
  return `\n${parts.join("; ")}`
}

const statusCommand = Command.make("status", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const report = yield* statusReport
      if (opts.json) return yield* printJson(report)
      yield* printLine(
        table(
          ["BEHAVIOR", "ACTIVE", "CANARY (SHARE)", "N C/A", "MEAN C/A", "EVIDENCE UP/DOWN", "LAST DECISION", "SPEND $", "USERS AUC (N)", "GRADES RHO/KAPPA (N)"],
          report.behaviors.map((b) => [
            b.behavior,
            b.active ?? "-",
            b.canary === null ? "-" : `${b.canary} (${b.canaryPercent ?? "?"}%)`,
            b.canary === null ? "-" : `${b.samples.canary}/${b.samples.active}`,
            b.canary === null ? "-" : `${fmt(b.mean.canary, 2)}/${fmt(b.mean.active, 2)}`,
            b.lastDecision === null ? "-" : `${formatEvidence(b.lastDecision.eUp)}/${formatEvidence(b.lastDecision.eDown)}`,
            b.lastDecision === null ? "-" : `${b.lastDecision.action}: ${b.lastDecision.reason}`.slice(0, 70),
            b.spendUsd.toFixed(4),
            agreementText(b.humanAgreement),
            b.labelAgreement.n === 0 ? "-" : `${fmt(b.labelAgreement.spearman, 2)}/${fmt(b.labelAgreement.kappa, 2)} (${b.labelAgreement.n})`
          ])
        ) +
          `\nstore: ${storeLine(report.store)}` +
          `\ntotal LLM spend: $${report.spendUsd.toFixed(4)} (last 24 h: $${report.spend24hUsd.toFixed(4)})` +
          `\nusers' reactions imported: ${report.reactions.total} (${report.reactions.negative} 👎)` +
          `\njudged, last 7 days, of ${report.judging.turns7d} turns: ${report.behaviors.map((b) => `${b.behavior} ${b.judged7d}`).join(", ")}` +
          (report.judging.dailySample === 0 ? " (every turn: AUTOTUNE_JUDGE_DAILY_SAMPLE=0)" : ` (a sample of ${report.judging.dailySample} a day per behavior, every canary turn and ${report.judging.canaryPairs === 0 ? "every active turn" : `about ${report.judging.canaryPairs} active turns per canary turn`}; the rest stays unjudged)`) +
          `\negress guard, last 7 days: ${report.egressRedactions} value(s) replaced before sending` +
          `\naddressed to the evaluator, last 7 days: ${report.addressedMasked7d} judged turn(s) had such sentences masked before judging` +
          batchesLine(report.batches) +
          `\ndaily budget: ${report.dailyBudgetUsd === 0 ? "none (AUTOTUNE_DAILY_BUDGET_USD=0)" : `${usd(report.spend24hUsd, 2)} of ${usd(report.dailyBudgetUsd, 2)} spent in the last 24 hours${report.spend24hUsd >= report.dailyBudgetUsd ? ": exhausted, LLM stages wait" : ""}`}` +
          Object.entries(report.unparseable).map(([model, p]) => `\nunusable structured answers, last 7 days, ${model}: ${p.unparsed} of ${p.structured} (${(p.share * 100).toFixed(1)}%)`).join("") +
          report.behaviors.flatMap((b) => (b.pending === null ? [] : [pendingText(b.behavior, b.pending)])).join("") +
          report.behaviors.map((b) => (b.canary === null ? "" : shareText(b))).join("") +
          report.behaviors.map((b) => `\nexpected at the last 7 days' traffic, ${b.behavior}: ${b.expected.text}`).join("") +
          report.behaviors.map(rubricStatusText).join("")
      )
    })
  )
).pipe(Command.withDescription("Per behavior: active and canary packs, samples and scores per arm, evidence, last decision, spend"))

const reportCommand = Command.make(
  "report",
  {
    ...common,
    out: Options.file("out").pipe(Options.optional, Options.withDescription("Where to write the page (default AUTOTUNE_REPORT_PATH, $AUTOTUNE_HOME/report.html)")),
    days: Options.integer("days").pipe(Options.optional, Options.withDescription("Days the page covers (default AUTOTUNE_REPORT_DAYS, 30)"))
  },
  (opts) =>
    withApp(
      opts,
      Effect.gen(function* () {
        const { config } = yield* Settings
        const days = Option.getOrElse(opts.days, () => config.reportDays)
        if (days < 1 || days > 3650) return yield* Effect.fail(new ConfigError({ key: "--days", source: "flag", detail: `must be a whole number of days from 1 to 3650, got ${days}` }))
        const written = yield* writeReport(Option.getOrElse(opts.out, () => config.reportPath), days)
        yield* opts.json ? printJson(written) : printLine(`report: ${written.path} (${(written.bytes / 1024).toFixed(0)} KB, ${written.behaviors.length} behaviors, last ${days} days)`)
      })
    )
).pipe(Command.withDescription("Write one self-contained HTML page (charts included, no network needed): scores, canaries, optimizer runs, spend, judge health"))

const onceCommand = Command.make("once", common, onceHandler).pipe(
  Command.withDescription("One full cycle: ingest, behavior, eval, optimize, deploy and canary decisions")
)

// ---------------------------------------------------------------------------

const root = Command.make("autotune", common, onceHandler).pipe(
  Command.withDescription("Self-improvement loop for DotClaw agents. With no command: `once`."),
  Command.withSubcommands([initCommand, ingestCommand, evalCommand, optimizeCommand, deployCommand, approveCommand, rejectCommand, behaviorCommand, onceCommand, daemonCommand, rollbackCommand, packsCommand, labelCommand, rubricCommand, statusCommand, reportCommand, redactCommand, configCommand, acceptStoreCommand])
)

export const cli = Command.run(root, { name: "autotune", version: VERSION })

/** Exit codes: 2 for configuration and usage errors, 1 for any other failure. */
export const exitCodeFor = (error: unknown): number =>
  error instanceof ConfigError || ValidationError.isValidationError(error) || (error instanceof LlmStopped && error.kind === "config") ? 2 : 1

const errorJson = (error: unknown) => {
  const tagged = error as { _tag?: unknown; message?: unknown }
  const fields = typeof error === "object" && error !== null ? Object.fromEntries(Object.entries(error).filter(([k]) => k !== "stack" && k !== "_tag")) : {}
  return { error: { ...fields, tag: typeof tagged._tag === "string" ? tagged._tag : "Error", message: error instanceof Error ? error.message : String(error) } }
}

/**
 * One clear line per error on stderr, never a stack, for failures and crashes alike; with --json also
 * `{"error": {...}}` on stdout when the command printed nothing there yet. The exit code says what kind of
 * failure it was. An interruption (SIGTERM, SIGINT) is a clean stop, not an error.
 */
export const reportCause = (cause: Cause.Cause<unknown>) =>
  Effect.sync(() => {
    if (Cause.isInterruptedOnly(cause)) return
    const failure = Cause.failureOption(cause)
    const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
    // @effect/cli has printed usage errors itself already.
    if (!ValidationError.isValidationError(error)) {
      const message = error instanceof Error ? error.message : String(error)
      const crashed = Option.isNone(failure) ? "unexpected failure: " : ""
      process.stderr.write(`autotune: error: ${crashed}${message.split("\n")[0]}\n`)
      if (process.argv.includes("--json") && !stdoutWritten()) process.stdout.write(JSON.stringify(errorJson(error)) + "\n")
    }
    process.exitCode = exitCodeFor(error)
  })

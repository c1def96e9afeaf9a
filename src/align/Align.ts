/**
 * align/: the judge learns what the people value. Align.ts is the Aligner service: per behavior, when the
 * human signal is strong enough and the judge disagrees with it, reflection proposes amended rubrics
 * (Proposal.ts), each re-judges the alignment split, and the best is adopted only on a paired, error-spending
 * test on held-out turns no model but the judge has seen (Evidence.ts, pure); Signals.ts reads the store.
 * May import: Domain, config, privacy, store, llm, ingest, judge, canary, optimize, align
 */
import { recordAttempt } from "../store/Reactions.js"
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { createHash } from "node:crypto"
import { costAt, parsePrices } from "../config/Prices.js"
import { Settings } from "../config/Config.js"
import type { AppConfig } from "../config/Table.js"
import type { Behavior } from "../Domain/Behavior.js"
import { Judge } from "../judge/Judge.js"
import { Rubrics } from "../judge/RubricBook.js"
import { judgeTraceOf, RUBRICS, type Rubric } from "../judge/Prompts.js"
import type { Verdict } from "../judge/Tasks.js"
import { LlmRunner, usageBetween, usageOf } from "../llm/LlmRunner.js"
import type { StoreError } from "../Domain/Errors.js"
import {
  agreementOf,
  alphaFor,
  type PairedTest,
  pairedTest,
  type Readiness,
  readiness,
  type SignalKind
} from "./Evidence.js"
import { amendmentProblem, CANDIDATES, makeProposal, SHOWN } from "./Proposal.js"
import { makeSignals, type SignalRow, type Signals, type SignalSource } from "./Signals.js"

/** An attempt at most this often per behavior, and only with new signal since the last one. */
export const ATTEMPT_EVERY_MS = 20 * 3_600_000
export const NEW_SIGNAL = 5

export type AlignOutcome =
  | { readonly status: "skipped"; readonly why: string; readonly kind?: SignalKind; readonly agreement?: number | null }
  | {
      readonly status: "tried"
      readonly kind: SignalKind
      readonly why: string
      /** Which held-out test of the rubric's life this was (null: none was run), and the error it spent. */
      readonly attempt: number | null
      readonly alpha: number | null
      readonly alignSplit: {
        readonly turns: number
        readonly current: number | null
        readonly candidates: ReadonlyArray<number | null>
      }
      readonly dropped: ReadonlyArray<string>
      readonly test: PairedTest | null
      readonly adopted: string | null
      readonly pending: boolean
    }

export interface AlignPlan {
  readonly behavior: Behavior
  readonly attempt: boolean
  readonly why: string
  readonly calls: number
  readonly costUsd: number | null
}

interface Prepared {
  readonly rubric: Rubric
  readonly signals: Signals
  readonly ready: Readiness
  readonly go: boolean
  readonly why: string
  /** Held-out tests this rubric's life has spent, and the signal turns now (when `go`). */
  readonly tested?: number
  readonly signalTurns?: number
}

const idOf = (behavior: Behavior, criteria: string) =>
  `${behavior}@aligned-${createHash("sha256").update(criteria).digest("hex").slice(0, 8)}`

/** The calls one attempt can afford: a proposal, each candidate on the alignment split, the best on the held-out one. */
const perSplitOf = (config: AppConfig) => Math.floor((config.alignMaxCalls - 1) / (CANDIDATES + 1))

/** Whether a behavior would be tried now, and why not: readiness, then pacing, then the call limit. */
const makePrepare = (book: Rubrics, config: AppConfig, { signalsFor, lastAttempt }: SignalSource) => {
  const thresholds = { minTurns: config.alignMinTurns, auc: config.alignAuc, spearman: config.alignSpearman }
  const perSplit = perSplitOf(config)
  return (behavior: Behavior): Effect.Effect<Prepared, StoreError> =>
    Effect.gen(function* () {
      const rubric = book.current[behavior]
      const signals = yield* signalsFor(rubric, config.alignMinTurns)
      const ready = readiness(signals.kind, signals.align, signals.heldOut, thresholds)
      const base = { rubric, signals, ready }
      if (book.pending(behavior) !== undefined)
        return { ...base, go: false, why: "an aligned rubric waits for `autotune rubric approve` or `rubric reject`" }
      if (!ready.ready) return { ...base, go: false, why: ready.why }
      const last = yield* lastAttempt(behavior, rubric.version)
      const signalTurns = signals.align.length + signals.heldOut.length
      const now = yield* Clock.currentTimeMillis
      if (last !== undefined && now - last.at < ATTEMPT_EVERY_MS)
        return {
          ...base,
          go: false,
          why: `tried ${Math.round((now - last.at) / 3_600_000)} h ago; at most one attempt a day`
        }
      if (last !== undefined && signalTurns < last.signalTurns + NEW_SIGNAL)
        return {
          ...base,
          go: false,
          why: `no new signal since the last attempt (${signalTurns} turns; needs ${last.signalTurns + NEW_SIGNAL})`
        }
      if (perSplit < config.alignMinTurns)
        return {
          ...base,
          go: false,
          why: `AUTOTUNE_ALIGN_MAX_CALLS=${config.alignMaxCalls} affords ${perSplit} turns a split; needs ${config.alignMinTurns}`
        }
      return { ...base, go: true, why: ready.why, tested: last?.tested ?? 0, signalTurns }
    })
}

/** Scores under a candidate, paired with the turns it could score (an unscored answer leaves its turn out). */
const scored = (rows: ReadonlyArray<SignalRow>, verdicts: ReadonlyArray<Verdict>) =>
  rows.flatMap((r, i) => {
    const v = verdicts[i]!
    return v.status === "scored" ? [{ ...r, candidate: v.score, current: r.score }] : []
  })

const signalsOf = (rows: ReadonlyArray<{ signal: number }>) => rows.map((r) => r.signal)

/** Reflection sees the alignment split's worst disagreements in each direction, never a held-out turn. */
const forReflection = (kind: SignalKind, rows: ReadonlyArray<SignalRow>) => {
  const high = kind === "reactions" ? (r: SignalRow) => r.signal === 1 : (r: SignalRow) => r.signal >= 4
  const low = kind === "reactions" ? (r: SignalRow) => r.signal === 0 : (r: SignalRow) => r.signal <= 2
  return {
    worse: rows
      .filter(low)
      .sort((a, b) => b.score - a.score)
      .slice(0, SHOWN),
    better: rows
      .filter(high)
      .sort((a, b) => a.score - b.score)
      .slice(0, SHOWN)
  }
}

/** The proposals worth judging: not the current text, not rejected by the operator before, none failing the amendment checks. */
const keepCandidates = (
  book: Rubrics,
  rubric: Rubric,
  candidates: ReadonlyArray<string>,
  shown: ReadonlyArray<string>
) => {
  const known = [rubric.criteria, RUBRICS[rubric.behavior].criteria]
  const dropped: Array<string> = []
  // A rubric the operator rejected is never adopted again, however often it is proposed.
  const rejected = new Set(
    book
      .history(rubric.behavior)
      .filter((v) => v.status === "rejected")
      .map((v) => v.version)
  )
  const kept = candidates.filter((c) => {
    const problem = rejected.has(idOf(rubric.behavior, c))
      ? "rejected by the operator before"
      : amendmentProblem(c, known, shown)
    if (problem !== undefined) dropped.push(problem)
    return problem === undefined && c !== rubric.criteria
  })
  return { kept, dropped }
}

/** The adopted rubric's source line: what the held-out test measured, at what error. */
const adoptionSource = (kind: SignalKind, test: PairedTest, alpha: number, attempt: number) => {
  const name = kind === "reactions" ? "AUC vs reactions" : "Spearman vs grades"
  return `aligned: held-out ${name} ${test.current!.toFixed(2)} -> ${test.candidate!.toFixed(2)}, lower bound ${test.lower!.toFixed(3)} at alpha ${alpha.toFixed(4)} (test ${attempt}), ${test.n} turns`
}

/** Each candidate re-judges the alignment split; the best that agrees better than the current rubric goes on. */
const makeTrials = (judge: Judge, runner: LlmRunner, config: AppConfig) => {
  // A call that failed leaves its turn unscored; a provider that stopped the run (a wrong key, the budget) ends the stage here.
  const judgeAll = (rubric: Rubric, rows: ReadonlyArray<SignalRow>) =>
    Effect.forEach(
      rows,
      (r) =>
        judge
          .verdict(rubric, judgeTraceOf(r), config.judgeStage1Model, `align:${rubric.behavior}:judge`)
          .pipe(Effect.catchTag("LlmError", (e) => Effect.succeed({ status: "unscored" as const, reason: e.message }))),
      { concurrency: config.llmConcurrency }
    ).pipe(Effect.tap(() => runner.ensureRunning))

  const onAlignSplit = (
    rubric: Rubric,
    kind: SignalKind,
    kept: ReadonlyArray<string>,
    rows: ReadonlyArray<SignalRow>
  ) =>
    Effect.gen(function* () {
      const current = agreementOf(
        kind,
        signalsOf(rows),
        rows.map((r) => r.score)
      )
      const candidates: Array<number | null> = []
      let best: { criteria: string; agreement: number } | undefined
      for (const criteria of kept) {
        const trial: Rubric = { ...rubric, version: idOf(rubric.behavior, criteria), criteria }
        const paired = scored(rows, yield* judgeAll(trial, rows))
        const a = agreementOf(
          kind,
          signalsOf(paired),
          paired.map((r) => r.candidate)
        )
        const c = agreementOf(
          kind,
          signalsOf(paired),
          paired.map((r) => r.current)
        )
        candidates.push(a)
        if (a !== null && c !== null && a > c && (best === undefined || a > best.agreement))
          best = { criteria, agreement: a }
      }
      return { alignSplit: { turns: rows.length, current, candidates }, best }
    })

  const onHeldOut = (trial: Rubric, kind: SignalKind, rows: ReadonlyArray<SignalRow>, alpha: number, attempt: number) =>
    Effect.gen(function* () {
      const seed = createHash("sha256").update(`${trial.version}:${attempt}`).digest().readUInt32LE(0)
      return pairedTest(kind, scored(rows, yield* judgeAll(trial, rows)), alpha, seed)
    })

  return { onAlignSplit, onHeldOut }
}

/** At most what trying a behavior would cost, priced before any call (for `optimize --dry-run`). */
const planOf = (config: AppConfig, p: Prepared): AlignPlan => {
  const prices = parsePrices(config.prices)
  const perSplit = perSplitOf(config)
  const turns = Math.min(p.signals.align.length, perSplit) * CANDIDATES + Math.min(p.signals.heldOut.length, perSplit)
  const judging = costAt(prices, config.judgeStage1Model, 2000 * turns, 300 * turns)
  const proposal = costAt(prices, config.candidateModel, 6000, 4096)
  return {
    behavior: p.rubric.behavior,
    attempt: p.go,
    why: p.why,
    calls: p.go ? 1 + turns : 0,
    costUsd: !p.go ? 0 : judging === null || proposal === null ? null : judging + proposal
  }
}

export class Aligner extends Effect.Service<Aligner>()("autotune/Aligner", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* LlmRunner
    const book = yield* Rubrics
    const { config } = yield* Settings
    const prepare = makePrepare(book, config, makeSignals(sql))
    const { onAlignSplit, onHeldOut } = makeTrials(yield* Judge, runner, config)
    const { propose } = makeProposal({ runner, config })
    const perSplit = perSplitOf(config)

    const record = (
      behavior: Behavior,
      version: string,
      signalTurns: number,
      tested: boolean,
      alpha: number | null,
      outcome: string,
      candidate: string | null,
      detail: unknown
    ) =>
      recordAttempt(sql, { behavior, rubricVersion: version, signalTurns, tested, alpha, outcome, candidate, detail })

    const alignOne = Effect.fn("Aligner.alignOne")(function* (behavior: Behavior) {
      yield* Effect.annotateCurrentSpan("autotune.behavior", behavior)
      const p = yield* prepare(behavior)
      if (!p.go)
        return {
          status: "skipped",
          why: p.why,
          kind: p.signals.kind,
          agreement: p.ready.current
        } satisfies AlignOutcome as AlignOutcome
      const { rubric, signals } = p
      const kind = signals.kind
      const alignRows = signals.align.slice(0, perSplit)
      const { candidates, shown } = yield* propose(rubric, kind, forReflection(kind, alignRows))
      const { kept, dropped } = keepCandidates(book, rubric, candidates, shown)
      const { alignSplit, best } = yield* onAlignSplit(rubric, kind, kept, alignRows)
      const tried = { status: "tried", kind, alignSplit, dropped, pending: false } as const
      if (best === undefined) {
        const why =
          kept.length === 0
            ? `no candidate passed the checks (${dropped.join("; ") || "none proposed"})`
            : "no candidate agreed better than the current rubric on the alignment split"
        yield* record(behavior, rubric.version, p.signalTurns!, false, null, "no-candidate", null, {
          alignSplit,
          dropped
        })
        return {
          ...tried,
          why,
          attempt: null,
          alpha: null,
          test: null,
          adopted: null
        } satisfies AlignOutcome as AlignOutcome
      }
      // The held-out test spends this attempt's share of the rubric's error budget, adopted or not.
      const attempt = p.tested! + 1
      const alpha = alphaFor(attempt)
      const version = idOf(behavior, best.criteria)
      const test = yield* onHeldOut(
        { ...rubric, version, criteria: best.criteria },
        kind,
        signals.heldOut.slice(0, perSplit),
        alpha,
        attempt
      )
      const pending = test.adopt && config.deployApproval === "manual"
      yield* record(
        behavior,
        rubric.version,
        p.signalTurns!,
        true,
        alpha,
        test.adopt ? (pending ? "pending" : "adopted") : "not-adopted",
        version,
        { alignSplit, dropped, test }
      )
      if (test.adopt) {
        yield* book.record(
          behavior,
          { version, title: rubric.title, criteria: best.criteria, source: adoptionSource(kind, test, alpha, attempt) },
          pending ? "pending" : "active"
        )
        yield* Effect.logInfo(
          `${behavior}: rubric ${version} ${pending ? "adopted, waits for `autotune rubric approve`" : "adopted"}: ${test.why}`
        )
      }
      return {
        ...tried,
        why: test.why,
        attempt,
        alpha,
        test,
        adopted: test.adopt ? version : null,
        pending
      } satisfies AlignOutcome as AlignOutcome
    })

    /** Every configured behavior, one after another; what it cost. */
    const align = Effect.fn("Aligner.align")(function* () {
      const before = usageOf(yield* runner.usage, "align:")
      const behaviors: Record<string, AlignOutcome> = {}
      for (const behavior of config.behaviors) behaviors[behavior] = yield* alignOne(behavior)
      const { calls, costUsd } = usageBetween(before, usageOf(yield* runner.usage, "align:"))
      yield* runner.ensureRunning
      return { behaviors, calls, costUsd }
    })

    /** What `once` would try, at most what it would cost (for `optimize --dry-run`). */
    const plan = Effect.fn("Aligner.plan")(function* () {
      const out: Array<AlignPlan> = []
      for (const behavior of config.behaviors) out.push(planOf(config, yield* prepare(behavior)))
      return out
    })

    return { align, plan } as const
  })
}) {}

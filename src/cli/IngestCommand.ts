/**
 * `autotune ingest`: new trace lines and reactions into the store.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { printJson, printLine } from "./Output.js"
import type { FeedbackSummary } from "../ingest/Feedback.js"
import type { IngestSummary } from "../ingest/Ingest.js"
import { ingestStage } from "../pipeline/Pipeline.js"
import { common, withApp } from "./Common.js"

export const ingestSummaryLine = (s: IngestSummary & { readonly feedback?: FeedbackSummary }) =>
  `ingest: ${s.files} file(s), ${s.lines} line(s) read, ${s.ingested} new trace(s), ${s.duplicates} duplicate(s), ` +
  `${s.malformed} malformed` +
  (s.malformed > 0
    ? ` (${Object.entries(s.malformedReasons)
        .map(([kind, n]) => `${kind}: ${n}`)
        .join(", ")}; see the malformed_lines table)`
    : "") +
  (s.pendingPartial > 0 ? `, ${s.pendingPartial} unfinished last line(s) left for the next run` : "") +
  (s.restarted > 0 ? `, ${s.restarted} file(s) re-read after truncation` : "") +
  ` (${(s.elapsedMs / 1000).toFixed(1)} s)` +
  (s.feedback === undefined || s.feedback.source === null
    ? ""
    : `; reactions: ${s.feedback.imported} new from ${s.feedback.source}${s.feedback.waitingForTrace > 0 ? `, ${s.feedback.waitingForTrace} waiting for their trace` : ""}`)

export const ingestCommand = Command.make("ingest", common, (opts) =>
  withApp(
    opts,
    Effect.gen(function* () {
      const summary = yield* ingestStage
      yield* opts.json ? printJson(summary) : printLine(ingestSummaryLine(summary))
    })
  )
).pipe(Command.withDescription("Read new DotClaw trace lines into the store (incremental, redacted, crash-safe)"))

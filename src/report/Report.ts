/**
 * `autotune report`: the figures (ReportData.ts) drawn as one self-contained HTML page (Html.ts), with the
 * chart library bundled from the installed package, written atomically beside the store.
 */
import { Clock, Effect } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { type BehaviorFaultAt, FileError } from "../Domain/Errors.js"
import { writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { renderReport, type ChartAssets } from "./Html.js"
import { reportData } from "./ReportData.js"

const require = createRequire(import.meta.url)

/** A package's root folder: its entry point resolved, then up to the package.json that names it. */
const packageRoot = (name: string) => {
  let dir = path.dirname(require.resolve(name))
  for (;;) {
    const manifest = path.join(dir, "package.json")
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === name)
      return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`cannot find the ${name} package`)
    dir = up
  }
}

/** Inside a script element, "</script" would end it; in a string or regex "<\/script" means the same. */
const inlineSafe = (code: string) => code.replace(/<\/script/gi, "<\\/script")

/** The chart library's browser bundles, read from the installed packages and inlined in every page. */
const loadAssets = Effect.try({
  try: (): ChartAssets => ({
    d3: inlineSafe(fs.readFileSync(path.join(packageRoot("d3"), "dist", "d3.min.js"), "utf8")),
    plot: inlineSafe(fs.readFileSync(path.join(packageRoot("@observablehq/plot"), "dist", "plot.umd.min.js"), "utf8"))
  }),
  catch: (cause) => new FileError({ path: "node_modules", operation: "read the chart library", detail: String(cause) })
})

export interface ReportWritten {
  readonly path: string
  readonly bytes: number
  readonly behaviors: ReadonlyArray<string>
}

/**
 * Builds the page from the store and replaces `file` atomically: a reader never sees half a report. `faults`: the
 * behaviors whose own part of this cycle failed (a cycle passes its own; else the last cycle's are read).
 */
export const writeReport = (file: string, days: number, faults?: ReadonlyArray<BehaviorFaultAt>) =>
  Effect.gen(function* () {
    const data = yield* reportData(days, yield* Clock.currentTimeMillis, faults)
    const html = renderReport(data, yield* loadAssets)
    // 0600 like the store: the page quotes stored (redacted) turns.
    yield* writeFileAtomic(file, html, MODES.private)
    return {
      path: file,
      bytes: Buffer.byteLength(html),
      behaviors: data.behaviors.map((b) => b.behavior)
    } satisfies ReportWritten
  }).pipe(Effect.withSpan("Report.write"))

import { Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeAppLayer } from "../../src/pipeline/App.js"
import { Settings, settingsFrom } from "../../src/config/Config.js"
import { type ConfigKey } from "../../src/config/Table.js"
import { DbLive } from "../../src/store/Db.js"
import type { Llm } from "../../src/llm/Llm.js"
import { UnavailableLlm } from "../../src/llm/Llm.js"
import { TraceSource } from "../../src/ingest/Ingest.js"

/** A fresh home with a trace dir, for one test. */
export const tempHome = (prefix = "autotune-test-") => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.mkdirSync(path.join(home, "traces"))
  return home
}

const homeOverrides = (home: string) => ({
  traceDir: path.join(home, "traces"),
  outputDir: path.join(home, "prompts"),
  dbPath: path.join(home, "autotune.db"),
  behaviorConfigPath: path.join(home, "behavior.json"),
  behaviorReportDir: path.join(home, "reports")
})

/** Settings (defaults plus overrides under `home`), the real SQLite store and TraceSource. */
export const appLayer = (home: string, overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const settings = settingsFrom({ ...homeOverrides(home), ...overrides }, home)
  return TraceSource.Default.pipe(
    Layer.provideMerge(DbLive.pipe(Layer.provide(settings))),
    Layer.provideMerge(settings)
  )
}

/** Every service of the application, over a mock (or no) LLM provider. */
export const fullLayer = (
  home: string,
  llm: Layer.Layer<Llm> | undefined,
  overrides: Partial<Record<ConfigKey, unknown>> = {}
) =>
  makeAppLayer(
    {},
    llm ?? UnavailableLlm("no provider in this test"),
    settingsFrom({ ...homeOverrides(home), ...overrides }, home)
  )

export { Settings }

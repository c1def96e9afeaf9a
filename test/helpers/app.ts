import { Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type ConfigKey, settingsFrom } from "../../src/Config.js"
import { makeDbLayer } from "../../src/Db.js"
import { TraceSource } from "../../src/TraceSource.js"

/** A fresh home with a trace dir, for one test. */
export const tempHome = (prefix = "autotune-test-") => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.mkdirSync(path.join(home, "traces"))
  return home
}

/** Settings (defaults plus overrides under `home`), the real SQLite store and the real services. */
export const appLayer = (home: string, overrides: Partial<Record<ConfigKey, unknown>> = {}) => {
  const settings = settingsFrom(
    {
      traceDir: path.join(home, "traces"),
      outputDir: path.join(home, "prompts"),
      dbPath: path.join(home, "autotune.db"),
      behaviorConfigPath: path.join(home, "behavior.json"),
      behaviorReportDir: path.join(home, "reports"),
      ...overrides
    },
    home
  )
  return TraceSource.Default.pipe(
    Layer.provideMerge(makeDbLayer(path.join(home, "autotune.db"))),
    Layer.provideMerge(settings)
  )
}

import { Effect, Layer } from "effect"
import { type ConfigInput, Settings, SettingsLive } from "./Config.js"
import { DbLive } from "./Db.js"
import { TraceSource } from "./TraceSource.js"

/**
 * The application's layers for one configuration. Each stage is a service; the store and settings are
 * built once and shared. Later stages join this list as they are built.
 */
export const makeAppLayer = (input: ConfigInput = {}) => {
  const settings = SettingsLive(input)
  const db = DbLive.pipe(Layer.provide(settings))
  const stages = TraceSource.Default
  return stages.pipe(Layer.provideMerge(db), Layer.provideMerge(settings))
}

/** Logs what the configuration loader wanted a person to know (a missing file, a loose file mode). */
export const logConfigWarnings = Effect.flatMap(Settings, (s) => Effect.forEach(s.warnings, (w) => Effect.logWarning(w), { discard: true }))

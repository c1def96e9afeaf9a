/**
 * The models the installed Anthropic SDK lists as deprecated, with their end-of-life dates. The SDK keeps
 * the list in a data file it does not export, so it is read by path from the installed package.
 */
import { createRequire } from "node:module"
import * as path from "node:path"
import type { AppConfig } from "../config/Table.js"
import { SETTINGS } from "../config/Table.js"
import { bareModel } from "../config/Prices.js"

const require = createRequire(import.meta.url)

// What SDK 1.12 ships, for the day a later SDK moves its list: better an old list than none.
const KNOWN_DEPRECATIONS: Readonly<Record<string, string>> = {
  "claude-sonnet-4-5": "November 30th, 2026",
  "claude-sonnet-4-5-20250929": "November 30th, 2026",
  "claude-mythos-preview": "June 30th, 2026"
}

let cached: Readonly<Record<string, string>> | undefined

export const deprecatedModels = (): Readonly<Record<string, string>> => {
  if (cached !== undefined) return cached
  try {
    const root = path.dirname(require.resolve("@anthropic-ai/sdk"))
    const data = require(path.join(root, "internal", "data", "deprecated-models.js")) as {
      DEPRECATED_MODELS?: Record<string, string>
    }
    cached = { ...KNOWN_DEPRECATIONS, ...(data.DEPRECATED_MODELS ?? {}) }
  } catch {
    cached = KNOWN_DEPRECATIONS
  }
  return cached
}

/** The model settings a person may point at a model, in the order they are worth checking. */
export const MODEL_SETTINGS = [
  "judgeStage1Model",
  "judgeStage2Model",
  "candidateModel",
  "predictorModel",
  "rerankModel",
  "behaviorEvalModel"
] as const

/** One line per configured model that the SDK lists as deprecated, naming the variable to change. */
export const deprecationWarnings = (config: AppConfig): ReadonlyArray<string> => {
  const deprecated = deprecatedModels()
  const byModel = new Map<string, Array<string>>()
  for (const key of MODEL_SETTINGS) {
    const model = config[key]
    if (model === "" || deprecated[bareModel(model)] === undefined) continue
    byModel.set(model, [...(byModel.get(model) ?? []), SETTINGS[key].env[0]!])
  }
  return [...byModel].map(
    ([model, vars]) =>
      `model ${model} is deprecated and reaches end of life on ${deprecated[bareModel(model)]}; set ${vars.join(" and ")} to a current model (the defaults are in README)`
  )
}

/**
 * The application's layers for one configuration. Each stage is a service; the store and settings are
 * built once and shared by every stage that needs them.
 */
import { Effect, Layer } from "effect"
import { type ConfigInput, Settings, SettingsLive } from "../config/Config.js"
import type { ConfigError } from "../Domain/Errors.js"
import { AnthropicLlm } from "../llm/AnthropicLlm.js"
import { BehaviorTuner } from "../behavior/BehaviorTuner.js"
import { CanaryMonitor } from "../canary/Canary.js"
import { DbLive } from "../store/Db.js"
import { Deployer } from "../canary/Deployer.js"
import { Feedback } from "../ingest/Feedback.js"
import { JudgeAgreement } from "../judge/JudgeAgreement.js"
import { Optimizer } from "../optimize/Optimize.js"
import { Aligner } from "../align/Align.js"
import { Judge } from "../judge/Judge.js"
import { Rubrics } from "../judge/RubricBook.js"
import { type Llm, LlmLive } from "../llm/Llm.js"
import { LlmRunner } from "../llm/LlmRunner.js"
import { OpenAiCompatibleLlm } from "../llm/OpenAiCompatibleLlm.js"
import { TraceSource } from "../ingest/Ingest.js"

export const makeAppLayer = (
  input: ConfigInput = {},
  llm?: Layer.Layer<Llm, never, Settings>,
  settingsLayer: Layer.Layer<Settings, ConfigError> = SettingsLive(input)
) => {
  const settings = settingsLayer
  const db = DbLive.pipe(Layer.provide(settings))
  const provider = llm ?? LlmLive({ anthropic: AnthropicLlm, openAiCompatible: OpenAiCompatibleLlm })
  const runner = LlmRunner.Default.pipe(Layer.provideMerge(provider))
  const judge = Judge.Default.pipe(Layer.provideMerge(runner))
  const deployer = Deployer.Default
  const stages = Layer.mergeAll(
    TraceSource.Default,
    Optimizer.Default,
    Aligner.Default,
    CanaryMonitor.Default,
    BehaviorTuner.Default
  ).pipe(Layer.provideMerge(Layer.mergeAll(judge, deployer, Feedback.Default, JudgeAgreement.Default)))
  // One version of each rubric for the whole run (judge/RubricBook.ts): read once, shared by every stage.
  return stages.pipe(Layer.provideMerge(Rubrics.Default), Layer.provideMerge(db), Layer.provideMerge(settings))
}

/** Logs what the configuration loader wanted a person to know (a missing file, a loose file mode). */
export const logConfigWarnings = Effect.flatMap(Settings, (s) =>
  Effect.zipRight(
    Effect.forEach(s.notes, (n) => Effect.logInfo(n), { discard: true }),
    Effect.forEach(s.warnings, (w) => Effect.logWarning(w), { discard: true })
  )
)

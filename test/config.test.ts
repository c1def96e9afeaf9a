import { describe, expect, it } from "vitest"
import { Either, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { createRequire } from "node:module"
import * as path from "node:path"
import { deprecatedModels, deprecationWarnings, MODEL_SETTINGS } from "../src/llm/Models.js"
import { bareModel, DEFAULT_PRICES } from "../src/config/Prices.js"
import { describeConfig, resolveConfig, toConfigFile, type ConfigInput } from "../src/config/Config.js"
import { CONFIG_KEYS, SETTINGS } from "../src/config/Table.js"

const home = () => fs.mkdtempSync(path.join(os.tmpdir(), "autotune-config-"))

const resolve = (input: ConfigInput) => {
  const result = resolveConfig(input)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}
const failure = (input: ConfigInput) => {
  const result = resolveConfig(input)
  if (Either.isRight(result)) throw new Error("expected a configuration error")
  return result.left
}

describe("config defaults", () => {
  it("matches the original README's defaults and moves paths with AUTOTUNE_HOME", () => {
    const h = home()
    const { config, origins } = resolve({ env: { AUTOTUNE_HOME: h } })
    expect(config.traceDir).toBe(path.join(h, "traces"))
    expect(config.outputDir).toBe(path.join(h, "prompts"))
    expect(config.dbPath).toBe(path.join(h, "autotune.db"))
    expect(config.behaviorConfigPath).toBe(path.join(h, "behavior.json"))
    expect(config.behaviorReportDir).toBe(path.join(h, "reports"))
    expect(config.behaviors).toEqual([
      "task-extraction",
      "response-quality",
      "tool-calling",
      "tool-outcome",
      "memory-policy",
      "memory-recall"
    ])
    expect(config.intervalMinutes).toBe(60)
    expect(config.canaryFraction).toBe(0.1)
    expect(config.canaryMinSamples).toBe(20)
    expect(config.canaryMinImprovement).toBe(0.02)
    expect(config.canaryHealthWindowHours).toBe(24)
    expect(config.canaryMaxErrorRate).toBe(0.12)
    expect(config.canaryMaxToolFailureRate).toBe(0.25)
    expect(config.canaryMaxErrorRateDelta).toBe(0.05)
    expect(config.canaryMaxToolFailureRateDelta).toBe(0.12)
    expect(config.candidateModel).toBe("anthropic/claude-haiku-4-5")
    expect(config.rerankModel).toBe("anthropic/claude-sonnet-5-5")
    expect(config.predictorModel).toBe("anthropic/claude-haiku-4-5")
    expect(config.judgeStage1Model).toBe("anthropic/claude-haiku-4-5")
    expect(config.judgeStage2Model).toBe("anthropic/claude-sonnet-5-5")
    expect(config.behaviorEnabled).toBe(false)
    expect(config.behaviorDays).toBe(7)
    expect(config.behaviorMinTraces).toBe(0)
    expect(config.behaviorMaxTraces).toBe(0)
    expect(config.behaviorEvalModel).toBe("")
    expect(config.behaviorEvalSamples).toBe(6)
    expect(config.behaviorPromptPacks).toBe(false)
    expect(config.behaviorCanaryPercent).toBe(20)
    expect(config.redact).toBe(true)
    expect(config.minImprovement).toBe(0.05)
    expect(config.maxFailuresSample).toBe(50)
    expect(config.maxCandidates).toBe(6)
    expect(config.sampleSize).toBe(20)
    expect(config.evalMaxTraces).toBe(200)
    expect(config.llmConcurrency).toBe(8)
    expect(config.maxCostUsd).toBe(0)
    expect(origins.canaryFraction.source).toBe("default")
  })

  it("documents every env variable the original README lists", () => {
    const envNames = CONFIG_KEYS.flatMap((k) => SETTINGS[k].env)
    for (const name of [
      "AUTOTUNE_HOME",
      "AUTOTUNE_TRACE_DIR",
      "AUTOTUNE_OUTPUT_DIR",
      "AUTOTUNE_DB_PATH",
      "AUTOTUNE_BEHAVIORS",
      "AUTOTUNE_INTERVAL_MINUTES",
      "AUTOTUNE_CANARY_FRACTION",
      "AUTOTUNE_CANARY_MIN_SAMPLES",
      "AUTOTUNE_CANARY_MIN_IMPROVEMENT",
      "AUTOTUNE_CANARY_HEALTH_WINDOW_HOURS",
      "AUTOTUNE_CANARY_MAX_ERROR_RATE",
      "AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE",
      "AUTOTUNE_CANARY_MAX_ERROR_RATE_DELTA",
      "AUTOTUNE_CANARY_MAX_TOOL_FAILURE_RATE_DELTA",
      "AUTOTUNE_CANDIDATE_MODEL",
      "AUTOTUNE_RERANK_MODEL",
      "AUTOTUNE_PREDICTOR_MODEL",
      "AUTOTUNE_JUDGE_STAGE1_MODEL",
      "AUTOTUNE_JUDGE_STAGE2_MODEL",
      "AUTOTUNE_BEHAVIOR_ENABLED",
      "AUTOTUNE_BEHAVIOR_DAYS",
      "AUTOTUNE_BEHAVIOR_MIN_TRACES",
      "AUTOTUNE_BEHAVIOR_MAX_TRACES",
      "AUTOTUNE_BEHAVIOR_EVAL_MODEL",
      "AUTOTUNE_BEHAVIOR_EVAL_SAMPLES",
      "AUTOTUNE_BEHAVIOR_PROMPT_PACKS",
      "AUTOTUNE_BEHAVIOR_CANARY_PERCENT",
      "AUTOTUNE_BEHAVIOR_CONFIG_PATH",
      "AUTOTUNE_BEHAVIOR_REPORT_DIR",
      "AUTOTUNE_REDACT",
      "OPENROUTER_API_KEY",
      "AUTOTUNE_OPENROUTER_API_KEY",
      "OPENROUTER_BASE_URL",
      "AUTOTUNE_OPENROUTER_TIMEOUT_MS",
      "AUTOTUNE_OPENROUTER_RETRIES",
      "AUTOTUNE_OPENROUTER_MIN_RETRY_DELAY_MS",
      "AUTOTUNE_OPENROUTER_MAX_RETRY_DELAY_MS",
      "AUTOTUNE_JUDGE_TEMPERATURE",
      "AUTOTUNE_JUDGE_MAX_OUTPUT_TOKENS",
      "AUTOTUNE_MIN_IMPROVEMENT",
      "AUTOTUNE_MAX_FAILURES_SAMPLE",
      "AUTOTUNE_MAX_CANDIDATES",
      "AUTOTUNE_SAMPLE_SIZE",
      "AUTOTUNE_EVAL_MAX_TRACES",
      "ANTHROPIC_API_KEY",
      "ANTHROPIC_BASE_URL",
      "AUTOTUNE_PROVIDER",
      "AUTOTUNE_LLM_CONCURRENCY",
      "AUTOTUNE_MAX_COST_USD"
    ]) {
      expect(envNames).toContain(name)
    }
    // The reference moved from README to docs/configuration.md (generated from the settings table).
    const reference = fs.readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8")
    for (const name of envNames) expect(reference, `docs/configuration.md documents ${name}`).toContain(name)
  })
})

describe("config precedence: flag > env > file > default", () => {
  const writeFile = (dir: string, body: unknown) => {
    const file = path.join(dir, "autotune.json")
    fs.writeFileSync(file, typeof body === "string" ? body : JSON.stringify(body))
    return file
  }

  it.each([
    [
      "traceDir",
      "trace-dir",
      "AUTOTUNE_TRACE_DIR",
      { traceDir: "/f/traces" },
      "/flag/traces",
      "/env/traces",
      "/f/traces"
    ],
    ["dbPath", "db-path", "AUTOTUNE_DB_PATH", { dbPath: "/f/db" }, "/flag/db", "/env/db", "/f/db"],
    [
      "outputDir",
      "output-dir",
      "AUTOTUNE_OUTPUT_DIR",
      { deploy: { outputDir: "/f/out" } },
      "/flag/out",
      "/env/out",
      "/f/out"
    ],
    ["maxCostUsd", "max-cost-usd", "AUTOTUNE_MAX_COST_USD", { llm: { maxCostUsd: 3 } }, "1", "2", 3]
  ] as const)("%s", (key, flag, envName, fileBody, flagValue, envValue, fileValue) => {
    const h = home()
    const file = writeFile(h, fileBody)
    const env = { AUTOTUNE_HOME: h, [envName]: envValue }
    const all = resolve({ configPath: file, env, flags: { [flag]: flagValue } })
    expect(String(all.config[key])).toBe(String(flagValue))
    expect(all.origins[key].source).toBe("flag")
    const noFlag = resolve({ configPath: file, env })
    expect(String(noFlag.config[key])).toBe(String(envValue))
    expect(noFlag.origins[key]).toEqual({ source: "env", name: envName })
    const fileOnly = resolve({ configPath: file, env: { AUTOTUNE_HOME: h } })
    expect(fileOnly.config[key]).toEqual(fileValue)
    expect(fileOnly.origins[key].source).toBe("file")
    const none = resolve({ env: { AUTOTUNE_HOME: path.join(h, "elsewhere") } })
    expect(none.origins[key].source).toBe("default")
  })

  it("every file-backed key is read from the file and overridden by its env variable", () => {
    const h = home()
    const defaults = resolve({ env: { AUTOTUNE_HOME: h } }).config
    const file = writeFile(h, toConfigFile(defaults))
    const fromFile = resolve({ configPath: file, env: { AUTOTUNE_HOME: h } })
    for (const key of CONFIG_KEYS) {
      if (SETTINGS[key].file === undefined) continue
      expect(fromFile.origins[key].source, key).toBe("file")
      expect(fromFile.config[key], key).toEqual(defaults[key])
    }
  })

  it("reads the nested file the original `autotune init` wrote", () => {
    const h = home()
    const file = writeFile(h, {
      openrouter: {
        apiKey: "sk-or-v1-abcdefghijklmnopqrstuvwxyz0123",
        baseUrl: "https://openrouter.ai/api/v1",
        timeoutMs: 90000,
        retries: 2,
        minRetryDelayMs: 250,
        maxRetryDelayMs: 8000
      },
      judge: {
        stage1Model: "anthropic/claude-haiku-4-5",
        stage2Model: "openai/gpt-5",
        temperature: 0.2,
        maxOutputTokens: 400
      },
      optimize: {
        minImprovement: 0.03,
        maxFailuresSample: 40,
        maxCandidates: 4,
        sampleSize: 30,
        candidateModel: "c",
        rerankModel: "r",
        predictorModel: "p"
      },
      deploy: {
        outputDir: "/srv/prompts",
        canaryFraction: 0.25,
        canaryMinSamples: 30,
        canaryMinImprovement: 0.01,
        canaryHealthWindowHours: 12,
        canaryMaxErrorRate: 0.2,
        canaryMaxToolFailureRate: 0.3,
        canaryMaxErrorRateDelta: 0.04,
        canaryMaxToolFailureRateDelta: 0.1
      },
      behavior: {
        enabled: true,
        windowDays: 3,
        minTraces: 10,
        maxTraces: 500,
        evalModel: "m",
        evalSamples: 4,
        promptPacks: true,
        canaryPercent: 15,
        reportDir: "/srv/reports",
        configPath: "/srv/behavior.json"
      },
      traceDir: "/srv/traces",
      dbPath: "/srv/autotune.db",
      intervalMinutes: 30,
      behaviors: ["tool-calling", "memory-recall"],
      redact: false,
      evalMaxTraces: 50
    })
    const { config } = resolve({ configPath: file, env: { AUTOTUNE_HOME: h } })
    expect(Redacted.value(config.openrouterApiKey)).toBe("sk-or-v1-abcdefghijklmnopqrstuvwxyz0123")
    // A secret never shows where the configuration is printed, logged or serialized; only Redacted.value reads it.
    expect(JSON.stringify(config)).not.toContain("abcdefghijklmnopqrstuvwxyz0123")
    expect(String(config.openrouterApiKey)).toBe("<redacted>")
    expect(config).toMatchObject({
      llmTimeoutMs: 90000,
      llmRetries: 2,
      llmMinRetryDelayMs: 250,
      llmMaxRetryDelayMs: 8000,
      judgeStage2Model: "openai/gpt-5",
      judgeTemperature: 0.2,
      judgeMaxOutputTokens: 400,
      minImprovement: 0.03,
      maxFailuresSample: 40,
      maxCandidates: 4,
      sampleSize: 30,
      candidateModel: "c",
      rerankModel: "r",
      predictorModel: "p",
      outputDir: "/srv/prompts",
      canaryFraction: 0.25,
      canaryMinSamples: 30,
      canaryMinImprovement: 0.01,
      canaryHealthWindowHours: 12,
      canaryMaxErrorRate: 0.2,
      canaryMaxToolFailureRate: 0.3,
      canaryMaxErrorRateDelta: 0.04,
      canaryMaxToolFailureRateDelta: 0.1,
      behaviorEnabled: true,
      behaviorDays: 3,
      behaviorMinTraces: 10,
      behaviorMaxTraces: 500,
      behaviorEvalModel: "m",
      behaviorEvalSamples: 4,
      behaviorPromptPacks: true,
      behaviorCanaryPercent: 15,
      behaviorReportDir: "/srv/reports",
      behaviorConfigPath: "/srv/behavior.json",
      traceDir: "/srv/traces",
      dbPath: "/srv/autotune.db",
      intervalMinutes: 30,
      behaviors: ["tool-calling", "memory-recall"],
      redact: false,
      evalMaxTraces: 50
    })
  })

  it("finds $AUTOTUNE_HOME/autotune.json when no path is given, and AUTOTUNE_CONFIG_PATH beats it", () => {
    const h = home()
    writeFile(h, { intervalMinutes: 15 })
    expect(resolve({ env: { AUTOTUNE_HOME: h } }).config.intervalMinutes).toBe(15)
    const other = path.join(h, "other.json")
    fs.writeFileSync(other, JSON.stringify({ intervalMinutes: 45 }))
    expect(resolve({ env: { AUTOTUNE_HOME: h, AUTOTUNE_CONFIG_PATH: other } }).config.intervalMinutes).toBe(45)
    expect(
      resolve({ configPath: path.join(h, "autotune.json"), env: { AUTOTUNE_HOME: h, AUTOTUNE_CONFIG_PATH: other } })
        .config.intervalMinutes
    ).toBe(15)
  })

  it("accepts the original's boolean spellings and treats an empty variable as unset", () => {
    const h = home()
    for (const [text, value] of [
      ["1", true],
      ["true", true],
      ["yes", true],
      ["on", true],
      ["0", false],
      ["false", false],
      ["no", false],
      ["off", false]
    ] as const) {
      expect(resolve({ env: { AUTOTUNE_HOME: h, AUTOTUNE_REDACT: text } }).config.redact).toBe(value)
    }
    expect(resolve({ env: { AUTOTUNE_HOME: h, AUTOTUNE_CANARY_FRACTION: "" } }).config.canaryFraction).toBe(0.1)
  })

  it("stops at an explicit file that does not exist, and warns about a key file others can read", () => {
    const h = home()
    const missing = resolveConfig({ env: { AUTOTUNE_HOME: h, AUTOTUNE_CONFIG_PATH: path.join(h, "nope.json") } })
    expect(Either.isLeft(missing) && missing.left.message).toContain(
      `config file (from AUTOTUNE_CONFIG_PATH ${path.join(h, "nope.json")}): does not exist`
    )
    // init is about to write it: no error there.
    expect(
      Either.isRight(
        resolveConfig({
          env: { AUTOTUNE_HOME: h, AUTOTUNE_CONFIG_PATH: path.join(h, "nope.json") },
          creatingConfig: true
        })
      )
    ).toBe(true)
    const file = writeFile(h, { anthropic: { apiKey: "sk-ant-abcdefghijklmnopqrstuvwxyz" } })
    fs.chmodSync(file, 0o644)
    expect(resolve({ configPath: file, env: { AUTOTUNE_HOME: h } }).warnings.join("\n")).toContain("chmod 600")
    fs.chmodSync(file, 0o600)
    expect(resolve({ configPath: file, env: { AUTOTUNE_HOME: h } }).warnings).toEqual([])
  })

  it("masks secrets in what it shows", () => {
    const h = home()
    const rows = describeConfig(
      resolve({
        env: {
          AUTOTUNE_HOME: h,
          ANTHROPIC_API_KEY: "sk-ant-api03-verysecretvalue123",
          OPENROUTER_API_KEY: "sk-or-v1-0123456789abcdef"
        }
      })
    )
    const text = JSON.stringify(rows)
    expect(text).not.toContain("verysecretvalue")
    expect(text).not.toContain("0123456789abcdef")
    expect(rows.find((r) => r.key === "anthropicApiKey")?.value).toBe("sk-****23")
  })
})

describe("config errors name the key and the source", () => {
  it.each([
    [{ AUTOTUNE_CANARY_FRACTION: "abc" }, "canaryFraction", "env AUTOTUNE_CANARY_FRACTION", "expected a number"],
    [{ AUTOTUNE_CANARY_FRACTION: "1.5" }, "canaryFraction", "env AUTOTUNE_CANARY_FRACTION", "at most 1"],
    [{ AUTOTUNE_CANARY_FRACTION: "0" }, "canaryFraction", "env AUTOTUNE_CANARY_FRACTION", "greater than 0"],
    [{ AUTOTUNE_INTERVAL_MINUTES: "-5" }, "intervalMinutes", "env AUTOTUNE_INTERVAL_MINUTES", "greater than 0"],
    [{ AUTOTUNE_CANARY_MIN_SAMPLES: "2.5" }, "canaryMinSamples", "env AUTOTUNE_CANARY_MIN_SAMPLES", "whole number"],
    [
      { AUTOTUNE_BEHAVIORS: "tool-calling,memory-magic" },
      "behaviors",
      "env AUTOTUNE_BEHAVIORS",
      'unknown behavior "memory-magic"'
    ],
    [{ AUTOTUNE_BEHAVIORS: " , " }, "behaviors", "env AUTOTUNE_BEHAVIORS", "at least one"],
    [{ AUTOTUNE_REDACT: "maybe" }, "redact", "env AUTOTUNE_REDACT", "expected 1/0"],
    [{ AUTOTUNE_PROVIDER: "bedrock" }, "provider", "env AUTOTUNE_PROVIDER", "anthropic"],
    [{ ANTHROPIC_BASE_URL: "not a url" }, "anthropicBaseUrl", "env ANTHROPIC_BASE_URL", "http(s) URL"],
    [{ AUTOTUNE_MAX_COST_USD: "-1" }, "maxCostUsd", "env AUTOTUNE_MAX_COST_USD", "0 (no limit) or more"]
  ])("%o", (env, key, source, detail) => {
    const h = home()
    const error = failure({ env: { AUTOTUNE_HOME: h, ...env } })
    expect(error.key).toBe(key)
    expect(error.source).toBe(source)
    expect(error.message).toContain(detail)
  })

  it("rejects a flag value the same way", () => {
    const error = failure({ env: { AUTOTUNE_HOME: home() }, flags: { "max-cost-usd": "lots" } })
    expect(error.source).toBe("flag --max-cost-usd")
  })

  it("rejects a config file that is not JSON, or holds a bad value", () => {
    const h = home()
    const file = path.join(h, "autotune.json")
    fs.writeFileSync(file, "{ not json")
    const notJson = failure({ configPath: file, env: { AUTOTUNE_HOME: h } })
    expect(notJson.key).toBe("config file")
    expect(notJson.message).toContain("not valid JSON")
    fs.writeFileSync(file, JSON.stringify({ deploy: { canaryFraction: 3 } }))
    const bad = failure({ configPath: file, env: { AUTOTUNE_HOME: h } })
    expect(bad.key).toBe("canaryFraction")
    expect(bad.source).toBe(`file ${file}: deploy.canaryFraction`)
    fs.writeFileSync(file, JSON.stringify({ behaviors: ["nope"] }))
    expect(failure({ configPath: file, env: { AUTOTUNE_HOME: h } }).message).toContain('unknown behavior "nope"')
  })
})

describe("model defaults", () => {
  it("none is on the installed Anthropic SDK's deprecation list, read from the SDK itself", () => {
    const require = createRequire(import.meta.url)
    // The SDK's own data file, read independently of src/llm/Models.ts.
    const sdkFile = path.join(
      path.dirname(require.resolve("@anthropic-ai/sdk")),
      "internal",
      "data",
      "deprecated-models.js"
    )
    const sdkList = (require(sdkFile) as { DEPRECATED_MODELS: Record<string, string> }).DEPRECATED_MODELS
    expect(Object.keys(sdkList).length).toBeGreaterThan(0)
    expect(deprecatedModels()).toMatchObject(sdkList)
    const config = resolve({ env: { AUTOTUNE_HOME: home() } }).config
    for (const key of MODEL_SETTINGS) {
      const model = config[key]
      if (model === "") continue
      expect(sdkList[bareModel(model)], `${key} = ${model}`).toBeUndefined()
      // Every default has a price: its cost is never "unknown".
      expect(DEFAULT_PRICES[bareModel(model)], `${key} = ${model}`).toBeDefined()
    }
    expect(deprecationWarnings(config)).toEqual([])
  })

  it("a deprecated model in a user's config keeps working and gets one line naming its variables", () => {
    const config = resolve({
      env: {
        AUTOTUNE_HOME: home(),
        AUTOTUNE_JUDGE_STAGE2_MODEL: "anthropic/claude-sonnet-4-5",
        AUTOTUNE_RERANK_MODEL: "anthropic/claude-sonnet-4-5"
      }
    }).config
    const lines = deprecationWarnings(config)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /claude-sonnet-4-5 is deprecated and reaches end of life on November 30th, 2026; set AUTOTUNE_JUDGE_STAGE2_MODEL and AUTOTUNE_RERANK_MODEL/
    )
  })
})

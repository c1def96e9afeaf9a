/**
 * The typed errors every layer shares, each with what a person should read and the exit code it maps to, and
 * the failure domains that keep one behavior's fault from stopping the others.
 */
import { Cause, Effect, Option, Schema } from "effect"

/** A configuration value that is missing, malformed or out of range. Exit code 2. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  key: Schema.String,
  source: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid configuration: ${this.key} (from ${this.source}): ${this.detail}`
  }
}

/** The store could not be opened, migrated or written. `path` and `saved` are filled in where they are known. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  detail: Schema.String,
  path: Schema.optional(Schema.String),
  /** What was and was not saved, in words: the user must know whether anything was lost. */
  saved: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const where = this.path === undefined ? "" : ` (${this.path})`
    const saved = this.saved === undefined ? "" : `; ${this.saved}`
    return `database error during ${this.operation}${where}: ${this.detail}${saved}`
  }
}

/** A file or directory could not be read or written. */
export class FileError extends Schema.TaggedError<FileError>()("FileError", {
  path: Schema.String,
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.detail}`
  }
}

/** What was typed cannot be run as it stands (an unknown command or option, a missing value): exit 2. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** Another autotune run holds the run lock. */
export class LockBusy extends Schema.TaggedError<LockBusy>()("LockBusy", {
  path: Schema.String,
  holderPid: Schema.Number
}) {
  override get message(): string {
    return `another autotune run (pid ${this.holderPid}) is in progress (lock ${this.path}); try again when it finishes`
  }
}

/** An LLM stage was asked for but no provider is configured. */
export class LlmUnavailable extends Schema.TaggedError<LlmUnavailable>()("LlmUnavailable", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** A stage finished but part of its work failed; the run reports it and exits non-zero. */
export class StageFailed extends Schema.TaggedError<StageFailed>()("StageFailed", {
  stage: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.stage}: ${this.detail}`
  }
}

/**
 * The LLM stages of this run were stopped: a failure the user must fix (a rejected key, an unknown model, a
 * request the provider refuses for our settings), or a provider failing again and again (the circuit breaker).
 * `detail` is the one line a person reads; the next run starts afresh.
 */
export class LlmStopped extends Schema.TaggedError<LlmStopped>()("LlmStopped", {
  kind: Schema.Literal("config", "provider"),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * Faults every behavior shares: the store, the configuration, the LLM stages stopped (a rejected key, the circuit
 * breaker). They stop a stage once, as they always did; anything else that goes wrong while one behavior is worked
 * on (its pack file cannot be written, its optimizer run fails, a bug on its path) is that behavior's alone.
 */
const SHARED_FAULTS: ReadonlySet<string> = new Set(["StoreError", "ConfigError", "LlmStopped", "LlmUnavailable"])

/** One behavior's fault in a stage: reported for it, while the stage goes on with the other behaviors. */
export interface BehaviorFault {
  readonly fault: string
}

/** One behavior's own fault in a stage of a cycle, as the cycle reports it. */
export interface BehaviorFaultAt {
  readonly stage: string
  readonly behavior: string
  readonly fault: string
}

export const isBehaviorFault = (value: unknown): value is BehaviorFault =>
  typeof value === "object" &&
  value !== null &&
  "fault" in value &&
  typeof (value as { fault: unknown }).fault === "string"

/**
 * Runs one behavior's part of a stage in its own failure domain: its own fault comes back as a BehaviorFault (the
 * cycle reports it in its one error line, pipeline/Pipeline.ts); a shared fault and interruption go on as they are.
 */
export const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A | BehaviorFault, E, R> =>
  Effect.catchAllCause(effect, (cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const tag = (failure.value as { _tag?: unknown } | null)?._tag
      if (typeof tag === "string" && SHARED_FAULTS.has(tag)) return Effect.failCause(cause)
    }
    const detail = Option.match(failure, {
      onSome: (e) => (e as { message?: string } | null)?.message ?? String(e),
      onNone: () => Cause.pretty(cause).split("\n")[0] ?? "failed"
    })
    return Effect.succeed<BehaviorFault>({ fault: detail })
  })

/**
 * The judge's rubrics as data. The built-in rubric of each behavior (Prompts.ts) is its first version; an
 * operator's own file (AUTOTUNE_RUBRICS_PATH) adds a version whenever its text changes; `autotune rubric
 * rollback` goes back one. The store keeps every version and which one is active; each command and cycle reads
 * the active ones once, at its start, so one run never mixes two versions of a rubric.
 */
import { adoptFileRubric, recordRubric, rejectRubric, rollBackRubric, storedRubrics } from "../store/RubricVersions.js"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { Settings } from "../config/Config.js"
import { BEHAVIORS, type Behavior, isBehavior } from "../Domain/Behavior.js"
import { ConfigError } from "../Domain/Errors.js"
import { redactText } from "../privacy/Redactor.js"
import { type Rubric, RUBRICS } from "./Prompts.js"

export interface RubricVersion {
  readonly behavior: Behavior
  readonly version: string
  readonly title: string
  readonly criteria: string
  /** "built-in", "file" (the operator's), or how it came to be ("aligned: ..."). */
  readonly source: string
  /** "pending": adopted by alignment, waiting for the operator (AUTOTUNE_DEPLOY_APPROVAL=manual); "rejected": refused. */
  readonly status: "active" | "retired" | "rolled_back" | "pending" | "rejected"
  readonly createdAt: number | null
}

const MAX_CRITERIA = 2000

/** The operator's rubric file, checked: every problem is one line naming the behavior and what is wrong. */
export const parseRubricFile = (
  text: string
): {
  readonly rubrics: Partial<Record<Behavior, { title: string; criteria: string }>>
  readonly problems: ReadonlyArray<string>
} => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { rubrics: {}, problems: [`not valid JSON (${e instanceof Error ? e.message : String(e)})`] }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { rubrics: {}, problems: ['must be a JSON object: {"<behavior>": {"criteria": "..."}}'] }
  const problems: Array<string> = []
  const rubrics: Partial<Record<Behavior, { title: string; criteria: string }>> = {}
  for (const [key, entry] of Object.entries(value)) {
    if (!isBehavior(key)) {
      problems.push(`"${key}" is not a behavior (one of ${BEHAVIORS.join(", ")})`)
      continue
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push(`${key}: must be an object with "criteria"`)
      continue
    }
    const e = entry as Record<string, unknown>
    for (const k of Object.keys(e))
      if (k !== "criteria" && k !== "title") problems.push(`${key}: unknown key "${k}" (only "criteria" and "title")`)
    const criteria = e["criteria"]
    const title = e["title"] ?? RUBRICS[key].title
    if (typeof criteria !== "string" || criteria.trim().length < 20)
      problems.push(`${key}: "criteria" must be the rubric's text (at least 20 characters)`)
    else if (criteria.length > MAX_CRITERIA)
      problems.push(`${key}: "criteria" is ${criteria.length} characters; at most ${MAX_CRITERIA}`)
    else if (redactText(criteria) !== criteria)
      problems.push(`${key}: "criteria" holds what looks like a secret or personal data; rubrics are sent to the judge`)
    if (typeof title !== "string" || title.trim().length === 0 || title.length > 80)
      problems.push(`${key}: "title" must be 1-80 characters`)
    if (typeof criteria === "string" && typeof title === "string" && !problems.some((p) => p.startsWith(`${key}:`)))
      rubrics[key] = { title: title.trim(), criteria: criteria.trim() }
  }
  return { rubrics, problems }
}

/** A version named for its text: the same file text is the same version on every host. */
export const fileVersion = (behavior: Behavior, criteria: string, title: string) =>
  `${behavior}@file-${createHash("sha256").update(`${title}\n${criteria}`).digest("hex").slice(0, 8)}`

const builtIn = (behavior: Behavior): RubricVersion => ({
  ...RUBRICS[behavior],
  source: "built-in",
  status: "active",
  createdAt: null
})

export class Rubrics extends Effect.Service<Rubrics>()("autotune/Rubrics", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings

    // The operator's file: a new text becomes the active version (once; a version rolled back stays back).
    if (config.rubricsPath !== "") {
      const text = yield* Effect.try({
        try: () => fs.readFileSync(config.rubricsPath, "utf8"),
        catch: (e) =>
          new ConfigError({
            key: "rubricsPath",
            source: "AUTOTUNE_RUBRICS_PATH",
            detail: `cannot read ${config.rubricsPath}: ${e instanceof Error ? e.message : String(e)}`
          })
      })
      const { rubrics, problems } = parseRubricFile(text)
      if (problems.length > 0) {
        if (problems.length > 1) for (const p of problems) yield* Effect.logError(`${config.rubricsPath}: ${p}`)
        return yield* new ConfigError({
          key: "rubricsPath",
          source: "AUTOTUNE_RUBRICS_PATH",
          detail:
            problems.length === 1
              ? `${config.rubricsPath}: ${problems[0]}`
              : `${problems.length} problems in ${config.rubricsPath}, each on a line above`
        })
      }
      for (const [behavior, r] of Object.entries(rubrics) as Array<[Behavior, { title: string; criteria: string }]>) {
        const version = fileVersion(behavior, r.criteria, r.title)
        yield* adoptFileRubric(sql, behavior, { version, title: r.title, criteria: r.criteria })
      }
    }

    const rows = yield* storedRubrics(sql)
    const versions = rows.flatMap((r): Array<RubricVersion> =>
      isBehavior(r.behavior) ? [{ ...r, behavior: r.behavior }] : []
    )
    const current = Object.fromEntries(
      BEHAVIORS.map((b) => {
        const active = versions.find((v) => v.behavior === b && v.status === "active")
        return [
          b,
          active === undefined
            ? RUBRICS[b]
            : ({
                ...RUBRICS[b],
                version: active.version,
                title: active.title,
                criteria: active.criteria
              } satisfies Rubric)
        ]
      })
    ) as Record<Behavior, Rubric>

    /** Every version of a behavior's rubric, oldest first: the built-in one, then the store's. */
    const history = (behavior: Behavior): ReadonlyArray<RubricVersion> => {
      const stored = versions.filter((v) => v.behavior === behavior)
      return [
        { ...builtIn(behavior), status: stored.some((v) => v.status === "active") ? "retired" : "active" },
        ...stored
      ]
    }

    /** Back one version: the active one is rolled back, the one before it (or the built-in rubric) is active again. */
    const rollback = (behavior: Behavior) =>
      Effect.gen(function* () {
        const all = history(behavior)
        const at = all.findIndex((v) => v.status === "active")
        if (at <= 0)
          return yield* new ConfigError({
            key: "behavior",
            source: "argument",
            detail: `${behavior} uses its built-in rubric (${RUBRICS[behavior].version}); there is no earlier version to go back to`
          })
        const from = all[at]!
        const to =
          all
            .slice(0, at)
            .reverse()
            .find((v) => v.status === "retired") ?? all[0]!
        yield* rollBackRubric(sql, behavior, from.version, to.createdAt === null ? undefined : to.version)
        return { behavior, from: from.version, to: to.version }
      })

    /** A new version of a behavior's rubric: active at once (the next run reads it), or pending the operator's approval. */
    const record = (
      behavior: Behavior,
      v: { readonly version: string; readonly title: string; readonly criteria: string; readonly source: string },
      status: "active" | "pending"
    ) => recordRubric(sql, behavior, v, status)

    /** The version that waits for the operator, if any. */
    const pending = (behavior: Behavior) => versions.find((v) => v.behavior === behavior && v.status === "pending")

    /** The operator's word on a pending version: approved, it becomes the active one; rejected, it never is. */
    const decidePending = (behavior: Behavior, approve: boolean) =>
      Effect.gen(function* () {
        const p = pending(behavior)
        if (p === undefined)
          return yield* new ConfigError({
            key: "behavior",
            source: "argument",
            detail: `no rubric of ${behavior} waits for approval (see \`autotune rubric show ${behavior}\`)`
          })
        if (approve) yield* record(behavior, p, "active")
        else yield* rejectRubric(sql, behavior, p.version)
        return { behavior, version: p.version, approved: approve }
      })

    return { current, history, rollback, record, pending, decidePending } as const
  })
}) {}

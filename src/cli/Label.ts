/**
 * `autotune label`: a person grades judged turns, one key a turn, so the judge can be measured against them.
 * Also `--export FILE` (the turns to grade, as stored and redacted, for grading elsewhere) and `--import FILE`
 * (the grades back). Each grade is stored at once: quitting loses nothing, the next session resumes.
 */
import { turnExists } from "../store/Traces.js"
import { storeGrades } from "../store/Reactions.js"
import { SqlClient } from "@effect/sql"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as readline from "node:readline"
import { Settings } from "../config/Config.js"
import type { Behavior } from "../Domain/Behavior.js"
import { FileError, UsageError } from "../Domain/Errors.js"
import {
  exportLine,
  gradedCount,
  type ImportedGrade,
  labelQueue,
  type LabelTurn,
  parseImportLine,
  removeGrade,
  storeGrade
} from "../judge/Labels.js"
import { Rubrics } from "../judge/RubricBook.js"
import { describeFsError, writeFileAtomic } from "../store/Files.js"
import { MODES } from "../store/FileModes.js"
import { shownLines } from "./Output.js"

const NO_TTY =
  'autotune label grades turns in a terminal; to grade elsewhere: autotune label --export turns.jsonl, set each line\'s "grade" to 1-5, then autotune label --import turns.jsonl'

// Conversation text is shown, never obeyed: an escape sequence in a stored message cannot redraw the screen.
const clip = (text: string, max: number) =>
  shownLines(text.length <= max ? text : `${text.slice(0, max)} … (${text.length - max} more characters)`)

const screenOf = (t: LabelTurn, position: { readonly graded: number; readonly left: number }) =>
  [
    "\x1b[2J\x1b[H",
    `autotune label · ${t.behavior} · ${position.graded} graded, ${position.left} to go · offered because: ${t.why}${t.reaction === null ? "" : ` (user: ${t.reaction === "negative" ? "thumbs down" : "thumbs up"})`}`,
    "",
    "── message ──",
    clip(t.message, 1500),
    "",
    "── reply ──",
    clip(t.reply, 2000),
    "",
    `tools: ${shownLines(t.tools)}`,
    `judge: ${t.score.toFixed(2)}${t.stage2 === null ? "" : ` (stage 1 ${t.stage1?.toFixed(2) ?? "-"}, stage 2 ${t.stage2.toFixed(2)})`}: ${clip(t.reason, 300)}`,
    "",
    "grade 1 (bad) .. 5 (excellent) · s skip · u undo · q quit"
  ].join("\n")

/** One key from the terminal, in raw mode. */
const nextKey = (input: NodeJS.ReadStream) =>
  Effect.async<string>((resume) => {
    const onKey = (str: string | undefined, key: { readonly name?: string; readonly ctrl?: boolean } | undefined) => {
      input.off("keypress", onKey)
      resume(Effect.succeed(key?.ctrl === true && key.name === "c" ? "q" : (str ?? key?.name ?? "")))
    }
    input.on("keypress", onKey)
    return Effect.sync(() => input.off("keypress", onKey))
  })

/** The interactive session over each behavior in turn; returns how many grades it stored per behavior. */
export const labelSession = (behaviors: ReadonlyArray<Behavior>) =>
  Effect.gen(function* () {
    const input = process.stdin
    if (input.isTTY !== true || process.stdout.isTTY !== true) return yield* new UsageError({ detail: NO_TTY })
    const sql = yield* SqlClient.SqlClient
    const rubrics = (yield* Rubrics).current
    readline.emitKeypressEvents(input)
    input.setRawMode(true)
    input.resume()
    const stored: Record<string, number> = {}
    const session = Effect.gen(function* () {
      for (const behavior of behaviors) {
        const rubric = rubrics[behavior]
        const queue = yield* labelQueue(sql, rubric, 500)
        const done: Array<{ readonly turn: LabelTurn; readonly grade: number | null }> = []
        let graded = yield* gradedCount(sql, rubric)
        for (let i = 0; i < queue.length;) {
          const turn = queue[i]!
          process.stdout.write(screenOf(turn, { graded, left: queue.length - i }))
          const key = yield* nextKey(input)
          if (key === "q") return
          if (key === "u") {
            const last = done.pop()
            if (last === undefined) continue
            if (last.grade !== null) {
              yield* removeGrade(sql, last.turn.traceId, rubric)
              graded--
              stored[behavior] = (stored[behavior] ?? 0) - 1
            }
            i--
          } else if (key === "s") {
            done.push({ turn, grade: null })
            i++
          } else if (/^[1-5]$/.test(key)) {
            yield* storeGrade(sql, turn.traceId, rubric, Number(key), "terminal")
            done.push({ turn, grade: Number(key) })
            graded++
            stored[behavior] = (stored[behavior] ?? 0) + 1
            i++
          }
        }
      }
    })
    yield* session.pipe(
      Effect.ensuring(
        Effect.sync(() => {
          input.setRawMode(false)
          input.pause()
          process.stdout.write("\x1b[2J\x1b[H")
        })
      )
    )
    return stored
  })

/** `--export FILE`: every judged turn of the behaviors (current rubric), graded or not, most useful first; 0600. */
export const exportTurns = (behaviors: ReadonlyArray<Behavior>, file: string, limit: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rubrics = (yield* Rubrics).current
    const lines: Array<string> = []
    let graded = 0
    for (const behavior of behaviors) {
      const turns = yield* labelQueue(sql, rubrics[behavior], limit, { includeGraded: true })
      graded += turns.filter((t) => t.grade !== null).length
      lines.push(...turns.map(exportLine))
    }
    yield* writeFileAtomic(file, lines.length === 0 ? "" : `${lines.join("\n")}\n`, MODES.private)
    return { file, turns: lines.length, graded }
  })

/**
 * `--import FILE`: each line's grade is stored for the behavior's current rubric; a line that is not a grade
 * of a stored turn is refused with one line naming it, and nothing of it is stored.
 */
export const importGrades = (file: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { config } = yield* Settings
    const rubrics = (yield* Rubrics).current
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) => new FileError({ path: file, operation: "read", detail: describeFsError(e) })
    })
    const refused: Array<string> = []
    const grades: Array<ImportedGrade> = []
    let ungraded = 0
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line.length === 0) continue
      const parsed = parseImportLine(line)
      if (Either.isLeft(parsed)) refused.push(`line ${i + 1}: ${parsed.left}`)
      else if (parsed.right === "ungraded") ungraded++
      else if (!config.behaviors.includes(parsed.right.behavior))
        refused.push(`line ${i + 1}: ${parsed.right.behavior} is not in AUTOTUNE_BEHAVIORS`)
      else {
        if (!(yield* turnExists(sql, parsed.right.traceId)))
          refused.push(
            `line ${i + 1}: no turn ${parsed.right.traceId} in the store (pruned by retention, or from another store)`
          )
        else grades.push(parsed.right)
      }
    }
    yield* storeGrades(
      sql,
      grades.map((g) => ({
        traceId: g.traceId,
        behavior: g.behavior,
        rubricVersion: rubrics[g.behavior].version,
        grade: g.grade,
        source: "import"
      }))
    )
    return { file, imported: grades.length, ungraded, refused }
  })

#!/usr/bin/env node
/**
 * Part of `npm run lint`: the shape of the house (docs/architecture.md), checked on the sources so it stays true.
 *
 * 1. Rooms in layers. Each folder under src/ may import only from itself and from the folders listed before it
 *    in LAYERS; the files at src/ itself (bin.ts, index.ts) sit on top. Type-only imports count: a type is a
 *    dependency too. No cycles between files either.
 * 2. Each capability folder has a service file named for it whose first comment says what the folder does and,
 *    on a line "May import: …", exactly the folders this rule lets it import.
 * 3. Short services: the constructor of every service (Effect.Service's `effect`/`scoped`, Layer.effect's
 *    generator) is at most MAX_CONSTRUCTOR_LINES long; its parts are named functions in their own files.
 */
import fs from "node:fs"
import path from "node:path"
import ts from "typescript"

export const LAYERS = [
  "Domain",
  "config",
  "privacy",
  "store",
  "llm",
  "ingest",
  "judge",
  "canary",
  "optimize",
  "align",
  "behavior",
  "report",
  "pipeline",
  "observe",
  "cli"
]
const CAPABILITIES = {
  ingest: "Ingest.ts",
  judge: "Judge.ts",
  canary: "Canary.ts",
  optimize: "Optimize.ts",
  behavior: "BehaviorTuner.ts"
}
const MAX_CONSTRUCTOR_LINES = 150

// `--root DIR`: check another tree laid out like src/ (the test of this check does).
const rootAt = process.argv.indexOf("--root")
const SRC = path.resolve(rootAt > 0 ? process.argv[rootAt + 1] : "src")
const walk = (dir) =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []
    )
const files = walk(SRC)
const roomOf = (file) => {
  const rel = path.relative(SRC, file).split(path.sep)
  return rel.length === 1 ? null : rel[0]
}
const rank = (room) => (room === null ? LAYERS.length : LAYERS.indexOf(room))
const problems = []

for (const file of files) {
  const room = roomOf(file)
  if (room !== null && rank(room) < 0)
    problems.push(
      `${path.relative(".", file)}: src/${room}/ is not a room of LAYERS in scripts/check-house.mjs; add it where it belongs`
    )
}

// 1. Imports run downward, and no file imports itself round a cycle.
const graph = new Map()
for (const file of files) {
  const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true)
  const targets = []
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith(".")) continue
    const target = path.resolve(path.dirname(file), fileName.replace(/\.js$/, ".ts"))
    targets.push(target)
    const from = roomOf(file)
    const to = roomOf(target)
    if (from !== to && rank(to) >= rank(from)) {
      problems.push(
        `${path.relative(".", file)} imports ${path.relative(".", target)}: src/${from ?? "."} may not import from src/${to ?? "."} (LAYERS in scripts/check-house.mjs)`
      )
    }
  }
  graph.set(file, targets)
}
const state = new Map()
const visit = (file, trail) => {
  if (state.get(file) === "done") return
  if (state.get(file) === "open") {
    const cycle = trail
      .slice(trail.indexOf(file))
      .concat(file)
      .map((f) => path.relative(".", f))
    problems.push(`import cycle: ${cycle.join(" -> ")}`)
    return
  }
  state.set(file, "open")
  for (const next of graph.get(file) ?? []) visit(next, [...trail, file])
  state.set(file, "done")
}
for (const file of files) visit(file, [])

// 2. The capability folders' front files.
for (const [room, front] of Object.entries(CAPABILITIES)) {
  const file = path.join(SRC, room, front)
  if (!fs.existsSync(file)) {
    problems.push(`src/${room}/${front} is missing: each capability folder has a service file named for it`)
    continue
  }
  const text = fs.readFileSync(file, "utf8")
  const comment = /\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? ""
  const importsBefore = text.slice(0, comment === "" ? 0 : text.indexOf(comment)).trim()
  const line = /May import: ([^\n]*)/.exec(comment)?.[1]
  const allowed = LAYERS.slice(0, rank(room)).join(", ")
  if (comment === "" || importsBefore !== "")
    problems.push(`src/${room}/${front}: its first lines must be a comment saying what the folder does`)
  else if (line?.replace(/\.$/, "").trim() !== allowed)
    problems.push(
      `src/${room}/${front}: the first comment's "May import:" line must read "${allowed}" (found ${JSON.stringify(line ?? null)})`
    )
}

// 3. Service constructors are short.
const constructorsOf = (source) => {
  const found = []
  const isGen = (n) =>
    ts.isCallExpression(n) &&
    n.expression.getText(source) === "Effect.gen" &&
    n.arguments.length === 1 &&
    ts.isFunctionExpression(n.arguments[0])
  const visitNode = (node) => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText(source)
      if (/^Layer\.(effect|scoped)$/.test(callee)) {
        for (const arg of node.arguments)
          if (isGen(arg)) found.push({ name: node.arguments[0].getText(source), gen: arg })
      }
      if (
        /^Effect\.Service</.test(callee) ||
        (ts.isCallExpression(node.expression) && /^Effect\.Service</.test(node.expression.expression.getText(source)))
      ) {
        const spec = node.arguments.find(ts.isObjectLiteralExpression)
        const name = node.arguments.find(ts.isStringLiteral)?.text ?? "service"
        for (const prop of spec?.properties ?? []) {
          if (
            ts.isPropertyAssignment(prop) &&
            /^(effect|scoped)$/.test(prop.name.getText(source)) &&
            isGen(prop.initializer)
          )
            found.push({ name, gen: prop.initializer })
        }
      }
    }
    ts.forEachChild(node, visitNode)
  }
  visitNode(source)
  return found
}
const sizes = []
for (const file of files) {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  for (const { name, gen } of constructorsOf(source)) {
    const body = gen.arguments[0].body
    const lines =
      source.getLineAndCharacterOfPosition(body.getEnd()).line -
      source.getLineAndCharacterOfPosition(body.getStart(source)).line +
      1
    sizes.push({ where: `${path.relative(".", file)} ${name}`, lines })
    if (lines > MAX_CONSTRUCTOR_LINES)
      problems.push(
        `${path.relative(".", file)}: the constructor of ${name} is ${lines} lines (at most ${MAX_CONSTRUCTOR_LINES}); move its parts into named functions beside it`
      )
  }
}

if (process.argv.includes("--sizes"))
  for (const s of sizes.sort((a, b) => b.lines - a.lines)) console.log(String(s.lines).padStart(5), s.where)
if (problems.length > 0) {
  for (const p of problems) console.error(p)
  process.exit(1)
}
console.log(
  `check-house: ${files.length} files in ${LAYERS.length} rooms, imports downward, no cycles, ${sizes.length} service constructors of at most ${MAX_CONSTRUCTOR_LINES} lines`
)

#!/usr/bin/env node
/**
 * Part of `npm run lint`: SQL lives under src/store/ only (docs/architecture.md, "The store"). Outside it, no
 * file may build a query (a `sql` tagged template or its helpers), hold SQL text, use the store's dialect
 * helpers that write SQL, or JSON.parse a stored JSON column (a `…Json` value): capabilities ask the store's
 * modules, which return rows decoded by their schemas.
 */
import fs from "node:fs"
import path from "node:path"
import ts from "typescript"

const rootAt = process.argv.indexOf("--root")
const SRC = path.resolve(rootAt > 0 ? process.argv[rootAt + 1] : "src")
const STORE = path.join(SRC, "store")
/**
 * The one place outside store/ allowed SQL text, and why: config/ sits below store/ in the house, and deciding
 * which store a first run uses (a legacy store counts only when it holds traces) happens before any store is open.
 */
const ALLOWED_TEXT = new Set([path.join(SRC, "config", "DotClaw.ts")])

const SQL_TEXT =
  /\b(SELECT\s[\s\S]*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|DELETE\s+FROM\b|UPDATE\s+\w+\s+SET\b|CREATE\s+(TABLE|INDEX|TRIGGER)\b|ALTER\s+TABLE\b)/
const SQL_HELPERS = new Set([
  "unsafe",
  "literal",
  "in",
  "insert",
  "update",
  "join",
  "and",
  "or",
  "reserve",
  "onDialect",
  "onDialectOrElse"
])
const WRITING_HELPERS = new Set([
  "upsert",
  "insertIgnore",
  "orderedJoin",
  "jsonField",
  "jsonArrayLength",
  "rewriteTables",
  "giveBackSpace",
  "storageOrder"
])

const walk = (dir) =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []
    )
const problems = []

for (const file of walk(SRC)) {
  if (file.startsWith(STORE + path.sep)) continue
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  const at = (node, what) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart())
    problems.push(`${path.relative(".", file)}:${line + 1}: ${what}; ask a module of src/store/ instead`)
  }
  const isSql = (e) => ts.isIdentifier(e) && e.text === "sql"
  const visit = (node) => {
    if (ts.isTaggedTemplateExpression(node) && isSql(node.tag)) at(node, "a query built outside the store")
    else if (ts.isPropertyAccessExpression(node) && isSql(node.expression) && SQL_HELPERS.has(node.name.text))
      at(node, `sql.${node.name.text} outside the store`)
    else if (
      (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node)) &&
      SQL_TEXT.test(node.text) &&
      !ALLOWED_TEXT.has(file)
    )
      at(node, "SQL text outside the store")
    else if (ts.isImportDeclaration(node) && /\/store\/Dialect\.js$/.test(node.moduleSpecifier.text)) {
      for (const el of node.importClause?.namedBindings?.elements ?? [])
        if (WRITING_HELPERS.has(el.name.text)) at(el, `${el.name.text} (writes SQL) imported outside the store`)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.getText(source) === "JSON.parse" &&
      node.arguments.length > 0 &&
      /Json\b|_json\b/.test(node.arguments[0].getText(source))
    ) {
      at(node, "a stored JSON column parsed outside the store")
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
}

if (problems.length > 0) {
  for (const p of problems) console.error(p)
  console.error(`check-sql: ${problems.length} problem(s)`)
  process.exit(1)
}
console.log("check-sql: SQL only under src/store/")

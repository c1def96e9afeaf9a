#!/usr/bin/env node
/**
 * Part of `npm run lint`: every regular expression the redactor and the trace parser export (each rule's
 * pattern, the key-name patterns, and any other RegExp in those modules) is checked with recheck, a static
 * ReDoS checker. The redactor reads whatever users paste, so a pattern whose matching time can grow faster
 * than its input (polynomial or exponential backtracking) fails the lint, with the attack string recheck
 * found. Runs on the sources (bundled by esbuild in memory), so it needs no build first.
 */
import { build } from "esbuild"
import { check } from "recheck"

const MODULES = [
  "src/privacy/Rules.ts",
  "src/privacy/Redactor.ts",
  "src/privacy/Checks.ts",
  "src/privacy/EgressGuard.ts",
  "src/Domain/Xml.ts",
  "src/ingest/Parse.ts",
  "src/judge/Addressed.ts",
  "src/optimize/Provenance.ts"
]

const entry = MODULES.map((m, i) => `export * as m${i} from "./${m}"`).join("\n")
const bundled = await build({
  stdin: { contents: entry, resolveDir: process.cwd(), loader: "ts" },
  bundle: true,
  write: false,
  format: "esm",
  platform: "node",
  logLevel: "silent"
})
const modules = await import(
  `data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`
)

/** Every RegExp reachable from the modules' exports, named by where it was found. */
const found = new Map()
const walk = (value, name, seen) => {
  if (value instanceof RegExp) {
    const key = `/${value.source}/${value.flags}`
    if (!found.has(key)) found.set(key, { name, regex: value })
    return
  }
  if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) return
  seen.add(value)
  if (typeof value === "function") return
  for (const [k, v] of Object.entries(value))
    walk(
      v,
      /^\d+$/.test(k) && typeof v === "object" && v !== null && "name" in v ? `${name}[${v.name}]` : `${name}.${k}`,
      seen
    )
}
const seen = new Set()
for (const [i, mod] of Object.entries(modules))
  for (const [k, v] of Object.entries(mod)) walk(v, `${MODULES[Number(i.slice(1))]}:${k}`, seen)

const started = Date.now()
// One at a time, with a fixed seed: recheck proves what its automaton can and fuzzes the rest (counted
// repetitions), and the fuzzer's verdict depends on its time budget when several share the machine.
const results = []
for (const { name, regex } of found.values())
  results.push({ name, regex, result: await check(regex.source, regex.flags, { timeout: 60_000, randomSeed: 1 }) })
const bad = results.filter((r) => r.result.status !== "safe")
for (const { name, regex, result } of bad) {
  const why =
    result.status === "vulnerable"
      ? `${result.complexity.type} backtracking, e.g. on ${JSON.stringify(result.attack.pattern ?? result.attack.string).slice(0, 120)}`
      : `could not be proven safe (${result.error?.kind ?? result.status})`
  console.error(`redos: ${name} ${String(regex).slice(0, 160)}: ${why}`)
}
console.log(
  `redos: ${results.length} patterns checked with recheck in ${((Date.now() - started) / 1000).toFixed(1)} s: ${results.length - bad.length} linear, ${bad.length} not`
)
if (bad.length > 0) process.exitCode = 1

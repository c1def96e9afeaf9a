#!/usr/bin/env node
/**
 * `npm run docs:config`: writes docs/configuration.md's table of settings from src/config/Table.ts (through
 * src/config/Reference.ts, bundled in memory, so no build is needed). test/docs.test.ts fails when it is stale.
 */
import { build } from "esbuild"
import fs from "node:fs"

const bundled = await build({
  entryPoints: ["src/config/Reference.ts"],
  bundle: true,
  write: false,
  format: "esm",
  platform: "node",
  logLevel: "silent"
})
const { withReference } = await import(
  `data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`
)
const file = "docs/configuration.md"
const before = fs.readFileSync(file, "utf8")
const after = withReference(before)
fs.writeFileSync(file, after)
console.log(before === after ? `${file} was up to date` : `${file}: settings table rewritten`)

import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { discover } from "../src/config/DotClaw.js"
import { renderReference, REFERENCE_END, REFERENCE_START } from "../src/config/Reference.js"
import { CONFIG_KEYS, SETTINGS } from "../src/config/Table.js"

const read = (file: string) => fs.readFileSync(file, "utf8")
const docs = fs
  .readdirSync("docs")
  .filter((f) => f.endsWith(".md"))
  .map((f) => path.join("docs", f))

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-")
const anchorsOf = (file: string) =>
  new Set([...read(file).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!.replace(/`/g, ""))))

describe("the documentation", () => {
  it("has its settings table as the code renders it (run `npm run docs:config` when this fails)", () => {
    const page = read("docs/configuration.md")
    const start = page.indexOf(REFERENCE_START)
    const end = page.indexOf(REFERENCE_END)
    expect(start, "docs/configuration.md keeps the generated table's markers").toBeGreaterThanOrEqual(0)
    expect(page.slice(start, end + REFERENCE_END.length)).toBe(renderReference())
    for (const key of CONFIG_KEYS) for (const name of SETTINGS[key].env) expect(page).toContain("`" + name + "`")
  })

  it("says where every value a DotClaw install supplies comes from", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-docs-dotclaw-"))
    fs.mkdirSync(path.join(home, "config"))
    const runtime = {
      host: { trace: { dir: "t" }, promptPacksDir: "p" },
      agent: { promptPacks: { canaryRate: 0.2, maxChars: 5000 } }
    }
    fs.writeFileSync(path.join(home, "config", "runtime.json"), JSON.stringify(runtime))
    const supplied = Object.keys(discover({ DOTCLAW_HOME: home }, false).values).sort()
    const documented = CONFIG_KEYS.filter((key) => SETTINGS[key].dotclaw !== undefined).sort()
    expect(supplied).toEqual(documented)
  })

  it("keeps the README a front door: at most 250 lines, the two set-up commands, a link to every page", () => {
    const readme = read("README.md")
    expect(readme.split("\n").length).toBeLessThanOrEqual(250)
    expect(readme).toContain("npm install && npm run build && node --max-old-space-size=256 dist/bin.js once")
    expect(readme).toContain("npm install && npm test")
    for (const page of docs.filter((p) => !p.endsWith("README.md")))
      expect(readme, `README links ${page}`).toContain(`](${page})`)
  })

  it("has no link to a file or heading that does not exist", () => {
    const broken: Array<string> = []
    for (const file of ["README.md", ...docs]) {
      for (const [, target] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue
        const [rel, anchor] = target!.split("#")
        const to = rel === "" ? file : path.join(path.dirname(file), rel!)
        if (!fs.existsSync(to)) broken.push(`${file}: ${target} (no such file)`)
        else if (anchor !== undefined && to.endsWith(".md") && !anchorsOf(to).has(anchor))
          broken.push(`${file}: ${target} (no such heading)`)
      }
    }
    expect(broken).toEqual([])
  })

  it("names only source files that exist, so a move cannot leave the documentation behind", () => {
    const missing: Array<string> = []
    for (const file of ["README.md", ...docs]) {
      const text = read(file)
      for (const [p] of text.matchAll(/(?:src|test|bench|scripts)\/[\w/.-]+\.(?:ts|mjs|sh)/g))
        if (!fs.existsSync(p)) missing.push(`${file}: ${p}`)
      for (const [, p] of text.matchAll(
        /`((?:Domain|config|privacy|store|llm|ingest|judge|canary|optimize|behavior|report|pipeline|cli)\/\w+\.ts)`/g
      )) {
        if (!fs.existsSync(path.join("src", p!))) missing.push(`${file}: ${p}`)
      }
    }
    expect(missing).toEqual([])
  })

  it("draws every room of the house in docs/architecture.md", () => {
    const layers = /export const LAYERS = \[([^\]]*)\]/
      .exec(read("scripts/check-house.mjs"))![1]!
      .match(/"([^"]+)"/g)!
      .map((s) => s.slice(1, -1))
    const architecture = read("docs/architecture.md")
    expect(layers.length).toBeGreaterThan(10)
    for (const room of layers)
      expect(architecture, `docs/architecture.md describes src/${room}/`).toContain("`" + room + "/`")
  })
})

describe("the npm package", () => {
  it("holds every file its README and docs link to, so the links work where a person reads them", () => {
    const packed = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { encoding: "utf8" })
    ) as Array<{ files: Array<{ path: string }> }>
    const files = new Set(packed[0]!.files.map((f) => f.path))
    const broken: Array<string> = []
    for (const page of [...files].filter((f) => f.endsWith(".md"))) {
      for (const m of read(page).matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
        const target = m[1]!
        if (/^[a-z]+:/i.test(target)) continue
        const resolved = path.normalize(path.join(path.dirname(page), target))
        if (!files.has(resolved) && ![...files].some((f) => f.startsWith(`${resolved}/`)))
          broken.push(`${page} -> ${target}`)
      }
    }
    expect(broken).toEqual([])
  })
})

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runLintScript } from "./helpers/lintScript.js"

const check = (root?: string) => runLintScript("scripts/check-house.mjs", root)

/** A copy of src/ to break on purpose. */
const copyOfSrc = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-house-"))
  fs.cpSync("src", dir, { recursive: true })
  return dir
}

describe("the house check (scripts/check-house.mjs, part of npm run lint)", () => {
  it("passes on the tree as it is", () => {
    const result = check()
    expect(result.code).toBe(0)
    expect(result.out).toContain("imports downward, no cycles")
  })

  it("fails on an import that runs upward, naming both files and the rule", () => {
    const dir = copyOfSrc()
    fs.appendFileSync(
      path.join(dir, "store", "Files.ts"),
      '\nimport type { Judge } from "../judge/Judge.js"\nexport type Upward = Judge\n'
    )
    const result = check(dir)
    expect(result.code).toBe(1)
    expect(result.out).toMatch(/store\/Files\.ts imports .*judge\/Judge\.ts: src\/store may not import from src\/judge/)
  })

  it("fails on a service constructor over 150 lines and on a folder comment that misstates what it may import", () => {
    const dir = copyOfSrc()
    const canary = path.join(dir, "canary", "Canary.ts")
    fs.writeFileSync(
      canary,
      fs
        .readFileSync(canary, "utf8")
        .replace("May import: Domain, config, privacy, store, llm, ingest, judge", "May import: Domain, optimize")
    )
    const deployer = path.join(dir, "canary", "Deployer.ts")
    fs.writeFileSync(
      deployer,
      fs
        .readFileSync(deployer, "utf8")
        .replace(
          "    const { config } = yield* Settings\n",
          "    const { config } = yield* Settings\n" + "    void config\n".repeat(60)
        )
    )
    const result = check(dir)
    expect(result.code).toBe(1)
    expect(result.out).toContain(
      'the first comment\'s "May import:" line must read "Domain, config, privacy, store, llm, ingest, judge"'
    )
    expect(result.out).toMatch(/the constructor of autotune\/Deployer is \d+ lines \(at most 150\)/)
  })
})

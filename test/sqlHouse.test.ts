/** The rule that SQL lives in src/store/ only (scripts/check-sql.mjs, part of npm run lint) holds, and catches each way around it. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runLintScript } from "./helpers/lintScript.js"

const check = (root?: string) => runLintScript("scripts/check-sql.mjs", root)

describe("SQL only under src/store/ (scripts/check-sql.mjs)", () => {
  it("passes on the tree as it is", () => {
    expect(check()).toEqual({ code: 0, out: expect.stringContaining("SQL only under src/store/") })
  })

  it("names each query, SQL text, writing helper and stored-JSON parse outside the store", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-sql-"))
    fs.cpSync("src", dir, { recursive: true })
    fs.appendFileSync(
      path.join(dir, "judge", "Labels.ts"),
      [
        "",
        'import { upsert } from "../store/Dialect.js"',
        "export const q1 = (sql: SqlClient.SqlClient) => sql`SELECT 1`",
        "export const q2 = (sql: SqlClient.SqlClient) => sql.unsafe('x')",
        'export const q3 = "DELETE FROM labels WHERE 1 = 1"',
        "export const q4 = (r: { detailJson: string }) => JSON.parse(r.detailJson)",
        "export const q5 = upsert",
        ""
      ].join("\n")
    )
    // Ordinary words and JSON of other things stay allowed.
    fs.appendFileSync(
      path.join(dir, "judge", "Agreement.ts"),
      '\nexport const fine = [JSON.parse("[]"), "select the turns from the week"]\n'
    )
    const result = check(dir)
    expect(result.code).toBe(1)
    expect(result.out).toMatch(/judge\/Labels\.ts:\d+: a query built outside the store/)
    expect(result.out).toMatch(/judge\/Labels\.ts:\d+: sql\.unsafe outside the store/)
    expect(result.out).toMatch(/judge\/Labels\.ts:\d+: SQL text outside the store/)
    expect(result.out).toMatch(/judge\/Labels\.ts:\d+: a stored JSON column parsed outside the store/)
    expect(result.out).toMatch(/judge\/Labels\.ts:\d+: upsert \(writes SQL\) imported outside the store/)
    expect(result.out).not.toContain("Agreement.ts")
    expect(result.out).toContain("check-sql: 5 problem(s)")
  })
})

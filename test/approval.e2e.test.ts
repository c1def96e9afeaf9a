/**
 * The operator decides what ships (AUTOTUNE_DEPLOY_APPROVAL=manual), through the built CLI: a selection waits
 * (deploy ships nothing, status shows it with its gain and diff), `approve` ships it as a canary DotClaw
 * accepts, `reject` discards it and the optimizer never proposes it again, and a bad behavior name is one line
 * with exit 2. The selection comes from the gullible world's optimizer (test/helpers/gullibleWorld.ts).
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { BEHAVIORS } from "../src/Domain/Behavior.js"
import { Judge } from "../src/judge/Judge.js"
import { Optimizer } from "../src/optimize/Optimize.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { dotclawAccepts } from "./helpers/dotclaw.js"
import { B, HONEST, setup } from "./helpers/gullibleWorld.js"

const envFor = (home: string) => ({
  AUTOTUNE_HOME: home,
  AUTOTUNE_TRACE_DIR: path.join(home, "traces"),
  AUTOTUNE_OUTPUT_DIR: path.join(home, "prompts"),
  AUTOTUNE_DB_PATH: path.join(home, "autotune.db"),
  AUTOTUNE_BEHAVIORS: B,
  AUTOTUNE_DEPLOY_APPROVAL: "manual",
  AUTOTUNE_FEEDBACK_DB: path.join(home, "none.db")
})

/** A store where optimize has selected the honest improvement, waiting for a person. */
const withSelection = async () => {
  const t = await setup(45, { deployApproval: "manual" })
  await t.run(Effect.flatMap(Judge, (j) => j.evaluate()))
  const { behaviors } = await t.run(Effect.flatMap(Optimizer, (o) => o.optimize()))
  const outcome = behaviors[B]!
  if (outcome.outcome !== "selected") throw new Error(`expected a selection, got ${JSON.stringify(outcome)}`)
  return { ...t, version: outcome.version, env: envFor(t.home) }
}

describe("the operator's gate (built CLI)", () => {
  it("pending -> approve -> canary: deploy waits, status shows the gain and the diff, approve ships what DotClaw accepts", async () => {
    const t = await withSelection()
    const deploy = jsonOut(await runCli(["deploy", "--json"], t.env)) as {
      deployed: Record<string, unknown>
      pending: Array<{ behavior: string; version: string }>
    }
    expect(deploy.deployed).toEqual({})
    expect(deploy.pending).toEqual([{ behavior: B, version: t.version }])
    expect(fs.existsSync(path.join(t.home, "prompts", `${B}.canary.json`))).toBe(false)

    const status = jsonOut(await runCli(["status", "--json"], t.env)) as {
      addressedMasked7d: number
      behaviors: Array<{
        pending: {
          version: string
          heldOutGain: number
          lowerBound: number
          diff: Array<{ op: string; text: string }>
          chosenOn: ReadonlyArray<unknown>
        } | null
      }>
    }
    const pending = status.behaviors[0]!.pending!
    expect(pending.version).toBe(t.version)
    expect(pending.lowerBound).toBeGreaterThan(0)
    expect(
      pending.diff
        .filter((p) => p.op === "add")
        .map((p) => p.text)
        .join("")
    ).toContain("question first")
    const text = await runCli(["status"], t.env)
    expect(text.stdout).toContain(`${B}: ${t.version} waits for approval`)
    expect(text.stdout).toContain(`autotune approve ${B}`)
    // The turns it gained most on, and the flattered turns the judge had masked (the world plants some).
    expect(pending.chosenOn.length).toBeGreaterThan(0)
    expect(text.stdout).toContain("gained on: ")
    expect(status.addressedMasked7d).toBeGreaterThan(0)
    const report = await runCli(["report", "--out", path.join(t.home, "r.html")], t.env)
    expect(report.code).toBe(0)
    const html = fs.readFileSync(path.join(t.home, "r.html"), "utf8")
    expect(html).toContain("Waiting for approval")
    expect(html).toContain(`autotune approve ${B}`)

    const approved = await runCli(["approve", B, "--json"], t.env)
    expect(approved.code).toBe(0)
    expect(jsonOut(approved)).toMatchObject({ behavior: B, approved: t.version, as: "canary" })
    const canary = path.join(t.home, "prompts", `${B}.canary.json`)
    expect(dotclawAccepts(canary)).toBe(true)
    expect(JSON.parse(fs.readFileSync(canary, "utf8")).instructions).toBe(HONEST)

    const diff = await runCli(["packs", "--diff", t.version], t.env)
    expect(diff.code).toBe(0)
    expect(diff.stdout).toContain("{+")
    // Nothing waits any more.
    expect(await runCli(["approve", B], t.env)).toMatchObject({ code: 1 })
  })

  it("pending -> reject -> never proposed again", async () => {
    const t = await withSelection()
    const rejected = await runCli(["reject", B, "--reason", "too terse for our users", "--json"], t.env)
    expect(rejected.code).toBe(0)
    expect(jsonOut(rejected)).toMatchObject({ behavior: B, rejected: t.version, reason: "too terse for our users" })
    const history = jsonOut(await runCli(["packs", B, "--json"], t.env)) as {
      history: Array<{ action: string; version: string; status: string }>
    }
    expect(history.history[0]).toMatchObject({ action: "rejected", version: t.version, status: "rejected" })

    // A day later the optimizer runs again on the same world: the same text is proposed and dropped.
    const db = new Database(path.join(t.home, "autotune.db"))
    db.prepare("UPDATE optimize_runs SET created_at = created_at - 25 * 3600000").run()
    db.close()
    const { behaviors } = await t.run(Effect.flatMap(Optimizer, (o) => o.optimize()))
    const again = behaviors[B]!
    expect(again.outcome).toBe("no_gain")
    if (again.outcome === "skipped" || again.outcome === "failed") return
    expect(again.dropped["rejected by the operator"]).toBeGreaterThanOrEqual(1)
    const dbAfter = new Database(path.join(t.home, "autotune.db"), { readonly: true })
    expect(dbAfter.prepare("SELECT COUNT(*) AS n FROM packs WHERE status = 'selected'").get()).toEqual({ n: 0 })
    dbAfter.close()
  })

  it("a bad behavior name is one line and exit 2", async () => {
    const t = await setup(5)
    const result = await runCli(["approve", "response-qualty"], envFor(t.home))
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toEqual([
      `autotune: error: unknown behavior "response-qualty" for autotune approve (did you mean response-quality?); the behaviors: ${BEHAVIORS.join(", ")}`
    ])
  })
})

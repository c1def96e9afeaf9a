/** Runs one of the lint's scripts (scripts/*.mjs) on the tree, or on a copy of it (`--root`): its exit code and what it said. */
import { execFileSync } from "node:child_process"

export const runLintScript = (script: string, root?: string) => {
  try {
    const out = execFileSync(process.execPath, [script, ...(root === undefined ? [] : ["--root", root])], {
      encoding: "utf8",
      stdio: "pipe"
    })
    return { code: 0, out }
  } catch (e) {
    const err = e as { status: number; stderr: string }
    return { code: err.status, out: err.stderr }
  }
}

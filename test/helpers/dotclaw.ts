import * as fs from "node:fs"
import * as path from "node:path"

/**
 * DotClaw's own acceptance rule for a pack file (docs/dotclaw-formats.md §2), written independently of
 * src/Domain/Pack.ts so that a mistake there cannot hide here.
 */
export const dotclawAccepts = (file: string): boolean => {
  let j: Record<string, unknown>
  try {
    j = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch {
    return false
  }
  const behavior = path.basename(file).replace(/\.canary\.json$|\.json$/, "")
  const isString = (v: unknown) => typeof v === "string"
  if (!isString(j["name"]) || !isString(j["version"]) || !isString(j["behavior"]) || !isString(j["instructions"]))
    return false
  if (j["behavior"] !== behavior) return false
  const demos = j["demos"]
  if (
    demos !== undefined &&
    (!Array.isArray(demos) ||
      !demos.every(
        (d) => d !== null && typeof d === "object" && isString((d as Record<string, unknown>)["input"]) && "output" in d
      ))
  )
    return false
  const metric = j["metric"] as Record<string, unknown> | undefined
  if (
    metric !== undefined &&
    (!isString(metric["name"]) || !isString(metric["model"]) || typeof metric["score"] !== "number")
  )
    return false
  const metadata = j["metadata"]
  if (metadata !== undefined && (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)))
    return false
  return true
}

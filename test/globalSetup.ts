import { execFileSync } from "node:child_process"

// End-to-end suites run the built CLI; build it once per test run so they never test stale output.
export default function setup() {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })
}

import { execFileSync } from "node:child_process"

// End-to-end suites run the built CLI; build it once per test run, exactly as `npm run build` does (the
// compiled library and the bundled command), so they never test stale or different output.
export default function setup() {
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" })
}

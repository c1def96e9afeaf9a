import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { CHROMIUM } from "./helpers/browser.js"
import { postgresBin } from "./helpers/postgres.js"

/**
 * The report's browser tests drive Debian's Chromium; on a fresh machine it is installed here (as root, or
 * through sudo without a password), so README's test command works as written. Where that is not possible the
 * browser tests fail, naming the package.
 */
const aptInstall = (pkg: string, why: string) => {
  const asRoot = process.getuid?.() === 0
  const apt = (args: ReadonlyArray<string>) =>
    execFileSync(asRoot ? "apt-get" : "sudo", asRoot ? args : ["-n", "apt-get", ...args], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    })
  console.log(`test set-up: installing Debian's ${pkg} package ${why}`)
  try {
    apt(["update", "-qq"])
    apt(["install", "-y", "-qq", pkg])
  } catch (error) {
    console.log(
      `test set-up: could not install ${pkg} (${String(error).split("\n")[0]}); run \`apt-get install ${pkg}\``
    )
  }
}

const ensureChromium = () => {
  if (!fs.existsSync(CHROMIUM))
    aptInstall("chromium", `for the report's browser tests (no Chromium at ${CHROMIUM}; or set CHROMIUM_PATH)`)
}

// The fleet tests start a throwaway PostgreSQL cluster from Debian's server binaries.
const ensurePostgres = () => {
  if (postgresBin() === undefined) aptInstall("postgresql", "for the PostgreSQL store's tests")
}

// The init wizard's test drives the CLI in a tmux pane (a terminal a person types in); the progress-bar tests
// use util-linux's \`script\`, which every Debian has.
const ensureTmux = () => {
  if (spawnSync("tmux", ["-V"]).status !== 0) aptInstall("tmux", "for the init wizard's terminal test")
}

// The canary's steps are tried over simulated days: the built CLI runs under Debian's faketime at the test's clock.
const ensureFaketime = () => {
  if (spawnSync("faketime", ["-f", "+0d", "true"]).status !== 0)
    aptInstall("faketime", "for the tests that run the CLI at a clock they control")
}

// The metrics test has Debian's Prometheus scrape the daemon, and checks the exposition and the alert rules with promtool.
const ensurePrometheus = () => {
  if (spawnSync("prometheus", ["--version"]).status !== 0 || spawnSync("promtool", ["--version"]).status !== 0)
    aptInstall("prometheus", "for the metrics test (prometheus and promtool)")
}

// End-to-end suites run the built CLI; build it once per test run, exactly as `npm run build` does (the
// compiled library and the bundled command), so they never test stale or different output.
export default function setup() {
  ensureChromium()
  ensurePostgres()
  ensureTmux()
  ensureFaketime()
  ensurePrometheus()
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" })
}

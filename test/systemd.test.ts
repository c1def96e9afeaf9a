import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0

describe("systemd units and install.sh", () => {
  it.skipIf(!hasAnalyze)("the units pass systemd-analyze verify", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-units-"))
    const units = ["autotune.service", "autotune.timer", "autotune-daemon.service"].map((u) => {
      fs.copyFileSync(path.join("systemd", u), path.join(dir, u))
      return path.join(dir, u)
    })
    const result = spawnSync("systemd-analyze", ["verify", ...units], { encoding: "utf8" })
    expect(result.stderr.trim()).toBe("")
    expect(result.status).toBe(0)
  })

  it("install.sh writes a 0600 config and env file, is idempotent, and says so clearly without systemd", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-install-"))
    const bin = path.join(home, "bin")
    fs.mkdirSync(bin)
    fs.writeFileSync(
      path.join(bin, "autotune"),
      `#!/bin/sh\nexec "${process.execPath}" "${path.resolve("dist/bin.js")}" "$@"\n`,
      { mode: 0o755 }
    )
    // A systemctl that has no user instance, as in a container.
    fs.writeFileSync(path.join(bin, "systemctl"), "#!/bin/sh\nexit 1\n", { mode: 0o755 })
    const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: home, ANTHROPIC_API_KEY: "sk-ant-install-test-0123456789" }
    const first = spawnSync("bash", ["systemd/install.sh"], { env, encoding: "utf8" })
    expect(first.status).toBe(2)
    expect(first.stderr).toContain("systemd (user instance) is not available")
    const config = path.join(home, ".config", "dotclaw", "autotune.json")
    const envFile = path.join(home, ".config", "dotclaw", "autotune.env")
    expect(fs.statSync(config).mode & 0o777).toBe(0o600)
    expect(fs.statSync(envFile).mode & 0o777).toBe(0o600)
    expect(fs.readFileSync(envFile, "utf8")).toContain("ANTHROPIC_API_KEY=sk-ant-install-test-0123456789")
    const before = fs.readFileSync(config, "utf8")
    const second = spawnSync("bash", ["systemd/install.sh"], { env, encoding: "utf8" })
    expect(second.stdout).toContain("exists; left as it is")
    expect(fs.readFileSync(config, "utf8")).toBe(before)
  })
})

/**
 * A throwaway PostgreSQL cluster for the fleet tests: Debian's server binaries, a data dir in a temp dir,
 * listening on 127.0.0.1 at a free port only, fsync off. initdb refuses root, so as root the cluster runs
 * as the `postgres` user the Debian package creates.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"

/** Where Debian puts the server binaries (they are not on PATH), newest version first. */
export const postgresBin = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : []
  for (const v of versions) if (fs.existsSync(path.join(root, v, "bin", "initdb"))) return path.join(root, v, "bin")
  return undefined
}

/** A TCP port nothing listens on right now (the OS picks it). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

export interface Cluster {
  /** A URL to a new empty database on the cluster. */
  readonly database: (name: string) => Promise<string>
  readonly stop: () => void
}

export const startPostgres = async (): Promise<Cluster> => {
  const bin = postgresBin()
  if (bin === undefined)
    throw new Error(
      "PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's postgresql package"
    )
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autotune-pg-"))
  const data = path.join(dir, "data")
  const asRoot = process.getuid?.() === 0
  const owner = asRoot
    ? {
        uid: Number(execFileSync("id", ["-u", "postgres"]).toString()),
        gid: Number(execFileSync("id", ["-g", "postgres"]).toString())
      }
    : {}
  if (asRoot) fs.chownSync(dir, owner.uid!, owner.gid!)
  const run = (tool: string, args: ReadonlyArray<string>) => {
    const result = spawnSync(path.join(bin, tool), args, { ...owner, cwd: dir, encoding: "utf8" })
    if (result.status !== 0)
      throw new Error(`${tool} failed: ${result.stderr || result.stdout || result.error?.message}`)
  }
  run("initdb", ["-D", data, "-U", "autotune", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
  const port = await freePort()
  run("pg_ctl", [
    "-D",
    data,
    "-l",
    path.join(dir, "log"),
    "-w",
    "-o",
    `-h 127.0.0.1 -p ${port} -k ${dir} -F -c max_connections=200`,
    "start"
  ])
  const base = `postgres://autotune@127.0.0.1:${port}`
  return {
    database: async (name) => {
      const client = new pg.Client({ connectionString: `${base}/postgres` })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE "${name}"`)
      } finally {
        await client.end()
      }
      return `${base}/${name}`
    },
    stop: () => {
      if (process.env["AUTOTUNE_TEST_PG_LOG"] !== undefined)
        fs.copyFileSync(path.join(dir, "log"), process.env["AUTOTUNE_TEST_PG_LOG"])
      spawnSync(path.join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "stop"], { ...owner, cwd: dir })
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

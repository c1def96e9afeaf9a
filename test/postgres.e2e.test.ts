/**
 * The PostgreSQL store for a fleet, against a real throwaway cluster (Debian's postgresql; test set-up
 * installs it when missing), through the built CLI as each host runs it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { jsonOut, runCli } from "./helpers/cli.js"
import { type Cluster, startPostgres } from "./helpers/postgres.js"
import { traceLines } from "./helpers/traces.js"

let cluster: Cluster
beforeAll(async () => {
  cluster = await startPostgres()
}, 120_000)
afterAll(() => cluster?.stop())

const query = async <A>(url: string, text: string): Promise<Array<A>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows as Array<A>
  } finally {
    await client.end()
  }
}

/** A DotClaw host: its own home and trace dir, the same file names as every other host. */
const host = (name: string, url: string) => {
  const home = tempHome(`autotune-${name}-`)
  const traceDir = path.join(home, "traces")
  fs.mkdirSync(traceDir, { recursive: true })
  const env = { AUTOTUNE_HOME: home, AUTOTUNE_CONFIG_PATH: path.join(home, "none.json"), AUTOTUNE_DATABASE_URL: url, AUTOTUNE_HOST_ID: name }
  const write = (body: string, day = "2026-11-24") => fs.appendFileSync(path.join(traceDir, `trace-${day}.jsonl`), body)
  return { home, traceDir, env, write }
}

/** Each host's turns get their own ids (DotClaw's are uuids): host a's turn 5 is not host b's. */
const hostLines = (name: string, from: number, count: number) => traceLines(from, count, { day: "2026-11-24" }).replaceAll('"trace_id":"t-', `"trace_id":"${name}-t-`)

describe("PostgreSQL store", () => {
  it("two hosts ingest 3,000 traces each at the same time: 6,000 stored, none doubled, positions per host", async () => {
    const url = await cluster.database("two_hosts")
    const [a, b] = [host("host-a", url), host("host-b", url)]
    a.write(hostLines("host-a", 0, 3_000))
    b.write(hostLines("host-b", 0, 3_000))
    const [ra, rb] = await Promise.all([runCli(["ingest", "--json"], a.env), runCli(["ingest", "--json"], b.env)])
    expect(ra.code, ra.stderr).toBe(0)
    expect(rb.code, rb.stderr).toBe(0)
    expect(jsonOut(ra)).toMatchObject({ ingested: 3_000, duplicates: 0, malformed: 0 })
    expect(jsonOut(rb)).toMatchObject({ ingested: 3_000, duplicates: 0, malformed: 0 })
    expect(await query(url, "SELECT COUNT(*)::int AS n, COUNT(DISTINCT trace_id)::int AS ids FROM traces")).toEqual([{ n: 6_000, ids: 6_000 }])
    // The same file name on both hosts, a position each.
    const positions = await query<{ host_id: string; file: string; line_no: string }>(url, "SELECT host_id, file, line_no FROM ingest_positions ORDER BY host_id")
    expect(positions.map((p) => [p.host_id, path.basename(p.file), Number(p.line_no)])).toEqual([
      ["host-a", "trace-2026-11-24.jsonl", 3_000],
      ["host-b", "trace-2026-11-24.jsonl", 3_000]
    ])
    // Appends go on from each host's own position.
    a.write(hostLines("host-a", 3_000, 10))
    const again = await Promise.all([runCli(["ingest", "--json"], a.env), runCli(["ingest", "--json"], b.env)])
    expect(again.map((r) => jsonOut(r)["ingested"])).toEqual([10, 0])
    expect(again.map((r) => jsonOut(r)["lines"])).toEqual([10, 0])
  })
})

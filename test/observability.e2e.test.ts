import Database from "better-sqlite3"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { tempHome } from "./helpers/app.js"
import { clockEnv, killStrays, runCli, tracked } from "./helpers/cli.js"
import { type FakeProvider, improvableWorld, startFakeProvider } from "./helpers/fakeProvider.js"
import { freePort, type Prometheus, startPrometheus, until } from "./helpers/prometheus.js"
import { traceObject } from "./helpers/traces.js"

const B = "response-quality"
const MARKER = "PLANTED-OTLP-MARKER-5521"

const world = improvableWorld([
  { instructions: "Lead with the answer. BETTER." },
  { instructions: "Be verbose and thorough." }
])

const writeTurns = (
  home: string,
  name: string,
  from: number,
  count: number,
  opts: { version?: string; score: number; startMs: number }
) => {
  let body = ""
  for (let i = 0; i < count; i++) {
    const at = opts.startMs + i * 20_000
    const t = traceObject(from + i, {
      text: `turn ${from + i} SCORE=${opts.score} ${MARKER}`,
      packVersions: opts.version === undefined ? {} : { [B]: opts.version }
    })
    body +=
      JSON.stringify({
        ...t,
        trace_id: `trace-${name}-${from + i}`,
        timestamp: new Date(at).toISOString(),
        created_at: at
      }) + "\n"
  }
  fs.appendFileSync(path.join(home, "traces", `trace-${name}.jsonl`), body)
}

/** A loopback OTLP/HTTP receiver: every body the exporter posts to /v1/traces, as text. */
const startOtlpReceiver = async () => {
  const bodies: Array<string> = []
  const server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (d: Buffer) => (body += d.toString()))
    req.on("end", () => {
      if (req.url === "/v1/traces") bodies.push(body)
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r()))
  }
}

type Span = { name: string; attributes: Record<string, unknown> }
const spansOf = (bodies: ReadonlyArray<string>): Array<Span> =>
  bodies.flatMap((b) =>
    (
      JSON.parse(b) as {
        resourceSpans: Array<{
          scopeSpans: Array<{
            spans: Array<{ name: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }>
          }>
        }>
      }
    ).resourceSpans.flatMap((r) =>
      r.scopeSpans.flatMap((s) =>
        s.spans.map((span) => ({
          name: span.name,
          attributes: Object.fromEntries(span.attributes.map((a) => [a.key, Object.values(a.value)[0]]))
        }))
      )
    )
  )

const startDaemon = (env: Record<string, string>) => {
  const child = tracked(
    spawn(process.execPath, ["dist/bin.js", "daemon"], {
      env: { PATH: process.env["PATH"] ?? "", HOME: env["AUTOTUNE_HOME"]!, ...clockEnv(), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
  )
  let log = ""
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()))
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()))
  return { child, log: () => log }
}

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code))
    child.kill("SIGTERM")
  })

const get = async (url: string) => {
  const res = await fetch(url)
  return { status: res.status, text: await res.text() }
}

/** A series' value on the daemon's own page, or undefined while it is not there. */
const seriesValue = (exposition: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const line of exposition.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return undefined
}

let fake: FakeProvider
let prometheus: Prometheus | undefined
beforeAll(async () => {
  fake = await startFakeProvider(world)
})
afterEach(killStrays)
afterAll(async () => {
  await fake.close()
  await prometheus?.stop()
})

describe("the daemon in the operator's tools", () => {
  it("Prometheus scrapes its samples, promotion and spend; the dashboard's queries all return data; a restart keeps the counters; cycles arrive as OTLP traces without message text", async () => {
    const home = tempHome()
    const port = await freePort()
    prometheus = await startPrometheus(`127.0.0.1:${port}`)
    const otlp = await startOtlpReceiver()
    const env = {
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: fake.url,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: B,
      AUTOTUNE_SAMPLE_SIZE: "10",
      AUTOTUNE_EVAL_MAX_TRACES: "1000",
      AUTOTUNE_JUDGE_UNSURE_HIGH: "0.5",
      AUTOTUNE_JUDGE_AUDIT_SHARE: "0",
      AUTOTUNE_LLM_CONCURRENCY: "16",
      AUTOTUNE_INTERVAL_MINUTES: "0.05",
      AUTOTUNE_METRICS_PORT: String(port),
      AUTOTUNE_CANARY_FRACTION: "0.1",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: "200"
    }
    // Times asked of Prometheus are its own: under `npm test`'s shifted clock the daemon runs 400 days ahead, Prometheus (Go) does not.
    const started = Math.floor(await prometheus.now())
    writeTurns(home, "history", 0, 30, { score: 0.4, startMs: Date.now() - 3 * 3_600_000 })
    const daemon = startDaemon(env)
    const metrics = `http://127.0.0.1:${port}/metrics`
    const page = async () => (await get(metrics)).text

    // 1. The first cycle ships a canary beside the baseline.
    const prompts = path.join(home, "prompts")
    await until(
      "the first canary",
      async () =>
        fs.existsSync(path.join(prompts, `${B}.canary.json`)) && fs.existsSync(path.join(prompts, `${B}.json`))
          ? true
          : undefined,
      90_000
    )
    const canaryVersion = JSON.parse(fs.readFileSync(path.join(prompts, `${B}.canary.json`), "utf8")).version as string
    const activeVersion = JSON.parse(fs.readFileSync(path.join(prompts, `${B}.json`), "utf8")).version as string
    await until("the canary on /metrics", async () =>
      seriesValue(await page(), "autotune_pack_info", { role: "canary", version: canaryVersion }) === 1
        ? true
        : undefined
    )

    // 2. A few canary turns: too few to decide, so the canary waits with 5 samples.
    const now = Date.now()
    writeTurns(home, "canary-a", 100, 5, { version: canaryVersion, score: 0.9, startMs: now + 1000 })
    writeTurns(home, "active-a", 200, 45, { version: activeVersion, score: 0.6, startMs: now + 500 })
    await until(
      "5 canary samples on /metrics",
      async () =>
        seriesValue(await page(), "autotune_canary_samples", { behavior: B, arm: "canary" }) === 5 ? true : undefined,
      90_000
    )
    await until("Prometheus to scrape the 5 samples", async () =>
      (await prometheus!.query(`autotune_canary_samples{behavior="${B}",arm="canary"} == 5`)).length === 1
        ? true
        : undefined
    )
    const waitingAt = await prometheus.now()

    // 3. Enough better canary turns: promoted.
    writeTurns(home, "canary-b", 105, 35, { version: canaryVersion, score: 0.9, startMs: now + 200_000 })
    writeTurns(home, "active-b", 245, 315, { version: activeVersion, score: 0.6, startMs: now + 100_000 })
    await until(
      "the promotion in Prometheus",
      async () =>
        (await prometheus!.query(`autotune_canary_decisions_total{behavior="${B}",action="promoted"} == 1`)).length ===
        1
          ? true
          : undefined,
      120_000
    ).catch((e) => {
      throw new Error(`${e}; the daemon's log ends:\n${daemon.log().split("\n").slice(-10).join("\n")}`)
    })

    // What Prometheus holds: the canary's 5 samples while it waited, the promotion, the active version after it.
    const samples = await prometheus.queryRange(
      `autotune_canary_samples{behavior="${B}",arm="canary"}`,
      started,
      Math.ceil(await prometheus.now())
    )
    expect(samples[0]!.values).toContain(5)
    expect(
      (await prometheus.query(`autotune_canary_samples{behavior="${B}",arm="canary"} @ ${waitingAt}`))[0]?.value
    ).toBe(5)
    expect(await prometheus.query(`autotune_canary_decisions_total{behavior="${B}",action="rolled_back"}`)).toEqual([
      expect.objectContaining({ value: 0 })
    ])
    await until("the promoted version as active", async () =>
      (await prometheus!.query(`autotune_pack_info{behavior="${B}",role="active",version="${canaryVersion}"} == 1`))
        .length === 1
        ? true
        : undefined
    )
    expect(
      (await prometheus.query(`autotune_canary_evidence_threshold`)).map((r) => [r.metric["direction"], r.value]).sort()
    ).toEqual([
      ["promote", 20],
      ["rollback", 40]
    ])
    // Every line is counted once (the last may arrive a cycle after the promotion).
    await until("every trace counted in Prometheus", async () =>
      (await prometheus!.query("autotune_traces_ingested_total"))[0]?.value === 30 + 5 + 45 + 35 + 315
        ? true
        : undefined
    )
    expect((await prometheus.query("autotune_traces_malformed_total"))[0]?.value).toBe(0)

    // Spend: Prometheus' sum is the store's (the daemon may be mid-cycle: they agree once a scrape follows a cycle).
    const db = new Database(path.join(home, "autotune.db"), { readonly: true })
    const storeSpend = () =>
      db.prepare("SELECT SUM(cost_usd) AS usd, COUNT(*) AS calls FROM llm_calls").get() as {
        usd: number
        calls: number
      }
    const agreed = await until("Prometheus' spend to match the store's", async () => {
      const store = storeSpend()
      const [usd] = await prometheus!.query("sum(autotune_llm_cost_dollars_total)")
      const [calls] = await prometheus!.query("sum(autotune_llm_calls_total)")
      return usd !== undefined &&
        calls !== undefined &&
        Math.abs(usd.value - store.usd) < 1e-9 &&
        calls.value === store.calls
        ? { usd: usd.value, calls: calls.value }
        : undefined
    })
    // Beside the agent: its own spend over 7 days is its traces' cost, and the share is the two divided.
    const agentUsd = (db.prepare("SELECT SUM(cost_usd) AS usd FROM traces").get() as { usd: number }).usd
    await until("the agent's spend and autotune's share of it over 7 days", async () => {
      const [share] = await prometheus!.query(`autotune_agent_spend_share_ratio{window="7d"}`)
      const [agent] = await prometheus!.query(`autotune_agent_spend_dollars{window="7d"}`)
      const [own] = await prometheus!.query(`autotune_window_spend_dollars{window="7d"}`)
      return share !== undefined &&
        agent !== undefined &&
        own !== undefined &&
        Math.abs(agent.value - agentUsd) < 1e-9 &&
        Math.abs(own.value - storeSpend().usd) < 1e-9 &&
        Math.abs(share.value - own.value / agentUsd) < 1e-9
        ? true
        : undefined
    })
    db.close()
    expect(agreed.usd).toBeGreaterThan(0)
    expect(agreed.calls).toBeGreaterThan(0)
    expect((await prometheus.query(`sum by (stage) (autotune_llm_cost_dollars_total)`)).length).toBeGreaterThan(1)

    // Health: alive and well.
    expect(await get(`http://127.0.0.1:${port}/livez`)).toMatchObject({ status: 200 })
    const health = await get(`http://127.0.0.1:${port}/healthz`)
    expect(health.status).toBe(200)
    expect(JSON.parse(health.text)).toMatchObject({ status: "ok" })

    // promtool accepts the exposition; the alert rules check and pass their unit tests.
    const exposition = await page()
    const check = spawnSync("promtool", ["check", "metrics"], { input: exposition, encoding: "utf8" })
    expect(check.stderr + check.stdout).toBe("")
    expect(check.status).toBe(0)
    execFileSync("promtool", ["test", "rules", "autotune-alerts.test.yml"], { cwd: "contrib/prometheus" })
    // Every name follows the conventions: autotune_ prefix, counters in _total, no message text anywhere.
    for (const name of new Set(
      exposition
        .split("\n")
        .filter((l) => l.startsWith("# TYPE autotune_"))
        .map((l) => l.split(" "))
    )) {
      if (name[3] === "counter") expect(name[2]).toMatch(/_total$/)
    }
    expect(exposition).not.toContain(MARKER)
    expect(exposition).not.toContain("Lisbon")

    // The dashboard: every target of every panel returns data from this Prometheus.
    const dashboard = JSON.parse(fs.readFileSync("contrib/grafana/autotune.json", "utf8")) as {
      panels: Array<{ title: string; type: string; targets: Array<{ expr: string }> }>
    }
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8)
    // Each panel names a panel plugin Grafana ships (an unknown type is "Panel plugin not found", an empty box).
    for (const panel of dashboard.panels)
      expect(["timeseries", "bargauge", "stat", "gauge", "table", "text"], panel.title).toContain(panel.type)
    const range = `${Math.max(60, Math.ceil(await prometheus.now()) - started)}s`
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const expr = target.expr
          .replaceAll("$behavior", ".*")
          .replaceAll("$__rate_interval", "30s")
          .replaceAll("$__range", range)
        const result = await prometheus.query(expr)
        expect(result.length, `${panel.title}: ${expr}`).toBeGreaterThan(0)
      }
    }

    // Traces: each cycle is a trace with the stages and LLM calls as spans, attributes but no message text.
    await until(
      "cycle spans over OTLP",
      async () => (spansOf(otlp.bodies).some((s) => s.name === "autotune cycle") ? true : undefined),
      30_000
    )
    const spans = spansOf(otlp.bodies)
    const names = new Set(spans.map((s) => s.name))
    for (const n of [
      "autotune cycle",
      "stage ingest",
      "stage eval",
      "stage optimize",
      "stage deploy",
      "TraceSource.ingest",
      "Judge.evaluate",
      "LlmRunner.call",
      "CanaryMonitor.check"
    ])
      expect(names, n).toContain(n)
    const call = spans.find(
      (s) => s.name === "LlmRunner.call" && s.attributes["gen_ai.usage.input_tokens"] !== undefined
    )!
    expect(call.attributes).toMatchObject({
      "gen_ai.system": "anthropic",
      "gen_ai.request.model": expect.any(String),
      "autotune.stage": expect.any(String)
    })
    expect(spans.find((s) => s.name === "stage ingest")!.attributes).toMatchObject({
      "autotune.stage": "ingest",
      "autotune.ingested": expect.anything()
    })
    expect(spans.find((s) => s.name === "CanaryMonitor.check")!.attributes["autotune.behavior"]).toBe(B)
    const everything = otlp.bodies.join("\n")
    expect(everything).not.toContain(MARKER)
    expect(everything).not.toContain("Lisbon")

    // 4. A restart: the new daemon's first page already has the store's totals, not zeros.
    const cyclesBefore = (await prometheus.query("sum(autotune_cycles_total)"))[0]!.value
    expect(await stop(daemon.child)).toBe(0)
    const again = startDaemon(env)
    const first = await until("the restarted daemon's page", async () => {
      const text = await page()
      return seriesValue(text, "autotune_traces_ingested_total") === undefined ? undefined : text
    })
    expect(seriesValue(first, "autotune_traces_ingested_total")).toBe(30 + 5 + 45 + 35 + 315)
    expect(
      seriesValue(first, "autotune_cycles_total", { outcome: "ok" })! +
        (seriesValue(first, "autotune_cycles_total", { outcome: "failed" }) ?? 0)
    ).toBeGreaterThanOrEqual(cyclesBefore)
    expect(seriesValue(first, "autotune_canary_decisions_total", { behavior: B, action: "promoted" })).toBe(1)
    expect(await stop(again.child)).toBe(0)
    await otlp.close()
  }, 300_000)

  it("a metrics port already in use: one line naming it, exit 2, before any cycle", async () => {
    const home = tempHome()
    const taken = net.createServer()
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r))
    const port = (taken.address() as net.AddressInfo).port
    const result = await runCli(["daemon", "--metrics-port", String(port)], { AUTOTUNE_HOME: home })
    taken.close()
    expect(result.code).toBe(2)
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`127.0.0.1:${port} is already in use`)
    expect(lines[0]).toContain("AUTOTUNE_METRICS_PORT")
    // Nothing ran: no store was made.
    expect(fs.existsSync(path.join(home, "autotune.db"))).toBe(false)
  })

  it("a failing provider makes /healthz 503 with the reason while /livez stays 200", async () => {
    const home = tempHome()
    const port = await freePort()
    const dead = await freePort()
    writeTurns(home, "history", 0, 30, { score: 0.4, startMs: Date.now() - 3_600_000 })
    const daemon = startDaemon({
      AUTOTUNE_HOME: home,
      ANTHROPIC_API_KEY: "k",
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${dead}`,
      AUTOTUNE_JUDGE_BATCH: "off",
      AUTOTUNE_BEHAVIORS: B,
      AUTOTUNE_INTERVAL_MINUTES: "0.05",
      AUTOTUNE_METRICS_PORT: String(port),
      AUTOTUNE_LLM_RETRIES: "0"
    })
    try {
      const health = await until(
        "/healthz to say the cycle failed",
        async () => {
          const h = await get(`http://127.0.0.1:${port}/healthz`)
          return h.status === 503 && JSON.parse(h.text).status === "failing"
            ? (JSON.parse(h.text) as { reason: string })
            : undefined
        },
        90_000
      )
      expect(health.reason).toMatch(/provider failing|the last cycle failed/)
      expect(health.reason).toContain("eval")
      expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200)
      const text = (await get(`http://127.0.0.1:${port}/metrics`)).text
      expect(seriesValue(text, "autotune_cycles_total", { outcome: "failed" })).toBeGreaterThanOrEqual(1)
      expect(seriesValue(text, "autotune_llm_calls_total", { outcome: "failed" })).toBeGreaterThanOrEqual(1)
    } finally {
      expect(await stop(daemon.child)).toBe(0)
    }
  })
})

/**
 * The daemon's HTTP port: /metrics (Prometheus' text format, from OpenTelemetry's Prometheus exporter),
 * /livez and /healthz (200 or 503 with a one-line JSON reason). Plain node:http: three GET routes, no body
 * to parse, and the exporter's handler takes node's request and response as they are.
 */
import type { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Effect } from "effect"
import * as http from "node:http"
import { ConfigError } from "../Domain/Errors.js"
import type { Answer } from "./Health.js"

export interface Routes {
  readonly exporter: PrometheusExporter
  /** Called before each scrape, for the series that depend on the time. */
  readonly beforeScrape: () => void
  readonly livez: () => Answer
  readonly healthz: () => Answer
}

const answer = (res: http.ServerResponse, a: Answer) => {
  res.writeHead(a.ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" })
  res.end(`${JSON.stringify({ status: a.status, reason: a.reason })}\n`)
}

const handler = (routes: Routes) => (req: http.IncomingMessage, res: http.ServerResponse) => {
  const path = (req.url ?? "/").split("?")[0]
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end()
    return
  }
  if (path === "/metrics") {
    routes.beforeScrape()
    routes.exporter.getMetricsRequestHandler(req, res)
  } else if (path === "/livez") answer(res, routes.livez())
  else if (path === "/healthz") answer(res, routes.healthz())
  else res.writeHead(404, { "content-type": "text/plain" }).end("autotune serves /metrics, /livez and /healthz\n")
}

/** Listens until the scope closes. A port already taken (or not allowed) is one ConfigError line: exit 2. */
export const serve = (host: string, port: number, routes: Routes) =>
  Effect.acquireRelease(
    Effect.async<http.Server, ConfigError>((resume) => {
      const server = http.createServer(handler(routes))
      server.once("error", (error: NodeJS.ErrnoException) => {
        const why =
          error.code === "EADDRINUSE"
            ? `${host}:${port} is already in use (another autotune daemon, or another exporter?); choose a free port`
            : error.code === "EACCES"
              ? `${host}:${port} may not be bound by this user; choose a port above 1023`
              : `cannot listen on ${host}:${port} (${error.message})`
        resume(
          Effect.fail(
            new ConfigError({ key: "metricsPort", source: "AUTOTUNE_METRICS_PORT / --metrics-port", detail: why })
          )
        )
      })
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )

/**
 * OpenTelemetry for the daemon and `once`: the Prometheus reader behind /metrics when a metrics port is set,
 * and OTLP/HTTP trace export when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or …_TRACES_ENDPOINT) is set.
 * With neither, no SDK is started: nothing to pay for.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import type { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import * as Metrics from "@effect/opentelemetry/Metrics"
import type { MetricProducer } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"

type Env = Readonly<Record<string, string | undefined>>

/** Traces go out when an OTLP endpoint is configured the standard way and the SDK is not switched off. */
export const tracingWanted = (env: Env): boolean =>
  Boolean(env["OTEL_EXPORTER_OTLP_ENDPOINT"] || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) &&
  env["OTEL_SDK_DISABLED"]?.toLowerCase() !== "true" &&
  env["OTEL_TRACES_EXPORTER"]?.toLowerCase() !== "none"

/**
 * Effect's metrics as OpenTelemetry sees them, autotune's series only: the runtime's own (fibers started,
 * their lifetimes) would double the page and mean nothing to an operator.
 */
const autotuneOnly = (producer: MetricProducer): MetricProducer => ({
  collect: (options) =>
    producer.collect(options).then((result) => ({
      ...result,
      resourceMetrics: {
        ...result.resourceMetrics,
        scopeMetrics: result.resourceMetrics.scopeMetrics.map((scope) => ({
          ...scope,
          metrics: scope.metrics.filter((m) => m.descriptor.name.startsWith("autotune_"))
        }))
      }
    }))
})

export const telemetryLayer = (options: {
  readonly env: Env
  readonly version: string
  readonly hostId: string
  readonly metrics?: PrometheusExporter | undefined
}) => {
  const tracing = tracingWanted(options.env)
  const { metrics } = options
  if (!tracing && metrics === undefined) return Layer.empty
  const sdk = NodeSdk.layer(() => ({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still apply (the SDK reads them).
    resource: { serviceName: "autotune", serviceVersion: options.version, attributes: { "host.name": options.hostId } },
    // The exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout) itself.
    spanProcessor: tracing ? new BatchSpanProcessor(new OTLPTraceExporter()) : undefined,
    shutdownTimeout: "5 seconds"
  }))
  if (metrics === undefined) return sdk
  const reader = Layer.scopedDiscard(
    Effect.flatMap(Metrics.makeProducer, (producer) => Metrics.registerProducer(autotuneOnly(producer), () => metrics))
  )
  return reader.pipe(Layer.provideMerge(sdk))
}

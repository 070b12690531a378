/**
 * OpenTelemetry tracing of one process: HTTP in and out (the gateway's subgraph fetches go through
 * undici, whose spans inject W3C `traceparent`), GraphQL, PostgreSQL (node-postgres under
 * Prisma's adapter) and ioredis, exported over OTLP/HTTP.
 *
 * This module imports only OpenTelemetry: each process's entry point imports its `tracing.ts`
 * (which calls `startTracing`) BEFORE anything else, because the instrumentations patch `http`,
 * `graphql`, `pg` and `ioredis` as they are loaded, and only modules loaded afterwards.
 *
 * Off unless asked for: with no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and no OTEL_TRACES_EXPORTER, nothing is started and nothing
 * is patched. The standard OTEL_* variables apply (see ENV_CATALOGUE and docs/configuration.md).
 */
import { diag, DiagConsoleLogger, DiagLogLevel } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { GraphQLInstrumentation } from "@opentelemetry/instrumentation-graphql";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { NodeSDK } from "@opentelemetry/sdk-node";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { setTracingShutdown } from "./tracing-shutdown";

type Env = Record<string, string | undefined>;

export const TRACES_EXPORTERS = ["otlp", "console", "none"] as const;
export type TracesExporter = (typeof TRACES_EXPORTERS)[number];

/** Which exporter the environment asks for: `none` unless an OTLP endpoint or OTEL_TRACES_EXPORTER says otherwise. */
export function tracesExporterFrom(env: Env): TracesExporter {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return "none";
  const named = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (named) {
    if (!(TRACES_EXPORTERS as readonly string[]).includes(named)) {
      throw new Error(
        `Invalid environment variable OTEL_TRACES_EXPORTER=${JSON.stringify(env.OTEL_TRACES_EXPORTER)}: expected one of ${TRACES_EXPORTERS.join(", ")}`,
      );
    }
    return named as TracesExporter;
  }
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? "otlp" : "none";
}

export interface TracingOptions {
  /** Default `process.env`. */
  env?: Env;
  /** Replaces the exporter chosen from the environment (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

let current: { sdk: NodeSDK; service: string } | undefined;

/** The instrumentations every process runs (exported for tests that patch modules themselves). */
export function instrumentations() {
  return [
    new HttpInstrumentation({
      // Probes and scrapes would be most of the spans and say nothing.
      ignoreIncomingRequestHook: (request) => /^\/(healthz|readyz|metrics)\b/.test(request.url ?? ""),
    }),
    new UndiciInstrumentation(),
    // One span per field resolver is noise: keep parse, validate, execute and non-trivial resolvers.
    new GraphQLInstrumentation({ mergeItems: true, ignoreTrivialResolveSpans: true }),
    new PgInstrumentation({ requireParentSpan: true }),
    new IORedisInstrumentation({ requireParentSpan: true }),
  ];
}

/**
 * Starts tracing for `service` (the `service.name` resource; OTEL_SERVICE_NAME wins) when the
 * environment asks for it; returns null otherwise. Call it once, before loading anything else.
 */
export function startTracing(service: string, options: TracingOptions = {}): Tracing | null {
  const env = options.env ?? process.env;
  if (current) throw new Error(`tracing already started for ${current.service}`);
  const exporter = tracesExporterFrom(env);
  let spanProcessors = options.spanProcessors;
  if (!spanProcessors) {
    if (exporter === "none") return null;
    // OTLPTraceExporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT; the batch
    // processor OTEL_BSP_*.
    spanProcessors =
      exporter === "otlp"
        ? [new BatchSpanProcessor(new OTLPTraceExporter())]
        : [new SimpleSpanProcessor(new ConsoleSpanExporter())];
  }
  if (env.OTEL_LOG_LEVEL === undefined) diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.ERROR);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || service,
    spanProcessors,
    // Metrics are Prometheus (kit/src/metrics.ts) and logs go to stdout: only traces here.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: instrumentations(),
  });
  sdk.start();
  current = { sdk, service };
  setTracingShutdown(shutdownTracing);
  return { shutdown: shutdownTracing };
}

/** Flushes and stops the tracing started by startTracing (nothing when it was not started). */
export async function shutdownTracing(): Promise<void> {
  const running = current;
  current = undefined;
  setTracingShutdown(undefined);
  await running?.sdk.shutdown();
}

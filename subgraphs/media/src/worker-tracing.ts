// Loaded first by the entry point: OpenTelemetry must patch http, graphql, pg and ioredis
// before anything loads them (off unless OTEL_* variables ask for it: see kit/src/tracing.ts).
import { startTracing } from "@hv/kit/tracing";

startTracing("media-worker");

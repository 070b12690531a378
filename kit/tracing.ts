// The tracing entry point: imports only OpenTelemetry, so an entry point can load it first.
export * from "./src/tracing";

/**
 * Where a started tracing SDK leaves its shutdown, so `runMain` can flush buffered spans on stop
 * without importing OpenTelemetry in processes that do not trace.
 */
let shutdown: (() => Promise<void>) | undefined;

export function setTracingShutdown(fn: (() => Promise<void>) | undefined): void {
  shutdown = fn;
}

/** Exports buffered spans and stops tracing; nothing when tracing is off. Never rejects. */
export async function flushTracing(): Promise<void> {
  const fn = shutdown;
  shutdown = undefined;
  await fn?.().catch(() => undefined);
}

/** Whether a tracing SDK is running (it patched graphql-js's `execute`, so execution must go through it). */
export function tracingStarted(): boolean {
  return shutdown !== undefined;
}

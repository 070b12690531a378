import { isSpanContextValid, trace } from "@opentelemetry/api";
import { Writable } from "node:stream";
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** The process, e.g. `gateway` or `users`; present on every line. */
  service: string;
  level: string;
  /** Where lines go; stdout when omitted. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

/**
 * `traceId` and `spanId` of the active OpenTelemetry span, so a log line can be found from its trace
 * and the other way round. Without tracing (kit/src/tracing.ts) there is never an active span.
 */
export function traceFields(): { traceId?: string; spanId?: string } {
  const context = trace.getActiveSpan()?.spanContext();
  if (!context || !isSpanContextValid(context)) return {};
  return { traceId: context.traceId, spanId: context.spanId };
}

/** JSON lines; one logger per process, passed down, with child loggers per request. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** A logger that writes nothing (tests and benches that start a service they do not read). */
export function silentLogger(service: string): Logger {
  return createLogger({
    service,
    level: "silent",
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });
}

/** Apollo's logger interface backed by ours. */
export function apolloLogger(logger: Logger) {
  return {
    debug: (message: string) => logger.debug(message),
    info: (message: string) => logger.info(message),
    warn: (message: string) => logger.warn(message),
    error: (message: string) => logger.error(message),
  };
}

import { createLogger } from "./logger";
import type { RunningService } from "./service";
import { stopOnSignals } from "./shutdown";
import { flushTracing } from "./tracing-shutdown";

type Env = Record<string, string | undefined>;

/**
 * The body of every process's `index.ts`, the only place that touches `process`: read and
 * validate config, make the logger, start, and stop cleanly on SIGINT/SIGTERM.
 */
export function runMain<C extends { logLevel: string }>(
  service: string,
  loadConfig: (env: Env) => C,
  start: (config: C, logger: ReturnType<typeof createLogger>) => Promise<RunningService>,
  options: {
    /** The process's stop deadline, when it needs longer than the default 15 s (a worker draining long jobs). */
    stopDeadlineMs?: (config: C) => number;
  } = {},
): void {
  let config: C;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    console.error(`${service}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  const logger = createLogger({ service, level: config.logLevel });
  start(config, logger).then(
    // Buffered spans are exported after the process has drained (nothing when tracing is off).
    (running) => stopOnSignals(logger, [running.stop, flushTracing], options.stopDeadlineMs?.(config)),
    (error: unknown) => {
      logger.fatal({ err: error }, `${service} failed to start`);
      logger.flush();
      process.exit(1);
    },
  );
}

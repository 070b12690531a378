import type { Logger } from "./logger";

/** How long a stop may take before the process exits anyway, unless the process asks for longer. */
export const FORCE_EXIT_MS = 15_000;

/**
 * Stops everything on SIGINT/SIGTERM, in order, then exits. A second signal, or a stop that hangs
 * past the deadline (`forceExitMs`, default 15 s; a worker draining long jobs asks for more),
 * exits at once with status 1.
 */
export function stopOnSignals(
  logger: Logger,
  stops: Array<() => Promise<void>>,
  forceExitMs = FORCE_EXIT_MS,
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    setTimeout(() => {
      logger.error("shutdown took too long: exiting");
      process.exit(1);
    }, forceExitMs).unref();
    (async () => {
      for (const stop of stops) await stop();
    })().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "error while shutting down");
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

import type { Logger } from "./logger";

const FORCE_EXIT_MS = 15_000;

/**
 * Stops everything on SIGINT/SIGTERM, in order, then exits. A second signal, or a stop that hangs
 * past the deadline, exits at once with status 1.
 */
export function stopOnSignals(logger: Logger, stops: Array<() => Promise<void>>): void {
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
    }, FORCE_EXIT_MS).unref();
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

import { randomUUID } from "node:crypto";
import { Client } from "pg";
import type { Logger } from "../logger";

/** The channel a subgraph's `outbox_events` trigger notifies on every insert (see its migration). */
export const OUTBOX_CHANNEL = "outbox_events";

/** Shown in `pg_stat_activity.application_name` for the listening connection. */
export const OUTBOX_LISTENER_NAME = "hv-outbox-listener";

export interface OutboxWakeUpHandlers {
  /** A transaction that wrote events has committed. */
  wake(): void;
  /**
   * `true` once LISTEN is in force (after every connection), `false` when the connection is lost:
   * notifications sent meanwhile are gone, so the relay polls until it is back.
   */
  listening(up: boolean): void;
}

/** What wakes an outbox relay when events are committed (`OutboxRelayOptions.wakeUps`). */
export interface OutboxWakeUps {
  start(handlers: OutboxWakeUpHandlers): void;
  stop(): Promise<void>;
}

export interface OutboxNotificationsOptions {
  /** The subgraph's database (the one holding `outbox_events`). */
  connectionString: string;
  logger: Logger;
  /** Wait before connecting again after a loss; doubled per failed attempt up to 30 s. Default 1 000 ms. */
  reconnectMs?: number;
  /** How long the connection's own probe notification may take to come back. Default 5 000 ms. */
  probeTimeoutMs?: number;
}

const MAX_RECONNECT_MS = 30_000;

/**
 * PostgreSQL LISTEN on `OUTBOX_CHANNEL` over one connection of its own (outside the pool: a pooled
 * connection is shared and may be reset), reconnecting after any loss. Listening counts only once a
 * notification this connection sends comes back to it: behind a transaction-pooling PgBouncer it
 * never does, and the relay keeps polling.
 */
export function outboxNotifications(options: OutboxNotificationsOptions): OutboxWakeUps {
  const { logger } = options;
  const reconnectMs = options.reconnectMs ?? 1_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 5_000;
  let handlers: OutboxWakeUpHandlers | undefined;
  let client: Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let up = false;
  let stopped = false;

  const setUp = (value: boolean) => {
    if (up === value) return;
    up = value;
    handlers?.listening(value);
  };

  const lost = (current: Client, error?: Error) => {
    if (client !== current) return;
    client = undefined;
    current.removeAllListeners("notification");
    current.on("error", () => undefined); // a late socket error must not crash the process
    void current.end().catch(() => undefined);
    setUp(false);
    if (stopped) return;
    const delay = Math.min(reconnectMs * 2 ** failures, MAX_RECONNECT_MS);
    failures += 1;
    logger[failures === 1 ? "warn" : "debug"](
      { err: error, retryInMs: delay },
      "outbox relay: notification connection lost; polling until it is back",
    );
    timer = setTimeout(connect, delay);
    timer.unref();
  };

  function connect(): void {
    timer = undefined;
    if (stopped) return;
    const current = new Client({
      connectionString: options.connectionString,
      application_name: OUTBOX_LISTENER_NAME,
      keepAlive: true,
    });
    client = current;
    const probe = randomUUID();
    let probed: () => void = () => undefined;
    const probeBack = new Promise<void>((resolve) => (probed = resolve));
    current.on("notification", (message) => {
      if (message.payload === probe) probed();
      else handlers?.wake();
    });
    current.on("error", (error: Error) => lost(current, error));
    current.on("end", () => lost(current));
    let timeout: NodeJS.Timeout | undefined;
    current
      .connect()
      .then(() => current.query(`LISTEN ${OUTBOX_CHANNEL}`))
      .then(() => current.query("SELECT pg_notify($1, $2)", [OUTBOX_CHANNEL, probe]))
      .then(() =>
        Promise.race([
          probeBack,
          new Promise<never>((_, reject) => {
            timeout = setTimeout(
              () =>
                reject(
                  new Error(
                    `its own notification did not come back within ${probeTimeoutMs} ms (a transaction-pooling PgBouncer in between?)`,
                  ),
                ),
              probeTimeoutMs,
            );
          }),
        ]),
      )
      .finally(() => clearTimeout(timeout))
      .then(
        () => {
          if (client !== current) return;
          if (failures > 0) logger.info("outbox relay: notification connection back");
          failures = 0;
          setUp(true);
        },
        (error: unknown) => lost(current, error instanceof Error ? error : new Error(String(error))),
      );
  }

  return {
    start(given) {
      handlers = given;
      connect();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const current = client;
      client = undefined;
      up = false;
      await current?.end().catch(() => undefined);
    },
  };
}

import Redis, { SentinelConnector, type RedisOptions, type SentinelConnectionOptions } from "ioredis";
import type { RedisTarget } from "./config";
import type { Logger } from "./logger";
import type { ReadinessCheck } from "./readiness";

export { Redis };

/**
 * ioredis's Sentinel connector, except that the failover detector (its subscriptions to every
 * sentinel) ends with the connection it watches: plain ioredis leaves those sockets open after
 * `quit()` (ioredis #1362, unfixed in 5.11), which BullMQ's `close()` uses, so a closed client would
 * keep them (and the process) alive. Each new connection makes a new detector. The detector is
 * set up on the connection's `connect` event, synchronously, so it exists by the time `close`
 * can come. (`failoverDetector` is private in ioredis: if it is ever renamed this does nothing.)
 */
class SentinelConnectorEndingDetector extends SentinelConnector {
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions); // ioredis passes the client's options
  }

  override async connect(
    ...args: Parameters<SentinelConnector["connect"]>
  ): ReturnType<SentinelConnector["connect"]> {
    const stream = await super.connect(...args);
    stream.once("close", () =>
      (this as unknown as { failoverDetector?: { cleanup(): void } | null }).failoverDetector?.cleanup(),
    );
    return stream;
  }
}

/** The server a `redis[s]://` URL names, in ioredis options (REDIS_URL's form: see kit/src/config.ts). */
function serverOptions(url: URL): RedisOptions {
  return {
    ...(url.hostname === "" ? {} : { host: url.hostname.replace(/^\[(.*)\]$/, "$1") }),
    port: url.port === "" ? 6379 : Number(url.port),
    ...(url.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** The user, password and database a URL carries, in ioredis options. */
function credentialOptions(url: URL): RedisOptions {
  const db = url.pathname.replace(/^\//, "");
  return {
    ...(url.username === "" ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === "" ? {} : { password: decodeURIComponent(url.password) }),
    ...(db === "" ? {} : { db: Number(db) }),
  };
}

/**
 * ioredis options (`new Redis(options)`, or BullMQ's `connection`) for a Redis target, or for a
 * plain `redis://` URL. With sentinels, ioredis asks them for the primary of the group on every
 * (re)connection and checks the role of what it reached. It also listens for the sentinels'
 * `+switch-master` (failoverDetector: one subscribed connection per sentinel and client) and
 * reconnects at once: after a failover the old primary may accept writes until the sentinels
 * demote it, and those writes are lost. A client still talking to a demoted primary (`READONLY`)
 * reconnects and sends the command again. No `maxRetriesPerRequest` here: BullMQ's workers need
 * it null, so each caller adds its own.
 */
export function redisOptions(target: RedisTarget | string): RedisOptions {
  const { url: text, sentinel } = typeof target === "string" ? { url: target, sentinel: null } : target;
  const url = new URL(text);
  if (sentinel === null) return { ...serverOptions(url), ...credentialOptions(url) };
  return {
    ...credentialOptions(url),
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.name,
    ...(sentinel.password === null ? {} : { sentinelPassword: sentinel.password }),
    failoverDetector: true,
    Connector: SentinelConnectorEndingDetector,
    reconnectOnError: (error: Error) => (error.message.startsWith("READONLY") ? 2 : false),
  };
}

/** A Redis client that reconnects forever and reports trouble through the logger, once per outage. */
export function createRedis(target: RedisTarget | string, logger: Logger, role = "redis"): Redis {
  const redis = new Redis({ ...redisOptions(target), maxRetriesPerRequest: 2, lazyConnect: false });
  let reportedOutage = false;
  redis.on("error", (error: Error) => {
    if (reportedOutage) return;
    reportedOutage = true;
    logger.warn({ err: error, role }, "redis connection error");
  });
  redis.on("ready", () => {
    if (reportedOutage) logger.info({ role }, "redis connection restored");
    reportedOutage = false;
  });
  return redis;
}

/**
 * PING; once the client has been connected, fails at once while it is not (an outage), with the
 * connection's state as the reason. Before the first connection the PING waits for it.
 */
export function redisReadiness(redis: Redis): ReadinessCheck {
  let wasReady = redis.status === "ready";
  redis.on("ready", () => (wasReady = true));
  return {
    name: "redis",
    check: async () => {
      if (redis.status !== "ready" && (wasReady || redis.status === "end"))
        throw new Error(`not connected (${redis.status})`);
      await redis.ping();
    },
  };
}

/** Quits politely when connected; otherwise stops the reconnect loop at once. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "ready") {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

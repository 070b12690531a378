import Redis from "ioredis";
import type { Logger } from "./logger";
import type { ReadinessCheck } from "./readiness";

export { Redis };

/** A Redis client that reconnects forever and reports trouble through the logger, once per outage. */
export function createRedis(url: string, logger: Logger, role = "redis"): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false });
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

export function redisReadiness(redis: Redis): ReadinessCheck {
  return { name: "redis", check: () => redis.ping() };
}

/** Quits politely when connected; otherwise stops the reconnect loop at once. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "ready") {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

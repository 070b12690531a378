import {
  closeRedis,
  Redis,
  redisOptions,
  USER_CHANGED_CHANNEL,
  type Logger,
  type RedisTarget,
} from "@hv/kit";

/** The Redis client name of the listening connection (CLIENT LIST shows it). */
export const USER_CHANGES_CONNECTION_NAME = "hv-gateway-user-changes";

/**
 * Which users changed (Users publishes on every committed write to a user). `live` is true only
 * while the channel is subscribed: a change published while it is not cannot be seen, so
 * listeners get `null` ("anything may have changed") whenever the subscription is lost.
 */
export interface UserChanges {
  readonly live: boolean;
  onChange(listener: (userId: string | null) => void): void;
  stop(): Promise<void>;
}

/** Listens to USER_CHANGED_CHANNEL on a connection of its own (a subscribed connection runs nothing else). */
export function listenToUserChanges(target: RedisTarget | string, logger: Logger): UserChanges {
  const listeners: Array<(userId: string | null) => void> = [];
  const emit = (userId: string | null) => {
    for (const listener of listeners) listener(userId);
  };
  const redis = new Redis({
    ...redisOptions(target),
    connectionName: USER_CHANGES_CONNECTION_NAME,
    lazyConnect: false,
  });
  let reportedOutage = false;
  redis.on("error", (error: Error) => {
    if (reportedOutage) return;
    reportedOutage = true;
    logger.warn({ err: error, role: "user-changes" }, "redis connection error");
  });
  let live = false;
  let stopped = false;
  const lost = () => {
    if (!live) return;
    live = false;
    emit(null);
  };
  redis.on("message", (channel: string, message: string) => {
    if (channel === USER_CHANGED_CHANNEL) emit(message.toLowerCase());
  });
  redis.on("close", lost);
  redis.on("end", lost);
  redis.on("ready", () => {
    reportedOutage = false;
    // ioredis resubscribes by itself after a reconnect; this confirms it before trusting the channel.
    redis.subscribe(USER_CHANGED_CHANNEL).then(
      () => {
        if (stopped) return;
        // Whatever was kept before the loss was dropped then (`null`), so nothing missed is held.
        live = true;
      },
      (error: unknown) => logger.warn({ err: error }, "could not subscribe to user changes"),
    );
  });
  return {
    get live() {
      return live;
    },
    onChange: (listener) => {
      listeners.push(listener);
    },
    stop: async () => {
      stopped = true;
      lost();
      await closeRedis(redis);
    },
  };
}

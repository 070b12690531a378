import { SpreadTimer, type Redis } from "@hv/kit";
import type { ChatServices } from "./context";

/**
 * Online / last seen, from Redis keys that expire: `online` lives CHAT_PRESENCE_TTL_SECONDS after
 * the last heartbeat (a `heartbeat` mutation, or every third of that while `myChatEvents` is open);
 * `seen` keeps the last heartbeat's time for 30 days.
 */
const SEEN_TTL_SECONDS = 30 * 24 * 3600;

const onlineKey = (prefix: string, userId: string) => `${prefix}:chat:online:${userId}`;
const seenKey = (prefix: string, userId: string) => `${prefix}:chat:seen:${userId}`;

/**
 * ARGV: the online and seen keys' prefixes (each key is its prefix and the user id), online TTL,
 * now (ms), seen TTL, then the user ids. One round trip for many people; the script makes the
 * keys, so a beat sends each id once (no Redis Cluster: docs/deploy.md).
 */
const BEAT_MANY = `for i = 6, #ARGV do
  redis.call("SET", ARGV[1] .. ARGV[i], "1", "EX", ARGV[3])
  redis.call("SET", ARGV[2] .. ARGV[i], ARGV[4], "EX", ARGV[5])
end
return #ARGV - 5`;

type BeatingRedis = Redis & {
  hvChatBeat(
    onlinePrefix: string,
    seenPrefix: string,
    ttl: number,
    now: number,
    seenTtl: number,
    ...userIds: string[]
  ): Promise<number>;
};

/** Sets `userIds`' online keys (for `ttlSeconds`) and last-seen times in one round trip (EVALSHA). */
export async function beatAll(
  redis: Redis,
  prefix: string,
  ttlSeconds: number,
  userIds: readonly string[],
): Promise<void> {
  if (userIds.length === 0) return;
  if (!("hvChatBeat" in redis)) redis.defineCommand("hvChatBeat", { numberOfKeys: 0, lua: BEAT_MANY });
  await (redis as BeatingRedis).hvChatBeat(
    onlineKey(prefix, ""),
    seenKey(prefix, ""),
    ttlSeconds,
    Date.now(),
    SEEN_TTL_SECONDS,
    ...userIds,
  );
}

export async function beat(services: ChatServices, userId: string): Promise<void> {
  const { eventsPrefix, presenceTtlSeconds } = services.config;
  await beatAll(services.redis, eventsPrefix, presenceTtlSeconds, [userId]);
}

/**
 * Keeps the people with an open `myChatEvents` on this instance online: one beat when they
 * subscribe, then every third of the TTL, all of this instance's people in one spread timer (a
 * slice of them per second, one Redis round trip per slice) instead of a timer and a round trip
 * per subscription.
 */
export class PresenceBeats {
  /** Open subscriptions per person. */
  private readonly holders = new Map<string, number>();
  private readonly timer: SpreadTimer<string>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
    private readonly onError: (error: unknown) => void,
  ) {
    const periodMs = Math.max(1_000, (ttlSeconds * 1000) / 3);
    this.timer = new SpreadTimer<string>({
      periodMs,
      tickMs: Math.min(1_000, periodMs),
      run: (due) => void beatAll(this.redis, this.prefix, this.ttlSeconds, due).catch(this.onError),
    });
  }

  /** Beats now and every third of the TTL until the returned function is called. */
  keepOnline(userId: string): () => void {
    const count = this.holders.get(userId) ?? 0;
    this.holders.set(userId, count + 1);
    if (count === 0) {
      void beatAll(this.redis, this.prefix, this.ttlSeconds, [userId]).catch(this.onError);
      this.timer.add(userId);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.holders.get(userId) ?? 1) - 1;
      if (left > 0) {
        this.holders.set(userId, left);
        return;
      }
      this.holders.delete(userId);
      this.timer.delete(userId);
      // The last moment seen is now; "online" runs out on its own (another instance may still beat).
      void this.redis
        .set(seenKey(this.prefix, userId), String(Date.now()), "EX", SEEN_TTL_SECONDS)
        .catch(this.onError);
    };
  }

  stop(): void {
    this.timer.clear();
    this.holders.clear();
  }
}

export async function presenceOf(
  services: ChatServices,
  userIds: readonly string[],
): Promise<Array<{ online: boolean; lastSeenAt: Date | null }>> {
  if (userIds.length === 0) return [];
  const prefix = services.config.eventsPrefix;
  const keys = userIds.flatMap((id) => [onlineKey(prefix, id), seenKey(prefix, id)]);
  const values = await services.redis.mget(...keys);
  return userIds.map((_, index) => {
    const seen = values[index * 2 + 1];
    return {
      online: values[index * 2] !== null && values[index * 2] !== undefined,
      lastSeenAt: seen ? new Date(Number(seen)) : null,
    };
  });
}

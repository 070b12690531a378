import type { ChatServices } from "./context";

/**
 * Online / last seen, from Redis keys that expire: `online` lives CHAT_PRESENCE_TTL_SECONDS after
 * the last heartbeat (a `heartbeat` mutation, or every third of that while `myChatEvents` is open);
 * `seen` keeps the last heartbeat's time for 30 days.
 */
const SEEN_TTL_SECONDS = 30 * 24 * 3600;

const onlineKey = (services: ChatServices, userId: string) => `${services.config.eventsPrefix}:chat:online:${userId}`;
const seenKey = (services: ChatServices, userId: string) => `${services.config.eventsPrefix}:chat:seen:${userId}`;

export async function beat(services: ChatServices, userId: string): Promise<void> {
  await services.redis
    .multi()
    .set(onlineKey(services, userId), "1", "EX", services.config.presenceTtlSeconds)
    .set(seenKey(services, userId), String(Date.now()), "EX", SEEN_TTL_SECONDS)
    .exec();
}

/** Beats now and every third of the TTL until the returned function is called. */
export function keepOnline(services: ChatServices, userId: string, onError: (error: unknown) => void): () => void {
  const run = () => void beat(services, userId).catch(onError);
  run();
  const timer = setInterval(run, Math.max(1_000, (services.config.presenceTtlSeconds * 1000) / 3));
  timer.unref();
  return () => {
    clearInterval(timer);
    // The last moment seen is now; "online" runs out on its own (another device may still beat).
    void services.redis.set(seenKey(services, userId), String(Date.now()), "EX", SEEN_TTL_SECONDS).catch(onError);
  };
}

export async function presenceOf(services: ChatServices, userIds: readonly string[]): Promise<Array<{ online: boolean; lastSeenAt: Date | null }>> {
  if (userIds.length === 0) return [];
  const keys = userIds.flatMap((id) => [onlineKey(services, id), seenKey(services, id)]);
  const values = await services.redis.mget(...keys);
  return userIds.map((_, index) => {
    const seen = values[index * 2 + 1];
    return { online: values[index * 2] !== null && values[index * 2] !== undefined, lastSeenAt: seen ? new Date(Number(seen)) : null };
  });
}

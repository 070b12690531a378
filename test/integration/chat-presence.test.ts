import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import type { ChatServices } from "@hv/chat/src/modules/context";
import { beatAll, PresenceBeats, presenceOf } from "@hv/chat/src/modules/presence";
import { waitFor } from "../support/wait";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const SEEN_TTL_SECONDS = 30 * 24 * 3600;

describe("chat presence beats", () => {
  const redis = new Redis(REDIS_URL);
  const prefix = `hv-test-presence-${randomUUID()}`;
  const services = { redis, config: { eventsPrefix: prefix } } as unknown as ChatServices;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("should set each person's online key for the TTL and their last-seen time for 30 days, in one call", async () => {
    const [a, b, nobody] = [randomUUID(), randomUUID(), randomUUID()];
    const before = Date.now();
    await beatAll(redis, prefix, 45, [a, b]);
    for (const id of [a, b]) {
      expect(await redis.get(`${prefix}:chat:online:${id}`)).toBe("1");
      const online = await redis.ttl(`${prefix}:chat:online:${id}`);
      expect(online).toBeGreaterThan(40);
      expect(online).toBeLessThanOrEqual(45);
      const seen = Number(await redis.get(`${prefix}:chat:seen:${id}`));
      expect(seen).toBeGreaterThanOrEqual(before);
      expect(seen).toBeLessThanOrEqual(Date.now());
      expect(await redis.ttl(`${prefix}:chat:seen:${id}`)).toBeGreaterThan(SEEN_TTL_SECONDS - 10);
    }
    const [seenA, seenB, unseen] = await presenceOf(services, [a, b, nobody]);
    expect(seenA).toEqual({ online: true, lastSeenAt: expect.any(Date) });
    expect(seenB?.online).toBe(true);
    expect(unseen).toEqual({ online: false, lastSeenAt: null });
  });

  it("should keep a subscriber online with the spread timer's beats until released", async () => {
    const errors: unknown[] = [];
    // TTL 3 s: a beat every second (a third of it).
    const beats = new PresenceBeats(redis, prefix, 3, (error) => errors.push(error));
    const id = randomUUID();
    const online = () => redis.get(`${prefix}:chat:online:${id}`);
    const release = beats.keepOnline(id);
    await waitFor("the first beat", async () => (await online()) === "1");
    // Gone (as if it had run out): the next periodic beat sets it again.
    await redis.del(`${prefix}:chat:online:${id}`);
    await waitFor("a periodic beat", async () => (await online()) === "1");
    expect(Number(await redis.get(`${prefix}:chat:seen:${id}`))).toBeGreaterThan(0);
    release();
    beats.stop();
    expect(errors).toEqual([]);
  });
});

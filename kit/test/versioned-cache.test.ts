import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { cacheIfUnchanged } from "../src/versioned-cache";

describe("cacheIfUnchanged", () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis.quit();
  });

  it("should write each value of a batch only where its version is unchanged, with the TTL", async () => {
    const prefix = `hvtest:versioned:${randomUUID()}`;
    const entry = (name: string, version: string) => ({
      key: `${prefix}:${name}`,
      versionKey: `${prefix}:${name}:v`,
      value: `value of ${name}`,
      version,
    });
    await redis.set(`${prefix}:moved:v`, "3"); // a change happened after the read saw version 2
    await redis.set(`${prefix}:same:v`, "2");
    await cacheIfUnchanged(redis, [entry("fresh", "0"), entry("moved", "2"), entry("same", "2")], 60);

    expect(await redis.mget(`${prefix}:fresh`, `${prefix}:moved`, `${prefix}:same`)).toEqual([
      "value of fresh",
      null,
      "value of same",
    ]);
    const ttl = await redis.ttl(`${prefix}:same`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await cacheIfUnchanged(redis, [], 60); // nothing to write: no call
  });
});

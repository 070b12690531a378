import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createLogger } from "@hv/kit";
import { createMediaDatabase, type MediaDb, type SqlClient } from "../src/db";
import { PhotoCache } from "../src/modules/photo-cache";

describe("PhotoCache", () => {
  let db: MediaDb;
  let sql: SqlClient;
  let redis: Redis;

  beforeAll(() => {
    ({ db, sql } = createMediaDatabase(process.env.MEDIA_DATABASE_URL ?? ""));
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    await db.$disconnect();
    redis.disconnect();
  });

  it("should read an owner's ready profile photos exactly as Prisma does, in order, and the same again from Redis", async () => {
    const ownerId = randomUUID();
    const common = {
      ownerId,
      kind: "IMAGE" as const,
      purpose: "PROFILE_PHOTO" as const,
      status: "READY" as const,
    };
    const second = await db.media.create({
      data: {
        ...common,
        position: 1,
        width: 640,
        height: 800,
        contentType: "image/jpeg",
        byteSize: 123_456,
        variants: [
          {
            name: "small",
            contentType: "image/webp",
            width: 160,
            height: 200,
            byteSize: 999,
            key: "k/small",
          },
        ],
        durationMs: null,
        blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        uploadExpiresAt: new Date("2026-12-01T10:00:00.123Z"),
        uploadedAt: new Date("2026-12-01T10:00:01.456Z"),
        processedAt: new Date("2026-12-01T10:00:02.789Z"),
      },
    });
    const first = await db.media.create({
      data: { ...common, position: 0, kind: "VIDEO", durationMs: 4_000 },
    });
    // Not profile photos of this owner as the list means them: pending, failed, off the profile.
    await db.media.create({ data: { ...common, position: 2, status: "PENDING" } });
    await db.media.create({
      data: { ...common, position: 3, status: "FAILED", failureReason: "UNSUPPORTED_TYPE" },
    });
    await db.media.create({ data: { ...common, position: null } });

    const expected = (
      await db.media.findMany({
        where: { ownerId, purpose: "PROFILE_PHOTO", status: "READY", position: { not: null } },
        orderBy: [{ position: "asc" }, { createdAt: "asc" }],
      })
    ).map((row) => ({ ...row, sourceKey: null }));
    expect(expected.map((row) => row.id)).toEqual([first.id, second.id]);

    const cache = new PhotoCache(sql, redis, createLogger({ service: "media-test", level: "silent" }));
    expect(await cache.load([ownerId])).toEqual([expected]);
    expect(await redis.get(`hv:media:profile-photos:${ownerId}`)).not.toBeNull();
    expect(await cache.load([ownerId, randomUUID()])).toEqual([expected, []]);
  });
});

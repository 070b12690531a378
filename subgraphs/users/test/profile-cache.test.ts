import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createUsersDb, type UsersDb } from "../src/db";
import { ProfileCache } from "../src/modules/profile-cache";

describe("ProfileCache", () => {
  let db: UsersDb;
  let redis: Redis;

  beforeAll(() => {
    db = createUsersDb(process.env.USERS_DATABASE_URL ?? "");
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    await db.$disconnect();
    redis.disconnect();
  });

  async function newUser() {
    return db.user.create({
      data: { email: `${randomUUID()}@example.test`, passwordHash: "!test", displayName: "Cached", birthDate: new Date("1990-01-01") },
    });
  }

  it("should serve a second read from Redis and never cache the password hash or email", async () => {
    const user = await newUser();
    const cache = new ProfileCache(db, redis);
    const [first] = await cache.load([user.id]);
    expect(first?.displayName).toBe("Cached");
    const stored = await redis.get(`hv:users:profile:${user.id}`);
    expect(stored).not.toBeNull();
    expect(stored).not.toContain("passwordHash");
    expect(stored).not.toContain(user.email);
    await db.user.update({ where: { id: user.id }, data: { displayName: "Changed without invalidating" } });
    const [second] = await cache.load([user.id]);
    expect(second?.displayName).toBe("Cached");
  });

  it("should not let a read that started before a ban put the unbanned row back", async () => {
    const user = await newUser();
    let releaseRead!: () => void;
    const readHeld = new Promise<void>((resolve) => (releaseRead = resolve));
    let readStarted!: () => void;
    const started = new Promise<void>((resolve) => (readStarted = resolve));
    // The real database, with its users.findMany held open until the ban has happened.
    const slowDb = new Proxy(db, {
      get(target, property) {
        if (property !== "user") return Reflect.get(target, property);
        return new Proxy(target.user, {
          get(users, method) {
            if (method !== "findMany") return Reflect.get(users, method);
            return async (args: Parameters<UsersDb["user"]["findMany"]>[0]) => {
              const rows = await users.findMany(args);
              readStarted();
              await readHeld;
              return rows;
            };
          },
        });
      },
    }) as UsersDb;
    const slowReader = new ProfileCache(slowDb, redis);
    const writer = new ProfileCache(db, redis);

    const staleRead = slowReader.load([user.id]);
    await started;
    await db.user.update({ where: { id: user.id }, data: { bannedAt: new Date() } });
    await writer.invalidate(user.id);
    releaseRead();
    const [stale] = await staleRead;
    expect(stale?.bannedAt).toBeNull(); // that reader saw the old row...

    const [fresh] = await writer.load([user.id]); // ...but did not cache it
    expect(fresh?.bannedAt).toBeInstanceOf(Date);
  });
});

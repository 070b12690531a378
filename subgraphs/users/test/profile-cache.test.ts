import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createUsersDatabase, type SqlClient, type UsersDb } from "../src/db";
import { ProfileCache } from "../src/modules/profile-cache";

describe("ProfileCache", () => {
  let db: UsersDb;
  let sql: SqlClient;
  let redis: Redis;

  beforeAll(() => {
    ({ db, sql } = createUsersDatabase(process.env.USERS_DATABASE_URL ?? ""));
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    await db.$disconnect();
    redis.disconnect();
  });

  async function newUser() {
    return db.user.create({
      data: {
        email: `${randomUUID()}@example.test`,
        passwordHash: "!test",
        displayName: "Cached",
        birthDate: new Date("1990-01-01"),
      },
    });
  }

  it("should serve a second read from Redis and never cache the password hash or email", async () => {
    const user = await newUser();
    const cache = new ProfileCache(sql, redis);
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

  it("should read a miss's row and version in one Redis round trip, and a hit's in one", async () => {
    const user = await newUser();
    const counted = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    try {
      await counted.ping();
      const commands: string[] = [];
      const send = counted.sendCommand.bind(counted);
      counted.sendCommand = (command, stream) => {
        commands.push(command.name);
        return send(command, stream);
      };
      const cache = new ProfileCache(sql, counted);
      const [first] = await cache.load([user.id]);
      expect(first?.displayName).toBe("Cached");
      // One read of the row and its version, the SQL read, then the versioned write.
      expect(commands).toEqual(["mget", "eval"]);
      commands.length = 0;
      const [second] = await cache.load([user.id]);
      expect(second?.displayName).toBe("Cached");
      expect(commands).toEqual(["mget"]);
    } finally {
      counted.disconnect();
    }
  });

  it("should parse a row's text once while Redis holds it, and answer from a changed text at once", async () => {
    const user = await newUser();
    const cache = new ProfileCache(sql, redis);
    await cache.load([user.id]);
    const [first] = await cache.load([user.id]);
    const [second] = await cache.load([user.id]);
    // The same text: the row parsed from it before, shared (rows are never changed).
    expect(second).toBe(first);
    // Another replica's write (here: a row edited behind this process): its text is parsed.
    const key = `hv:users:profile:${user.id}`;
    const stored = (await redis.get(key)) ?? "";
    await redis.set(key, stored.replace('"Cached"', '"Edited elsewhere"'), "EX", 300);
    const [edited] = await cache.load([user.id]);
    expect(edited?.displayName).toBe("Edited elsewhere");
    expect(edited?.createdAt).toEqual(first?.createdAt);
    await redis.set(key, stored, "EX", 300);
    const [back] = await cache.load([user.id]);
    expect(back?.displayName).toBe("Cached");
    expect(back).not.toBe(edited);
  });

  it("should read a row exactly as Prisma does, less the password hash and email, and revive it the same from Redis", async () => {
    const user = await db.user.create({
      data: {
        email: `${randomUUID()}@example.test`,
        passwordHash: "!test",
        displayName: "Every column",
        bio: "set",
        birthDate: new Date("1988-12-31"),
        gender: "NONBINARY",
        gendersOfInterest: ["WOMAN", "NONBINARY"],
        interests: ["jazz", "climbing"],
        ageMin: 25,
        ageMax: 40,
        maxDistanceKm: 12,
        visibility: "HIDDEN",
        role: "MODERATOR",
        bannedAt: new Date("2026-11-30T10:20:30.456Z"),
      },
    });
    const { passwordHash: _hash, email: _email, ...expected } = user;
    const cache = new ProfileCache(sql, redis);
    const [fromPostgres] = await cache.load([user.id]);
    expect(fromPostgres).toEqual(expected);
    expect(fromPostgres?.birthDate.toISOString()).toBe("1988-12-31T00:00:00.000Z");
    const [fromRedis] = await cache.load([user.id]);
    expect(fromRedis).toEqual(expected);
    expect(await cache.load([randomUUID()])).toEqual([null]);

    // A fresh sign-up has NULL lists in Postgres: Prisma (and so the cache) gives [].
    const bare = await newUser();
    const { passwordHash: _bareHash, email: _bareEmail, ...bareExpected } = bare;
    expect(bareExpected.interests).toEqual([]);
    expect(await cache.load([bare.id])).toEqual([bareExpected]);
  });

  it("should not let a read that started before a ban put the unbanned row back", async () => {
    const user = await newUser();
    let releaseRead!: () => void;
    const readHeld = new Promise<void>((resolve) => (releaseRead = resolve));
    let readStarted!: () => void;
    const started = new Promise<void>((resolve) => (readStarted = resolve));
    // The real database, with the cache's read held open until the ban has happened.
    const slowSql: SqlClient = {
      async query<T>(statement: Parameters<SqlClient["query"]>[0]) {
        const rows = await sql.query<T>(statement);
        readStarted();
        await readHeld;
        return rows;
      },
    };
    const slowReader = new ProfileCache(slowSql, redis);
    const writer = new ProfileCache(sql, redis);

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

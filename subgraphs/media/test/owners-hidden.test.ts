import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createDatabaseClients, createLogger, type SqlClient } from "@hv/kit";
import { PrismaClient } from "../src/generated/prisma/client";
import { createLoaders } from "../src/loaders";
import { PhotoCache } from "../src/modules/photo-cache";

describe("ownerHiddenFromViewer", () => {
  let clients: ReturnType<typeof createDatabaseClients<PrismaClient>>;
  let sql: SqlClient;
  let redis: Redis;

  beforeAll(() => {
    clients = createDatabaseClients(PrismaClient, process.env.MEDIA_DATABASE_URL ?? "");
    sql = clients.sql;
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    await clients.prisma.$disconnect();
    redis.disconnect();
  });

  it("should hide banned and blocked owners (either way) with one prepared statement", async () => {
    const viewer = randomUUID();
    const [shown, banned, blockedByViewer, blockedViewer] = [
      randomUUID(),
      randomUUID(),
      randomUUID(),
      randomUUID(),
    ];
    const db = clients.prisma;
    const eventAt = new Date();
    await db.userState.create({ data: { userId: banned, banned: true, eventAt } });
    await db.block.create({ data: { blockerId: viewer, blockedId: blockedByViewer, eventAt } });
    await db.block.create({ data: { blockerId: blockedViewer, blockedId: viewer, eventAt } });
    const statements: Array<string | undefined> = [];
    const recording: SqlClient = {
      query: (statement) => {
        statements.push(statement.name);
        return sql.query(statement);
      },
    };
    const photos = new PhotoCache(sql, redis, createLogger({ service: "test", level: "silent" }));
    const loaders = createLoaders(recording, viewer, photos);
    const hidden = await loaders.ownerHiddenFromViewer.loadMany([
      shown,
      banned,
      blockedByViewer,
      blockedViewer,
      viewer,
    ]);
    expect(hidden).toEqual([false, true, true, true, false]);
    // Parsed once per connection and planned once PostgreSQL settles on a generic plan.
    expect(statements).toEqual(["media_owners_hidden"]);
    const again = createLoaders(recording, viewer, photos);
    expect(await again.ownerHiddenFromViewer.loadMany([banned, shown])).toEqual([true, false]);
    const { rows } = await clients.pool.query<{ name: string }>("SELECT name FROM pg_prepared_statements");
    expect(rows.map((row) => row.name)).toContain("media_owners_hidden");
  });
});

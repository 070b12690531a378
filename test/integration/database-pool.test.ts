import { randomBytes } from "node:crypto";
import { Pool } from "pg";
import { defaultDatabaseUrl, dropDatabase, ensureDatabase, withDatabaseName } from "@hv/prisma";
import { createUsersDatabase } from "@hv/users/src/db";
import { waitFor } from "../support/wait";

// A database of our own (no tables needed): its backends are the pool's connections.
const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
const baseUrl = process.env.USERS_DATABASE_URL || defaultDatabaseUrl("users");
const databaseName = `hv_test_${runId}_pool`;
const databaseUrl = withDatabaseName(baseUrl, databaseName);
/** Looks at pg_stat_activity from the users database, so it is not one of the counted backends. */
let observer: Pool;

const backends = async () =>
  Number(
    (
      await observer.query<{ count: string }>(
        "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = $1",
        [databaseName],
      )
    ).rows[0]?.count,
  );

beforeAll(async () => {
  await ensureDatabase(databaseUrl);
  observer = new Pool({ connectionString: baseUrl, max: 1 });
}, 60_000);

afterAll(async () => {
  await observer?.end();
  await dropDatabase(databaseUrl);
});

describe("DATABASE_POOL_MIN (createDatabaseClients' sizing.min)", () => {
  it("opens that many connections before any query and keeps using them", async () => {
    const { db, sql } = createUsersDatabase(databaseUrl, {}, { min: 3 });
    try {
      await waitFor("3 connections opened with no query", async () => (await backends()) === 3);
      // One query at a time, by either client, takes an open connection: none is added.
      for (let i = 0; i < 5; i += 1) await sql.query({ text: "SELECT 1", values: [] });
      await db.$queryRawUnsafe("SELECT 1");
      expect(await backends()).toBe(3);
    } finally {
      await db.$disconnect();
    }
    await waitFor("the pool's connections closed", async () => (await backends()) === 0);
  });

  it("opens none before a query by default", async () => {
    const { db } = createUsersDatabase(databaseUrl);
    try {
      expect(await backends()).toBe(0);
      await db.$queryRawUnsafe("SELECT 1");
      expect(await backends()).toBe(1);
    } finally {
      await db.$disconnect();
    }
  });
});

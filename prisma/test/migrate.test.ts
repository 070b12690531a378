import { readdirSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import {
  databaseName,
  databaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
  schemaDir,
  withConnection,
  withDatabaseName,
} from "../src/index";

describe("discovery migrations", () => {
  // Named like test/global-setup.ts's databases, so dropStaleTestDatabases also removes a leftover.
  const name = `hv_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}_prisma`;
  const url = withDatabaseName(databaseUrl("discovery"), name);
  const query = (sql: string) => withConnection(url, (run) => run(sql));

  afterAll(async () => {
    await dropDatabase(url);
  });

  it("should create the database only when it is missing", async () => {
    await expect(ensureDatabase(url)).resolves.toBe(true);
    await expect(ensureDatabase(url)).resolves.toBe(false);
  });

  it("should install postgis and the GiST index on user_locations.location", async () => {
    await expect(migrateDeploy("discovery", url)).resolves.toMatch(/_init/);

    await expect(query("SELECT extname FROM pg_extension")).resolves.toContainEqual({ extname: "postgis" });
    const indexes = await query(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'user_locations'",
    );
    expect(indexes).toContainEqual({
      indexname: "user_locations_location_idx",
      indexdef: expect.stringMatching(/USING gist \(location\)/),
    });
  });

  it("should do nothing when migrated again", async () => {
    await expect(migrateDeploy("discovery", url)).resolves.toMatch(/No pending migrations/);
    const committed = readdirSync(path.join(schemaDir("discovery"), "migrations"), {
      withFileTypes: true,
    }).filter((entry) => entry.isDirectory());
    await expect(query("SELECT migration_name FROM _prisma_migrations")).resolves.toHaveLength(
      committed.length,
    );
  });

  it("should drop the database even while a connection is open", async () => {
    await withConnection(url, async (run) => {
      await run("SELECT 1"); // the pool keeps this connection open
      await dropDatabase(url);
    });
    const databases = await withConnection(withDatabaseName(url, "postgres"), (run) =>
      run("SELECT datname FROM pg_database"),
    );
    expect(databases).not.toContainEqual({ datname: databaseName(url) });
  });
});

import { randomBytes } from "node:crypto";
import { PrismaPg } from "@prisma/adapter-pg";
import { databaseName, databaseUrl, dropDatabase, ensureDatabase, migrateDeploy } from "../src/index";

/** Named like test/global-setup.ts's databases, so dropStaleTestDatabases also removes a leftover. */
function throwawayUrl(): string {
  const url = new URL(databaseUrl("discovery"));
  url.pathname = `/hv_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}_prisma`;
  return url.toString();
}

async function query(url: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const adapter = await new PrismaPg({ connectionString: url, max: 1 }).connect();
  try {
    return (await adapter.underlyingDriver().query(sql)).rows;
  } finally {
    await adapter.dispose();
  }
}

describe("discovery migrations", () => {
  const url = throwawayUrl();

  afterAll(async () => {
    await dropDatabase(url);
  });

  it("should create the database only when it is missing", async () => {
    await expect(ensureDatabase(url)).resolves.toBe(true);
    await expect(ensureDatabase(url)).resolves.toBe(false);
  });

  it("should install postgis and the GiST index on user_locations.location", async () => {
    const output = await migrateDeploy("discovery", url);
    expect(output).toMatch(/_init/);

    const extensions = await query(url, "SELECT extname FROM pg_extension WHERE extname = 'postgis'");
    expect(extensions).toHaveLength(1);
    const indexes = await query(
      url,
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'user_locations'",
    );
    expect(indexes).toContainEqual({
      indexname: "user_locations_location_idx",
      indexdef: expect.stringMatching(/USING gist \(location\)/),
    });
  });

  it("should do nothing when migrated again", async () => {
    await expect(migrateDeploy("discovery", url)).resolves.toMatch(/No pending migrations/);
    const applied = await query(
      url,
      "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL",
    );
    expect(applied).toHaveLength(1);
  });

  it("should drop the database, even with open connections", async () => {
    const adapter = await new PrismaPg({ connectionString: url }).connect(); // an idle open connection
    await adapter.underlyingDriver().query("SELECT 1");
    try {
      await dropDatabase(url);
      const maintenance = new URL(url);
      maintenance.pathname = "/postgres";
      const rows = await query(maintenance.toString(), "SELECT datname FROM pg_database");
      expect(rows).not.toContainEqual({ datname: databaseName(url) });
    } finally {
      await adapter.dispose();
    }
  });
});

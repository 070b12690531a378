import { PrismaPg } from "@prisma/adapter-pg";

/** The name of the database a URL points at. */
export function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  if (!name) throw new Error(`No database name in ${new URL(databaseUrl).origin}`);
  return name;
}

/** The same server, user and options, another database. */
export function withDatabaseName(databaseUrl: string, name: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

type Query = (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** Runs `fn` connected to the database at `databaseUrl`, then disconnects. */
export async function withConnection<T>(databaseUrl: string, fn: (query: Query) => Promise<T>): Promise<T> {
  // node-postgres through the Prisma adapter: `pg` itself is not a dependency of this package.
  const adapter = await new PrismaPg({ connectionString: databaseUrl, max: 1 }).connect();
  try {
    const pool = adapter.underlyingDriver();
    return await fn(async (sql, params = []) => (await pool.query(sql, params)).rows);
  } finally {
    await adapter.dispose();
  }
}

/** Runs `fn` connected to the server's `postgres` maintenance database. */
function withMaintenanceDb<T>(databaseUrl: string, fn: (query: Query) => Promise<T>): Promise<T> {
  return withConnection(withDatabaseName(databaseUrl, "postgres"), fn);
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Creates the database `databaseUrl` names if it does not exist. Returns whether it created it. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const name = databaseName(databaseUrl);
  return withMaintenanceDb(databaseUrl, async (query) => {
    if ((await query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).length > 0) return false;
    try {
      await query(`CREATE DATABASE ${quoteIdent(name)}`);
      return true;
    } catch (error) {
      // Created meanwhile by someone else: 42P04 duplicate_database, or 23505 on the catalog's index.
      const code = (error as { code?: unknown }).code;
      if (code === "42P04" || code === "23505") return false;
      throw error;
    }
  });
}

/** Drops the database `databaseUrl` names, disconnecting its sessions. No error if it is missing. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = databaseName(databaseUrl);
  await withMaintenanceDb(databaseUrl, (query) =>
    query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`),
  );
}

/**
 * Drops test databases (`hv_test_<base36 ms>_<id>_<schema>`, see test/global-setup.ts) of jest runs that
 * started more than `maxAgeMs` ago and never reached their teardown. Returns their names.
 */
export async function dropStaleTestDatabases(
  databaseUrl: string,
  maxAgeMs = 2 * 60 * 60 * 1000,
): Promise<string[]> {
  const rows = await withMaintenanceDb(databaseUrl, (query) =>
    query("SELECT datname FROM pg_database WHERE datname LIKE 'hv\\_test\\_%'"),
  );
  const stale = rows
    .map((row) => String(row.datname))
    .filter((name) => {
      const startedAt = parseInt(name.split("_")[2] ?? "", 36);
      return Number.isFinite(startedAt) && Date.now() - startedAt > maxAgeMs;
    });
  for (const name of stale) await dropDatabase(withDatabaseName(databaseUrl, name));
  return stale;
}

/** Whether the server can `CREATE EXTENSION postgis`, and its major version (for apt package names). */
export async function postgisStatus(
  databaseUrl: string,
): Promise<{ available: boolean; serverMajor: number }> {
  return withMaintenanceDb(databaseUrl, async (query) => {
    const [row] = await query(
      "SELECT current_setting('server_version_num')::int / 10000 AS major," +
        " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') AS available",
    );
    return { available: row?.available === true, serverMajor: Number(row?.major) };
  });
}

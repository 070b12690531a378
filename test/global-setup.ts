import { randomBytes } from "node:crypto";
import {
  SCHEMAS,
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropStaleTestDatabases,
  ensureDatabase,
  migrateDeploy,
} from "@hv/prisma";

/**
 * Gives this jest run databases of its own, one per subgraph, migrated with the real migrations,
 * and points the subgraphs' URL variables at them. test/global-teardown.ts drops them. Once per jest
 * run: the integration and e2e projects share the databases when a run selects both.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.HV_TEST_RUN_ID) return;
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  process.env.HV_TEST_RUN_ID = runId;
  // Event queues of this run only: another run (or a dev stack) on the same Redis never takes them.
  process.env.EVENTS_PREFIX = `hvtest_${runId}`;
  await dropStaleTestDatabases(defaultDatabaseUrl("users"));
  await Promise.all(
    SCHEMAS.map(async (name) => {
      const base = new URL(process.env[databaseUrlEnvVar(name)] ?? defaultDatabaseUrl(name));
      base.pathname = `/hv_test_${runId}_${name}`;
      const url = base.toString();
      await ensureDatabase(url);
      await migrateDeploy(name, url);
      process.env[databaseUrlEnvVar(name)] = url;
    }),
  );
}

import type { DiscoveryDb } from "../db";

const CLUSTER_INDEX = "user_locations_cluster_order";

/**
 * Rewrites `user_locations` in spatial order (PostgreSQL CLUSTER on a GiST index of every
 * location), so that people who are near each other are stored on the same heap pages.
 *
 * Why: nearby search walks the GiST index nearest-first and reads each candidate's row; in
 * arrival order, the ~1,000 rows one first page looks at sit on ~1,000 different pages. Clustered,
 * they sit on a few dozen. Measured at 1M people (docs/measurements.md): p50 6.4 -> 1.5 ms and p99
 * 27 -> 6 ms of execution time; with 20% of people moved since, p99 is still ~13 ms, so once a day
 * is plenty.
 *
 * CLUSTER holds an ACCESS EXCLUSIVE lock on the table while it rewrites it (tens of seconds at 1M
 * people on this machine): nearby searches and location updates wait meanwhile. Run it in the
 * quietest hour (`pnpm run db:cluster-locations`), or use pg_repack for an online rewrite
 * (`pg_repack --table=user_locations --order-by=…`) where it is installed.
 */
export async function clusterLocations(db: DiscoveryDb): Promise<{ seconds: number }> {
  const started = Date.now();
  // CLUSTER cannot use the partial search index; a full index is built for the rewrite and dropped.
  await db.$executeRawUnsafe(
    `CREATE INDEX IF NOT EXISTS "${CLUSTER_INDEX}" ON "user_locations" USING GIST ("location")`,
  );
  try {
    await db.$executeRawUnsafe(`CLUSTER "user_locations" USING "${CLUSTER_INDEX}"`);
  } finally {
    await db.$executeRawUnsafe(`DROP INDEX IF EXISTS "${CLUSTER_INDEX}"`);
  }
  await db.$executeRawUnsafe(`ANALYZE "user_locations"`);
  return { seconds: (Date.now() - started) / 1000 };
}

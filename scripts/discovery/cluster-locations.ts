/**
 * `pnpm run db:cluster-locations`: rewrites Discovery's user_locations in spatial order (see
 * subgraphs/discovery/src/maintenance/cluster-locations.ts for why, and for the lock it takes).
 * Uses DISCOVERY_DATABASE_URL.
 */
import { loadDiscoveryConfig } from "@hv/kit";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";

async function main(): Promise<void> {
  const config = loadDiscoveryConfig(process.env);
  const db = createDiscoveryDb(config.databaseUrl);
  try {
    const { seconds } = await clusterLocations(db);
    console.log(`user_locations clustered in ${seconds.toFixed(1)} s`);
  } finally {
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * Nearby at the SQL level: what the resolver runs (modules/nearby.ts `searchNearby`: the viewer row, then
 * the one KNN statement `nearbySql` on user_locations with the copied profile columns, on the
 * search pool with its planner settings) against
 * the naive `ST_DWithin + ORDER BY ST_Distance` form with the same filters, first page of 50.
 *
 *   pnpm exec tsx bench/nearby.ts [--users 1000000] [--viewers 200] [--naive-viewers 50] [--keep]
 *
 * Three rounds over the same viewers: rows in arrival order (as seeded), after
 * `db:cluster-locations` (rows in spatial order), and after a fifth of everyone moved since.
 * Creates its own database (hv_bench_nearby_<time>) next to DISCOVERY_DATABASE_URL (or the default),
 * applies the real migrations, seeds N people in a ~100 × 100 km city with SQL (generate_series),
 * ANALYZEs, measures, and drops the database (unless --keep).
 */
import { execSync } from "node:child_process";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";
import { searchNearby, type NearbySearch } from "@hv/discovery/src/modules/nearby";
import { createSearchPool } from "@hv/discovery/src/modules/search-pool";
import { Prisma } from "@hv/discovery/src/generated/prisma/client";
import type { DiscoveryDb } from "@hv/discovery/src/db";

/**
 * The naive form, same rules as modules/nearby.ts in one statement: everyone within the radius
 * (ST_DWithin), filtered, then sorted by ST_Distance.
 */
async function naiveNearby(
  db: DiscoveryDb,
  viewerId: string,
  freshAfter: Date,
  limit: number,
): Promise<unknown[]> {
  return db.$queryRaw<unknown[]>(Prisma.sql`
    WITH v AS (
      SELECT p.user_id, p.gender, p.genders_of_interest, p.age_min, p.age_max, p.max_distance_km,
             date_part('year', age(current_date, p.birth_date))::int AS age, vl.location
      FROM discovery_profiles p JOIN user_locations vl ON vl.user_id = p.user_id
      WHERE p.user_id = ${viewerId}::uuid AND vl.updated_at >= ${freshAfter}
    )
    SELECT l.user_id::text AS id, ST_Distance(l.location, v.location, false) AS metres
    FROM v
    JOIN user_locations l ON ST_DWithin(l.location, v.location, v.max_distance_km * 1000.0, false)
    JOIN discovery_profiles c ON c.user_id = l.user_id
    WHERE l.user_id <> v.user_id AND l.updated_at >= ${freshAfter}
      AND c.visible AND NOT c.banned
      AND c.gender = ANY(v.genders_of_interest) AND v.gender = ANY(c.genders_of_interest)
      AND c.birth_date <= (current_date - make_interval(years => v.age_min))::date
      AND c.birth_date > (current_date - make_interval(years => v.age_max + 1))::date
      AND v.age BETWEEN c.age_min AND c.age_max
      AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = v.user_id AND b.blocked_id = l.user_id)
      AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = l.user_id AND b.blocked_id = v.user_id)
      AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = v.user_id AND s.target_id = l.user_id)
    ORDER BY ST_Distance(l.location, v.location, false), l.user_id
    LIMIT ${limit}`);
}
import { seedCity } from "./support/city";
import {
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
} from "@hv/prisma";
import { flag, percentile } from "./support/args";

async function main(): Promise<void> {
  const users = flag("users", 1_000_000);
  const viewers = flag("viewers", 200);
  const naiveViewers = flag("naive-viewers", 50);
  const keep = process.argv.includes("--keep");
  const base = new URL(process.env[databaseUrlEnvVar("discovery")] ?? defaultDatabaseUrl("discovery"));
  base.pathname = `/hv_bench_nearby_${Date.now().toString(36)}`;
  const url = base.toString();
  console.log(`command: pnpm exec tsx bench/nearby.ts ${process.argv.slice(2).join(" ")}`.trim());
  console.log(
    `machine: ${os.cpus()[0]?.model ?? "?"}, nproc ${execSync("nproc").toString().trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  await ensureDatabase(url);
  await migrateDeploy("discovery", url);
  const db = createDiscoveryDb(url);
  const pool = createSearchPool(url, 1);
  try {
    const [{ version } = { version: "?" }] = await db.$queryRaw<
      Array<{ version: string }>
    >`SELECT version() || ' / PostGIS ' || postgis_lib_version() AS version`;
    console.log(`database: ${version}`);
    const started = performance.now();
    await seedCity(db, users);
    console.log(
      `seeded ${users.toLocaleString("en")} people in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    const freshAfter = new Date(Date.now() - 24 * 60 * 60_000);
    const sample = await db.$queryRawUnsafe<Array<{ id: string }>>(`
      SELECT p.user_id::text AS id FROM discovery_profiles p JOIN user_locations l USING (user_id)
      WHERE l.updated_at >= now() - interval '24 hours' AND p.visible AND NOT p.banned
      ORDER BY random() LIMIT ${viewers}`);
    const time = async (viewerId: string, naiveOrder: boolean) => {
      const s: NearbySearch = { viewerId, freshAfter, limit: 51, after: null };
      const t0 = performance.now();
      const rows = naiveOrder ? await naiveNearby(db, viewerId, freshAfter, 51) : await searchNearby(pool, s);
      return { ms: performance.now() - t0, rows: rows.length };
    };
    const fmt = (n: number) => `${n.toFixed(1)} ms`;
    /** Every sampled viewer with searchNearby; the first `naiveViewers` with the naive form too, alternating which goes first. */
    const measure = async (label: string) => {
      for (const { id } of sample.slice(0, 10)) await time(id, false); // warm-up
      const knn: number[] = [];
      const naive: number[] = [];
      let rowsKnn = 0;
      for (const [i, { id }] of sample.entries()) {
        const withNaive = i < naiveViewers;
        const order = !withNaive ? [false] : i % 2 === 0 ? [false, true] : [true, false];
        for (const naiveOrder of order) {
          const { ms, rows } = await time(id, naiveOrder);
          (naiveOrder ? naive : knn).push(ms);
          if (!naiveOrder) rowsKnn += rows;
        }
      }
      knn.sort((a, b) => a - b);
      naive.sort((a, b) => a - b);
      console.log(`\n${label}`);
      console.log(
        `  KNN   (searchNearby, ${sample.length} viewers, mean rows ${(rowsKnn / sample.length).toFixed(1)}): p50 ${fmt(percentile(knn, 50))}  p99 ${fmt(percentile(knn, 99))}`,
      );
      if (naive.length > 0) {
        console.log(
          `  naive (ST_DWithin + ORDER BY ST_Distance, first ${naive.length} viewers): p50 ${fmt(percentile(naive, 50))}  p99 ${fmt(percentile(naive, 99))}`,
        );
        console.log(
          `  naive / KNN: p50 ×${(percentile(naive, 50) / percentile(knn, 50)).toFixed(1)}  p99 ×${(percentile(naive, 99) / percentile(knn, 99)).toFixed(1)}`,
        );
      }
    };

    await measure("1. rows in arrival order (as seeded: neighbours on unrelated pages)");
    const { seconds } = await clusterLocations(db);
    console.log(`\nclustered user_locations (pnpm run db:cluster-locations) in ${seconds.toFixed(1)} s`);
    await measure("2. after db:cluster-locations");
    // A day of moving: a fifth of everyone gets a new snapped location (rows leave their pages).
    await db.$executeRawUnsafe(`
      UPDATE user_locations SET updated_at = now(), location = ST_SetSRID(ST_MakePoint(
               round((13.405 + (random() + random() - 1) * 0.74) / 0.00739) * 0.00739,
               round((52.52 + (random() + random() - 1) * 0.45) / 0.0045) * 0.0045), 4326)::geography
      WHERE random() < 0.2`);
    await db.$executeRawUnsafe(`VACUUM ANALYZE user_locations`);
    await measure("3. clustered, then 20% of people moved");
  } finally {
    await pool.close();
    await db.$disconnect();
    if (keep) console.log(`kept ${url}`);
    else await dropDatabase(url);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

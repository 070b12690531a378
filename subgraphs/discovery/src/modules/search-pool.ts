import { Pool } from "pg";
import type { DatabaseObserver } from "../db";
import type { Prisma } from "../generated/prisma/client";

/**
 * The connections nearby search runs on: plain node-postgres (no ORM round trip on the hot
 * path), with planner settings of their own, so nothing else in Discovery is affected:
 *
 *  - `enable_bitmapscan = off`: for a viewer with narrow preferences the planner underestimates
 *    how many candidates pass the filters and prefers "everyone within the radius, bitmap heap
 *    scan, sort"; measured at 1M people that plan is the whole p99 (100-300 ms against 10-30 ms
 *    for the KNN walk it replaces). With it off, the statement is always the ordered KNN scan of
 *    the partial GiST index, which stops at the page size.
 *  - `max_parallel_workers_per_gather = 0`: a first page of 50 is too small for parallel workers
 *    to pay for their start-up (a few ms each).
 *
 * See bench/nearby.ts and docs/measurements.md.
 */
export const SEARCH_PLANNER_OPTIONS = "-c enable_bitmapscan=off -c max_parallel_workers_per_gather=0";

export interface SearchPool {
  query<T>(sql: Prisma.Sql): Promise<T[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createSearchPool(
  databaseUrl: string,
  max = 10,
  observer: DatabaseObserver = {},
  poolName = "search",
): SearchPool {
  const pool = new Pool({ connectionString: databaseUrl, max, options: SEARCH_PLANNER_OPTIONS });
  observer.metrics?.observePgPool(poolName, pool);
  // An idle client's error (the server restarted) must not crash the process: the pool replaces it.
  pool.on("error", () => {});
  return {
    async query<T>(sql: Prisma.Sql) {
      observer.onQuery?.(sql.text);
      const result = await pool.query(sql.text, sql.values as unknown[]);
      return result.rows as T[];
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    close: () => pool.end(),
  };
}

import type { AuthContext, DiscoveryConfig, RateLimiter, RequestContextBase, SqlClient } from "@hv/kit";
import type { DiscoveryDb } from "./db";
import type { DiscoveryLoaders } from "./loaders";
import type { SearchPool } from "./modules/search-pool";

/** Long-lived collaborators, made once per process. */
export interface DiscoveryServices {
  db: DiscoveryDb;
  /** Plain SQL on `db`'s pool, for the hot reads (the matches page, distances). */
  sql: SqlClient;
  /** Nearby search's own connections and planner settings. */
  searchPool: SearchPool;
  /**
   * DISCOVERY_READ_DATABASE_URL's pool, same planner settings: nearby's candidate query runs here
   * when set (modules/nearby.ts searchNearby says what stays on the primary). Null: no replica.
   */
  replicaSearchPool: SearchPool | null;
  config: DiscoveryConfig;
  /** updateLocation budget per user. */
  locationUpdates: RateLimiter;
  /** like / superLike / pass budget per user. */
  swipes: RateLimiter;
  /** Publishes outbox events (match.created, match.ended) right after their transaction commits. */
  flushEvents(): void;
}

export interface DiscoveryContext extends RequestContextBase, AuthContext {
  loaders: DiscoveryLoaders;
  services: DiscoveryServices;
}

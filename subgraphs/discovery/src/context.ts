import type { AuthContext, DiscoveryConfig, RateLimiter, RequestContextBase } from "@hv/kit";
import type { DiscoveryDb } from "./db";
import type { DiscoveryLoaders } from "./loaders";

/** Long-lived collaborators, made once per process. */
export interface DiscoveryServices {
  db: DiscoveryDb;
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

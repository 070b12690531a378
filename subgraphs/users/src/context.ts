import type { AuthContext, RequestContextBase } from "@hv/kit";
import type { UsersDb } from "./db";
import type { UsersLoaders } from "./loaders";
import type { AccountRateLimits } from "./modules/rate-limits";
import type { ProfileCache } from "./modules/profile-cache";
import type { SessionService } from "./modules/sessions";

/** Long-lived collaborators, made once per process. */
export interface UsersServices {
  db: UsersDb;
  sessions: SessionService;
  profiles: ProfileCache;
  limits: AccountRateLimits;
  /** Publishes outbox events right after the transaction that wrote them commits. */
  flushEvents(): void;
}

export interface UsersContext extends RequestContextBase, AuthContext {
  loaders: UsersLoaders;
  services: UsersServices;
}

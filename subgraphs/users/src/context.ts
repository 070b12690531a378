import type { AuthContext, RequestContextBase } from "@hv/kit";
import type { UsersDb } from "./db";
import type { UsersLoaders } from "./loaders";
import type { MailOutbox } from "./mail/jobs";
import type { AfterResponse } from "./modules/after-response";
import type { KnownDevices } from "./modules/known-devices";
import type { AccountRateLimits } from "./modules/rate-limits";
import type { ProfileCache } from "./modules/profile-cache";
import type { SessionService } from "./modules/sessions";

/** Long-lived collaborators, made once per process. */
export interface UsersServices {
  db: UsersDb;
  sessions: SessionService;
  profiles: ProfileCache;
  limits: AccountRateLimits;
  knownDevices: KnownDevices;
  /** Account mails, queued for the users worker. */
  mail: MailOutbox;
  /** Work that must not delay an answer (see after-response.ts). */
  afterResponse: AfterResponse;
  /** The moderation queue's settings. */
  moderation: { claimSeconds: number };
  /** Publishes outbox events right after the transaction that wrote them commits. */
  flushEvents(): void;
}

export interface UsersContext extends RequestContextBase, AuthContext {
  loaders: UsersLoaders;
  services: UsersServices;
}

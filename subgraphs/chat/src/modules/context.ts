import type { GroupCommit, OutboxRecord, RateLimiter, Redis, RequestContextBase } from "@hv/kit";
import type { ChatConfig } from "../config";
import type { ChatDb, SqlClient } from "../db";
import type { ChatLoaders } from "../loaders";
import type { ChatBus } from "./bus";
import type { PresenceBeats } from "./presence";
import type { SendAdmission } from "./send-admission";
import type { SendPrechecks } from "./send-precheck";

/** What every request shares: built once per process. */
export interface ChatServices {
  db: ChatDb;
  /** Plain SQL on the same pool as `db`: the send path's statements (Prisma's compiler cost ~1 ms each). */
  sql: SqlClient;
  /** STORE's statements, several sends in one commit when they queue (keyed by conversation id). */
  stores: GroupCommit;
  config: ChatConfig;
  redis: Redis;
  bus: ChatBus;
  /** Keeps subscribed people online (one spread timer for the instance). */
  presence: PresenceBeats;
  /** The send budgets and spam counters, one Redis round trip per send. */
  sendAdmission: SendAdmission;
  /** The sends' pre-checks: sends arriving while one is read share one statement (send-precheck.ts). */
  sendPrechecks: SendPrechecks;
  /** CHAT_INVITATIONS_PER_DAY per inviter. */
  invitationsPerDay: RateLimiter;
  /** Publish the outbox now rather than on the next poll (after committing an event). */
  flushEvents(): void;
  /** Enqueue these just-committed outbox events (message.created) now rather than on the next poll. */
  publishEvents(records: readonly OutboxRecord[]): void;
  /** Mark these just-committed outbox events published without enqueueing them (nobody to push to). */
  markEventsPublished(ids: readonly string[]): void;
}

export interface ChatContext extends RequestContextBase {
  services: ChatServices;
  /** Made on first use, and again after refreshLoaders. */
  readonly loaders: ChatLoaders;
  /** New loaders (no cache carried over): subscriptions call it per event. */
  refreshLoaders(): void;
}

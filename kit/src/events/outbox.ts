import { timeOrderedUuid } from "../ids";
import { parseEventPayload, type EventPayload, type EventType } from "./catalogue";

/** One row of a subgraph's `outbox_events` table, as the relay sees it. */
export interface OutboxRecord {
  id: string;
  type: string;
  payload: unknown;
  createdAt: Date;
}

/**
 * What the relay needs from a subgraph's outbox. One relay uses one store, one claim at a time.
 */
export interface OutboxStore {
  /**
   * Up to `limit` unpublished events, oldest first, claimed by this store until `markPublished`:
   * another relay replica does not get them meanwhile.
   */
  claimUnpublished(limit: number): Promise<OutboxRecord[]>;
  /**
   * Marks these events published and ends the claim: the claim's other events become claimable
   * again. Called with `[]` when nothing could be published.
   */
  markPublished(ids: readonly string[]): Promise<void>;
  /**
   * Marks these events published without a claim (one statement, its own transaction): for events
   * the relay enqueued straight after their commit (`OutboxRelay.publishCommitted`).
   */
  markPublishedUnclaimed(ids: readonly string[]): Promise<void>;
}

/**
 * The row to create in the caller's own transaction, so that the event commits (or rolls back)
 * with the change it describes:
 *
 * ```ts
 * await db.$transaction(async (tx) => {
 *   await tx.block.create({ data: { blockerId, blockedId } });
 *   await tx.outboxEvent.create({ data: outboxEventData("user.blocked", { blockerId, blockedId }) });
 * });
 * relay.flush(); // optional: publish now rather than on the next poll
 * ```
 *
 * Throws `InvalidEventError` (before anything is written) when the payload does not match the
 * catalogue. `id` is the event id consumers see (and BullMQ's job id).
 */
export function outboxEventData<T extends EventType>(
  type: T,
  payload: EventPayload<T>,
): { id: string; type: T; payload: EventPayload<T> } {
  return { id: timeOrderedUuid(), type, payload: parseEventPayload(type, payload) };
}

/** The part of a Prisma client (or interactive-transaction client) raw SQL needs. */
export interface OutboxSqlClient {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}

/** Any subgraph's Prisma client whose database has the `outbox_events` table. */
export interface OutboxPrismaClient extends OutboxSqlClient {
  $transaction<R>(
    fn: (tx: OutboxSqlClient) => Promise<R>,
    options?: { maxWait?: number; timeout?: number },
  ): PromiseLike<R>;
}

export interface PrismaOutboxStoreOptions {
  /**
   * A claim left open longer than this (the relay died or hung while publishing) is rolled back,
   * so its events can be claimed again. Default 30 s.
   */
  claimTimeoutMs?: number;
}

export const CLAIM_SQL =
  "SELECT id::text AS id, type, payload, created_at FROM outbox_events" +
  " WHERE published_at IS NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED";
// Joined to the ids (one primary-key probe each) rather than `id = ANY($1)`: a generic plan with few
// unpublished rows in the statistics would scan every unpublished row instead.
export const MARK_SQL =
  "UPDATE outbox_events o SET published_at = clock_timestamp()" +
  " FROM unnest($1::uuid[]) AS t(id) WHERE o.id = t.id AND o.published_at IS NULL";

export interface ClaimRow {
  id: string;
  type: string;
  payload: unknown;
  created_at: Date | string;
}

interface OpenClaim {
  /** Commit marking these ids, or roll back with this error. Only the first call counts. */
  settle(decision: readonly string[] | Error): void;
  /** Settles when the claim's transaction has committed or rolled back. */
  done: Promise<void>;
}

/**
 * The outbox of a Prisma-managed database (table `outbox_events`: id, type, payload, created_at,
 * published_at). A claim is a transaction holding `SELECT … FOR UPDATE SKIP LOCKED` row locks
 * until `markPublished`, so relay replicas share the work instead of repeating it. Correctness does
 * not depend on the locks: a claim that expires or a crash only means the same events are enqueued
 * again, and BullMQ drops those by job id (see relay.ts).
 */
export function prismaOutboxStore(
  client: OutboxPrismaClient,
  options: PrismaOutboxStoreOptions = {},
): OutboxStore {
  const claimTimeoutMs = options.claimTimeoutMs ?? 30_000;
  let open: OpenClaim | undefined;

  /** Rolls back a claim left open (its relay never called markPublished). */
  async function abandonOpenClaim(): Promise<void> {
    const claim = open;
    open = undefined;
    if (!claim) return;
    claim.settle(new Error("outbox claim abandoned"));
    await claim.done.catch(() => undefined);
  }

  return {
    async claimUnpublished(limit) {
      await abandonOpenClaim();
      let settle: OpenClaim["settle"] = () => undefined;
      const decision = new Promise<readonly string[]>((resolve, reject) => {
        let settled = false;
        settle = (value) => {
          if (settled) return;
          settled = true;
          if (value instanceof Error) reject(value);
          else resolve(value);
        };
      });
      decision.catch(() => undefined);

      return new Promise<OutboxRecord[]>((resolveClaim, rejectClaim) => {
        const claim: OpenClaim = { settle: (value) => settle(value), done: Promise.resolve() };
        let timer: NodeJS.Timeout | undefined;
        claim.done = Promise.resolve(
          client.$transaction(
            async (tx) => {
              const rows = await tx.$queryRawUnsafe<ClaimRow[]>(CLAIM_SQL, limit);
              if (rows.length === 0) {
                resolveClaim([]);
                return;
              }
              open = claim;
              timer = setTimeout(
                () => settle(new Error(`outbox claim expired after ${claimTimeoutMs} ms`)),
                claimTimeoutMs,
              );
              timer.unref();
              resolveClaim(
                rows.map((row) => ({
                  id: row.id,
                  type: row.type,
                  payload: row.payload,
                  createdAt: new Date(row.created_at),
                })),
              );
              const ids = await decision;
              if (ids.length > 0) await tx.$executeRawUnsafe(MARK_SQL, [...ids]);
            },
            // Prisma's own limit is a backstop behind ours.
            { timeout: claimTimeoutMs + 10_000, maxWait: 10_000 },
          ),
        ).finally(() => {
          clearTimeout(timer);
          if (open === claim) open = undefined;
        });
        claim.done.catch(rejectClaim); // a no-op once the claim has resolved
      });
    },

    async markPublished(ids) {
      const claim = open;
      open = undefined;
      if (claim) {
        claim.settle(ids);
        try {
          await claim.done;
          return;
        } catch {
          // The claim's transaction is gone (expired, connection lost). The events were enqueued
          // all the same; record that outside it. If this fails too, they are simply enqueued
          // again later and dropped by BullMQ as duplicates.
          if (ids.length === 0) return;
        }
      }
      if (ids.length > 0) await client.$executeRawUnsafe(MARK_SQL, [...ids]);
    },

    async markPublishedUnclaimed(ids) {
      if (ids.length > 0) await client.$executeRawUnsafe(MARK_SQL, [...ids]);
    },
  };
}

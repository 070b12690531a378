import type { Pool, PoolClient } from "pg";
import type { OutboxRecord, OutboxStore, PrismaOutboxStoreOptions } from "./outbox";
import { CLAIM_SQL, MARK_SQL, type ClaimRow } from "./outbox";

// Prepared once per connection (the relay runs them on every flush and every mark).
const claimQuery = (limit: number) => ({ name: "outbox_claim", text: CLAIM_SQL, values: [limit] });
const markQuery = (ids: readonly string[]) => ({ name: "outbox_mark", text: MARK_SQL, values: [[...ids]] });

interface OpenClaim {
  client: PoolClient;
  timer: NodeJS.Timeout;
}

/**
 * The same outbox as `prismaOutboxStore` (same table, same claim: a transaction holding
 * `SELECT … FOR UPDATE SKIP LOCKED` row locks until `markPublished`), on node-postgres directly:
 * for a relay flushed after every chat message, where Prisma's interactive transaction and raw
 * queries cost far more CPU than the statements themselves.
 */
export function sqlOutboxStore(pool: Pool, options: PrismaOutboxStoreOptions = {}): OutboxStore {
  const claimTimeoutMs = options.claimTimeoutMs ?? 30_000;
  let open: OpenClaim | undefined;

  /** Commits (marking `ids`) or, with null, rolls back; the connection goes back to the pool. */
  async function settle(claim: OpenClaim, ids: readonly string[] | null): Promise<void> {
    clearTimeout(claim.timer);
    try {
      if (ids !== null && ids.length > 0) await claim.client.query(markQuery(ids));
      await claim.client.query(ids === null ? "ROLLBACK" : "COMMIT");
      claim.client.release();
    } catch (error) {
      claim.client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  return {
    async claimUnpublished(limit) {
      const abandoned = open;
      open = undefined;
      if (abandoned) await settle(abandoned, null).catch(() => undefined);
      const client = await pool.connect();
      let rows: ClaimRow[];
      try {
        await client.query("BEGIN");
        rows = (await client.query<ClaimRow>(claimQuery(limit))).rows;
        if (rows.length === 0) {
          await client.query("COMMIT");
          client.release();
          return [];
        }
      } catch (error) {
        client.release(error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
      const claim: OpenClaim = {
        client,
        // A claim left open (the relay hung while publishing) is rolled back: its events can be claimed again.
        timer: setTimeout(() => {
          if (open !== claim) return;
          open = undefined;
          void settle(claim, null).catch(() => undefined);
        }, claimTimeoutMs),
      };
      claim.timer.unref();
      open = claim;
      return rows.map((row): OutboxRecord => ({
        id: row.id,
        type: row.type,
        payload: row.payload,
        createdAt: new Date(row.created_at),
      }));
    },

    async markPublished(ids) {
      const claim = open;
      open = undefined;
      if (claim) {
        try {
          await settle(claim, ids);
          return;
        } catch {
          // The claim's transaction is gone (connection lost): record it outside, as prismaOutboxStore does.
          if (ids.length === 0) return;
        }
      }
      if (ids.length > 0) await pool.query(markQuery(ids));
    },

    async markPublishedUnclaimed(ids) {
      if (ids.length > 0) await pool.query(markQuery(ids));
    },
  };
}

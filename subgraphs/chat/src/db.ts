import {
  createDatabaseClients,
  createPrismaDb,
  type PoolSizing,
  type ProcessMetrics,
  type SqlClient,
  type SubgraphDatabaseClients,
} from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { SqlClient };
export type ChatDb = PrismaClient;

/** The chat database through Prisma (see kit/src/prisma.ts); with metrics, its pool's use is reported. */
export function createChatDb(databaseUrl: string, metrics?: ProcessMetrics): ChatDb {
  return createPrismaDb(PrismaClient, databaseUrl, metrics ? { metrics } : {});
}

/**
 * The subgraph's clients: Prisma, and plain SQL on the same pool for sending (modules/messages.ts)
 * and for the outbox relay flushed after every message (kit's sqlOutboxStore).
 */
export function createChatDatabase(
  databaseUrl: string,
  metrics?: ProcessMetrics,
  sizing: PoolSizing = {},
): { db: ChatDb; sql: SqlClient; pool: SubgraphDatabaseClients<ChatDb>["pool"] } {
  const { prisma, sql, pool } = createDatabaseClients(
    PrismaClient,
    databaseUrl,
    metrics ? { metrics } : {},
    sizing,
  );
  return { db: prisma, sql, pool };
}

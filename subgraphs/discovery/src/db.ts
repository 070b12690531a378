import {
  createDatabaseClients,
  createPrismaDb,
  type DatabaseObserver,
  type PoolSizing,
  type SqlClient,
} from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver, SqlClient };
export type DiscoveryDb = PrismaClient;

/** The discovery database through Prisma (see kit/src/prisma.ts). */
export function createDiscoveryDb(databaseUrl: string, observer: DatabaseObserver = {}): DiscoveryDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

/** The subgraph's clients: Prisma, and plain SQL on the same pool for the hot reads (matches page, distances). */
export function createDiscoveryDatabase(
  databaseUrl: string,
  observer: DatabaseObserver = {},
  sizing: PoolSizing = {},
): { db: DiscoveryDb; sql: SqlClient } {
  const { prisma, sql } = createDatabaseClients(PrismaClient, databaseUrl, observer, sizing);
  return { db: prisma, sql };
}

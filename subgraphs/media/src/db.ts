import {
  createDatabaseClients,
  createPrismaDb,
  type DatabaseObserver,
  type PoolSizing,
  type SqlClient,
} from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver, SqlClient };
export type MediaDb = PrismaClient;

/** The media database through Prisma (see kit/src/prisma.ts). */
export function createMediaDb(databaseUrl: string, observer: DatabaseObserver = {}): MediaDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

/** The subgraph's clients: Prisma, and plain SQL on the same pool for the hot reads (loaders.ts). */
export function createMediaDatabase(
  databaseUrl: string,
  observer: DatabaseObserver = {},
  sizing: PoolSizing = {},
): { db: MediaDb; sql: SqlClient } {
  const { prisma, sql } = createDatabaseClients(PrismaClient, databaseUrl, observer, sizing);
  return { db: prisma, sql };
}

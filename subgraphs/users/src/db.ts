import {
  createDatabaseClients,
  createPrismaDb,
  type DatabaseObserver,
  type PoolSizing,
  type SqlClient,
} from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver, SqlClient };
export type UsersDb = PrismaClient;

/** The users database through Prisma (see kit/src/prisma.ts). */
export function createUsersDb(databaseUrl: string, observer: DatabaseObserver = {}): UsersDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

/** The subgraph's clients: Prisma, and plain SQL on the same pool for the hot reads (the profile cache's misses). */
export function createUsersDatabase(
  databaseUrl: string,
  observer: DatabaseObserver = {},
  sizing: PoolSizing = {},
): { db: UsersDb; sql: SqlClient } {
  const { prisma, sql } = createDatabaseClients(PrismaClient, databaseUrl, observer, sizing);
  return { db: prisma, sql };
}

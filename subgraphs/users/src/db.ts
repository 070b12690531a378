import { createPrismaDb, type DatabaseObserver } from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver };
export type UsersDb = PrismaClient;

/** The users database through Prisma (see kit/src/prisma.ts). */
export function createUsersDb(databaseUrl: string, observer: DatabaseObserver = {}): UsersDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

import { createPrismaDb, type DatabaseObserver } from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver };
export type DiscoveryDb = PrismaClient;

/** The discovery database through Prisma (see kit/src/prisma.ts). */
export function createDiscoveryDb(databaseUrl: string, observer: DatabaseObserver = {}): DiscoveryDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

import { createPrismaDb, type DatabaseObserver } from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type { DatabaseObserver };
export type MediaDb = PrismaClient;

/** The media database through Prisma (see kit/src/prisma.ts). */
export function createMediaDb(databaseUrl: string, observer: DatabaseObserver = {}): MediaDb {
  return createPrismaDb(PrismaClient, databaseUrl, observer);
}

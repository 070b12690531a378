import { createPrismaDb, type ProcessMetrics } from "@hv/kit";
import { PrismaClient } from "./generated/prisma/client";

export type ChatDb = PrismaClient;

/** The chat database through Prisma (see kit/src/prisma.ts); with metrics, its pool's use is reported. */
export function createChatDb(databaseUrl: string, metrics?: ProcessMetrics): ChatDb {
  return createPrismaDb(PrismaClient, databaseUrl, metrics ? { metrics } : {});
}

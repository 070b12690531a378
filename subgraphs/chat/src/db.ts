import type { ProcessMetrics } from "@hv/kit";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type ChatDb = PrismaClient;

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createChatDb(databaseUrl: string, metrics?: ProcessMetrics): ChatDb {
  const connection = { connectionString: databaseUrl };
  // With metrics, the pool is ours so its use can be read (hv_db_pool_connections{pool="prisma"}).
  const pool = metrics ? metrics.pgPool("prisma", connection) : connection;
  return new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
}

import type { ProcessMetrics } from "@hv/kit";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type UsersDb = PrismaClient;

export interface DatabaseObserver {
  /** Sees every SQL statement Prisma sends (metrics, and tests that count queries). */
  onQuery?: (sql: string) => void;
  /** Reports the connection pool's use (total, idle, waiting) as `hv_db_pool_connections{pool="prisma"}`. */
  metrics?: ProcessMetrics;
}

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createUsersDb(databaseUrl: string, observer: DatabaseObserver = {}): UsersDb {
  const connection = { connectionString: databaseUrl };
  const adapter = new PrismaPg(observer.metrics ? observer.metrics.pgPool("prisma", connection) : connection, { disposeExternalPool: true });
  const onQuery = observer.onQuery;
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: "event", level: "query" }] });
  client.$on("query", (event) => onQuery(event.query));
  return client as unknown as UsersDb;
}

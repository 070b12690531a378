import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type UsersDb = PrismaClient;

export interface DatabaseObserver {
  /** Sees every SQL statement Prisma sends (metrics, and tests that count queries). */
  onQuery?: (sql: string) => void;
}

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createUsersDb(databaseUrl: string, observer: DatabaseObserver = {}): UsersDb {
  const adapter = new PrismaPg({ connectionString: databaseUrl });
  const onQuery = observer.onQuery;
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: "event", level: "query" }] });
  client.$on("query", (event) => onQuery(event.query));
  return client as unknown as UsersDb;
}

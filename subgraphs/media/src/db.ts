import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client";

export type MediaDb = PrismaClient;

export interface DatabaseObserver {
  /** Sees every SQL statement Prisma sends (tests and benchmarks count them). */
  onQuery?: (sql: string) => void;
}

/** Prisma on its WASM engine over node-postgres: no native engine to download. */
export function createMediaDb(databaseUrl: string, observer: DatabaseObserver = {}): MediaDb {
  const adapter = new PrismaPg({ connectionString: databaseUrl });
  const onQuery = observer.onQuery;
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: "event", level: "query" }] });
  client.$on("query", (event) => onQuery(event.query));
  return client as unknown as MediaDb;
}

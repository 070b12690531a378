import { PrismaPg } from "@prisma/adapter-pg";
import type { ProcessMetrics } from "./metrics";

/** What may watch a subgraph's database client. */
export interface DatabaseObserver {
  /** Sees every SQL statement Prisma sends (tests and benchmarks count them). */
  onQuery?: (sql: string) => void;
  /** Reports the connection pool's use (total, idle, waiting) as `hv_db_pool_connections{pool="prisma"}`. */
  metrics?: ProcessMetrics;
}

interface PrismaOptions {
  adapter: PrismaPg;
  log?: Array<{ emit: "event"; level: "query" }>;
}

/**
 * A subgraph's generated PrismaClient on its WASM engine over node-postgres (no native engine to
 * download): `createPrismaDb(PrismaClient, url, observer)`. With `metrics` the pool is ours, so
 * its use can be read; with `onQuery` every statement is reported.
 */
export function createPrismaDb<C>(Client: new (options: PrismaOptions) => C, databaseUrl: string, observer: DatabaseObserver = {}): C {
  const connection = { connectionString: databaseUrl };
  const adapter = new PrismaPg(observer.metrics ? observer.metrics.pgPool("prisma", connection) : connection, { disposeExternalPool: true });
  const onQuery = observer.onQuery;
  if (!onQuery) return new Client({ adapter });
  const client = new Client({ adapter, log: [{ emit: "event", level: "query" }] });
  (client as unknown as { $on(event: "query", listener: (event: { query: string }) => void): void }).$on("query", (event) =>
    onQuery(event.query),
  );
  return client;
}

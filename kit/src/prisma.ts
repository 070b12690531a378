import { PrismaPg } from "@prisma/adapter-pg";
import { Pool } from "pg";
import { POOL_MAX } from "./config";
import type { ProcessMetrics } from "./metrics";

/** What may watch a subgraph's database client. */
export interface DatabaseObserver {
  /** Sees every SQL statement sent (Prisma's and the SQL path's): tests and benchmarks count them. */
  onQuery?: (sql: string) => void;
  /** Reports the connection pool's use (total, idle, waiting) as `hv_db_pool_connections{pool="prisma"}`. */
  metrics?: ProcessMetrics;
}

interface PrismaOptions {
  adapter: PrismaPg;
  log?: Array<{ emit: "event"; level: "query" }>;
}

/** A parameterised statement: `$1`-style text and its values (a `Prisma.sql` template is one). */
export interface SqlStatement {
  readonly text: string;
  readonly values: readonly unknown[];
  /**
   * A server-side prepared statement's name: parsed once per connection and, once PostgreSQL
   * settles on a generic plan, planned once. One name, one text, process-wide.
   */
  readonly name?: string;
}

/** Each prepared statement's text, by name: read from the first statement under that name. */
const preparedTexts = new Map<string, string>();

/**
 * `statement` as the prepared statement `name` (see `SqlStatement.name`). Its text is read only
 * the first time a name is seen (one name, one text): later ones reuse that string.
 */
export function prepared(name: string, statement: SqlStatement): SqlStatement {
  let text = preparedTexts.get(name);
  if (text === undefined) preparedTexts.set(name, (text = statement.text));
  return { name, text, values: statement.values };
}

/**
 * Plain node-postgres on the Prisma client's own pool, for the few reads on a hot path (entity
 * resolution for a page of people, the chat fan-out). Prisma's WASM query compiler costs 0.5 ms
 * of CPU for `SELECT 1` and 3–5 ms for a `findMany` with a 50-id `IN` list on this machine
 * (against 0.3 ms here); everything else stays on Prisma.
 */
export interface SqlClient {
  query<T>(statement: SqlStatement): Promise<T[]>;
}

export interface SubgraphDatabaseClients<C> {
  prisma: C;
  sql: SqlClient;
  /** The pool under both (e.g. for `sqlOutboxStore`, which holds a connection through a claim). */
  pool: Pool;
}

/**
 * How long a pooled connection may sit idle before it is closed (node-postgres's default: 10 s).
 * Kept for minutes so a burst after a quiet spell does not wait for new connections (a backend
 * forked, its catalog caches cold, every named statement parsed again): docs/realtime-measurements.md,
 * "Round 7: the send's tail".
 */
export const POOL_IDLE_MS = 5 * 60_000;

/** How many connections a pool opens at once and keeps open (`DATABASE_POOL_MIN`). */
export interface PoolSizing {
  /** Opened when the pool is made, without waiting for a query, and never closed for being idle. Default 0. */
  min?: number;
}

/** Opens `count` of the pool's connections and gives them back to it; a failure is left to the first query. */
export async function openConnections(pool: Pool, count: number): Promise<void> {
  const opened = await Promise.allSettled(Array.from({ length: count }, () => pool.connect()));
  for (const each of opened) if (each.status === "fulfilled") each.value.release();
}

/**
 * A subgraph's generated PrismaClient on its WASM engine over node-postgres (no native engine to
 * download), and a plain SQL client on the same pool: `createDatabaseClients(PrismaClient, url,
 * observer, sizing)`. With `metrics` the pool's use is reported; with `onQuery` every statement is;
 * with `sizing.min` that many connections are opened now and kept. `prisma.$disconnect()` closes
 * the pool for both.
 */
export function createDatabaseClients<C>(
  Client: new (options: PrismaOptions) => C,
  databaseUrl: string,
  observer: DatabaseObserver = {},
  sizing: PoolSizing = {},
): SubgraphDatabaseClients<C> {
  const min = Math.min(sizing.min ?? 0, POOL_MAX);
  const connection = { connectionString: databaseUrl, idleTimeoutMillis: POOL_IDLE_MS, max: POOL_MAX, min };
  const pool = observer.metrics ? observer.metrics.pgPool("prisma", connection) : new Pool(connection);
  // An idle client's error (the server restarted) must not crash the process: the pool replaces
  // it. (Prisma adds its own listener only once it connects; the SQL path may come first.)
  pool.on("error", () => {});
  if (min > 0) void openConnections(pool, min);
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  const onQuery = observer.onQuery;
  const sql: SqlClient = {
    async query<T>(statement: SqlStatement) {
      onQuery?.(statement.text);
      const result = await pool.query({
        text: statement.text,
        values: statement.values as unknown[],
        ...(statement.name === undefined ? {} : { name: statement.name }),
      });
      return result.rows as T[];
    },
  };
  if (!onQuery) return { prisma: new Client({ adapter }), sql, pool };
  const prisma = new Client({ adapter, log: [{ emit: "event", level: "query" }] });
  (prisma as unknown as { $on(event: "query", listener: (event: { query: string }) => void): void }).$on(
    "query",
    (event) => onQuery(event.query),
  );
  return { prisma, sql, pool };
}

/** The PrismaClient alone (processes with no hot SQL path): see `createDatabaseClients`. */
export function createPrismaDb<C>(
  Client: new (options: PrismaOptions) => C,
  databaseUrl: string,
  observer: DatabaseObserver = {},
): C {
  return createDatabaseClients(Client, databaseUrl, observer).prisma;
}

import type { Duplex } from "node:stream";
import { Pool, type PoolClient, type QueryConfig } from "pg";
import type { ProcessMetrics } from "./metrics";
import { openConnections, POOL_IDLE_MS, type SqlStatement } from "./prisma";

export interface GroupCommitOptions {
  databaseUrl: string;
  /** Reports its pool's use as `hv_db_pool_connections{pool="<poolName>"}`. */
  metrics?: ProcessMetrics;
  poolName: string;
  /** Most statements in one transaction. 1: every statement alone (no grouping). */
  maxBatch: number;
  /**
   * Most transactions (or lone statements) under way at once, each on a connection of the group
   * commit's own pool; statements beyond wait and go together.
   */
  maxRunning: number;
  /** Connections opened at once and kept open (`DATABASE_POOL_MIN`, at most `maxRunning`). Default 0. */
  min?: number;
}

/**
 * Write statements that each make a transaction of their own (autocommit), several of them in one
 * transaction (one commit, one WAL flush) when they queue behind `maxRunning` transactions under
 * way: a statement that finds a free slot runs alone at once.
 */
export interface GroupCommit {
  /**
   * The statement's rows, once the transaction holding it has committed; its own error otherwise.
   * In a transaction of several, statements run in `key` order (equal keys in call order), so two
   * transactions take row locks of different keys in the same order. If one fails, the
   * transaction is rolled back and each of its statements runs again alone.
   */
  query<T>(statement: SqlStatement, key: string): Promise<T[]>;
  /** Closes the pool once the statements under way are done (call after the last `query`). */
  end(): Promise<void>;
}

interface Queued {
  statement: SqlStatement;
  key: string;
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

const toQuery = (statement: SqlStatement): QueryConfig => ({
  text: statement.text,
  values: statement.values as unknown[],
  ...(statement.name === undefined ? {} : { name: statement.name }),
});

/** Runs `submit` with the client's socket (node-postgres's `connection.stream`) corked: what it sends leaves in one write. */
function corked<T>(client: PoolClient, submit: () => T): T {
  const socket = (client as PoolClient & { connection?: { stream?: Duplex } }).connection?.stream;
  socket?.cork();
  try {
    return submit();
  } finally {
    socket?.uncork();
  }
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/**
 * Group commit (see `GroupCommit`) on a pool of its own, `maxRunning` connections that pipeline: a
 * transaction of several statements is one write and one round trip.
 */
export function groupCommit(options: GroupCommitOptions): GroupCommit {
  const min = Math.min(options.min ?? 0, options.maxRunning);
  const config = {
    connectionString: options.databaseUrl,
    pipeline: true,
    max: options.maxRunning,
    min,
    idleTimeoutMillis: POOL_IDLE_MS,
  };
  const pool = options.metrics ? options.metrics.pgPool(options.poolName, config) : new Pool(config);
  pool.on("error", () => {}); // an idle connection's error (the server restarted): the pool replaces it
  if (min > 0) void openConnections(pool, min);
  const waiting: Queued[] = [];
  let running = 0;

  async function alone(item: Queued): Promise<void> {
    try {
      item.resolve((await pool.query(toQuery(item.statement))).rows);
    } catch (error) {
      item.reject(error);
    }
  }

  async function together(batch: Queued[]): Promise<void> {
    const ordered = batch
      .map((item, index) => ({ item, index }))
      .sort((x, y) => (x.item.key < y.item.key ? -1 : x.item.key > y.item.key ? 1 : x.index - y.index))
      .map(({ item }) => item);
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      for (const item of ordered) item.reject(error);
      return;
    }
    // One write: BEGIN, the statements, COMMIT (pipelined, the socket corked while they are
    // submitted). After an error the server ignores the rest, and COMMIT answers ROLLBACK.
    const [begin, statements, commit] = corked(
      client,
      () =>
        [
          client.query("BEGIN"),
          ordered.map((item) => client.query(toQuery(item.statement))),
          client.query("COMMIT"),
        ] as const,
    );
    const [, settled, ended] = await Promise.all([
      begin.catch(() => undefined),
      Promise.allSettled(statements),
      commit.then(
        (result) => ({ known: true, committed: result.command === "COMMIT" }),
        (error: unknown) => ({ known: typeof (error as { code?: unknown }).code === "string", error }),
      ),
    ]);
    if ("error" in ended) client.release(asError(ended.error));
    else client.release();
    if ("committed" in ended && ended.committed) {
      ordered.forEach((item, index) => {
        const outcome = settled[index]!;
        if (outcome.status === "fulfilled") item.resolve(outcome.value.rows);
        else item.reject(outcome.reason);
      });
      return;
    }
    // Rolled back (a statement failed, or the server refused the commit): each runs again alone.
    // Without the server's answer to COMMIT the outcome is unknown: each gets that error.
    for (const item of ordered) {
      if (ended.known) await alone(item);
      else item.reject("error" in ended ? ended.error : new Error("group commit: no answer to COMMIT"));
    }
  }

  function start(): void {
    while (running < options.maxRunning && waiting.length > 0) {
      const batch = waiting.splice(0, options.maxBatch);
      running += 1;
      void (batch.length === 1 ? alone(batch[0]!) : together(batch)).finally(() => {
        running -= 1;
        start();
      });
    }
  }

  return {
    query<T>(statement: SqlStatement, key: string): Promise<T[]> {
      return new Promise<T[]>((resolve, reject) => {
        waiting.push({ statement, key, resolve: resolve as (rows: unknown[]) => void, reject });
        start();
      });
    },
    end: () => pool.end(),
  };
}

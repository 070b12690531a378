import { randomBytes } from "node:crypto";
import { Socket } from "node:net";
import { Pool } from "pg";
import { defaultDatabaseUrl, dropDatabase, ensureDatabase, withDatabaseName } from "@hv/prisma";
import { groupCommit, type GroupCommit, type SqlStatement } from "@hv/kit";
import { waitFor } from "../support/wait";

// A database of our own with one table: the group commit is plain SQL.
const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
const databaseUrl = withDatabaseName(
  process.env.CHAT_DATABASE_URL || defaultDatabaseUrl("chat"),
  `hv_test_${runId}_group_commit`,
);
let pool: Pool;
let group: GroupCommit | undefined;

beforeAll(async () => {
  await ensureDatabase(databaseUrl);
  pool = new Pool({ connectionString: databaseUrl });
  await pool.query("CREATE TABLE gc (n bigserial PRIMARY KEY, k text NOT NULL, v text NOT NULL UNIQUE)");
}, 120_000);

afterEach(async () => {
  await group?.end();
  group = undefined;
  await pool.query("TRUNCATE gc");
});

afterAll(async () => {
  await pool?.end();
  await dropDatabase(databaseUrl);
});

interface Row {
  n: string;
  tx: string;
}

const insert = (k: string, v: string): SqlStatement => ({
  name: "gc_insert",
  text: "INSERT INTO gc (k, v) VALUES ($1, $2) RETURNING n::text AS n, txid_current()::text AS tx",
  values: [k, v],
});

/** Sends these at once: the first finds the only slot free and runs alone, the rest wait for it. */
function sendAll(statements: Array<[string, string]>): Array<Promise<Row[]>> {
  group = groupCommit({ databaseUrl, poolName: "test", maxBatch: 16, maxRunning: 1 });
  const running = group;
  return statements.map(([k, v]) => running.query<Row>(insert(k, v), k));
}

test("statements that queue behind the one under way commit in one transaction", async () => {
  const rows = await Promise.all(sendAll(Array.from({ length: 9 }, (_, i) => [`k${i}`, `v${i}`])));
  const transactions = new Set(rows.map((each) => each[0]!.tx));
  expect(transactions.size).toBe(2);
  expect(rows[0]![0]!.tx).not.toBe(rows[1]![0]!.tx);
  const stored = await pool.query<{ v: string }>("SELECT v FROM gc ORDER BY v");
  expect(stored.rows.map((row) => row.v)).toEqual(Array.from({ length: 9 }, (_, i) => `v${i}`));
});

test("a failing statement gets its own error; the others of its transaction are stored once", async () => {
  await pool.query("INSERT INTO gc (k, v) VALUES ('x', 'taken')");
  const results = await Promise.allSettled(
    sendAll([
      ["a", "first"],
      ["b", "one"],
      ["c", "taken"],
      ["d", "two"],
      ["e", "three"],
    ]),
  );
  expect(results.map((result) => result.status)).toEqual([
    "fulfilled",
    "fulfilled",
    "rejected",
    "fulfilled",
    "fulfilled",
  ]);
  expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: "23505" });
  const stored = await pool.query<{ v: string }>("SELECT v FROM gc ORDER BY v");
  expect(stored.rows.map((row) => row.v)).toEqual(["first", "one", "taken", "three", "two"]);
});

test("a transaction of several statements goes to the server in one socket write", async () => {
  const first = sendAll([["w", "warm"]]);
  await Promise.all(first); // the store connection is open and its statement prepared
  const running = group!;
  const port = Number(new URL(databaseUrl).port || 5432);
  // Every socket write to the database (node's stream calls _write for one chunk, _writev for several).
  const writes: string[] = [];
  const proto = Socket.prototype as unknown as Record<"_writev" | "_write", (...args: unknown[]) => unknown>;
  const saved = { _writev: proto._writev, _write: proto._write };
  for (const way of ["_writev", "_write"] as const) {
    proto[way] = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === port) writes.push(way);
      return saved[way].apply(this, args);
    };
  }
  try {
    // The first runs alone; the eight behind it commit together.
    const rows = await Promise.all(
      Array.from({ length: 9 }, (_, i) => running.query<Row>(insert(`k${i}`, `v${i}`), `k${i}`)),
    );
    expect(new Set(rows.slice(1).map((each) => each[0]!.tx)).size).toBe(1);
  } finally {
    Object.assign(proto, saved);
  }
  expect(writes).toHaveLength(2);
});

test("a transaction runs its statements in key order, equal keys in call order", async () => {
  const rows = await Promise.all(
    sendAll([
      ["z", "alone"],
      ["b", "b1"],
      ["a", "a1"],
      ["b", "b2"],
      ["a", "a2"],
    ]),
  );
  const order = ["a1", "a2", "b1", "b2"].map((v) => ["b1", "a1", "b2", "a2"].indexOf(v) + 1);
  const serials = order.map((index) => Number(rows[index]![0]!.n));
  expect(serials).toEqual([...serials].sort((x, y) => x - y));
  expect(new Set(rows.slice(1).map((each) => each[0]!.tx)).size).toBe(1);
});

test("with `min`, the store connections are open before the first statement", async () => {
  const backends = async () =>
    Number(
      (
        await pool.query<{ count: string }>(
          "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
      ).rows[0]?.count,
    );
  const before = await backends();
  group = groupCommit({ databaseUrl, poolName: "test", maxBatch: 16, maxRunning: 2, min: 5 });
  // At most maxRunning: 2 of the 5 asked for.
  await waitFor("the store pool's 2 connections opened", async () => (await backends()) === before + 2);
  await group.query(insert("a", `warm-${runId}`), "a");
  expect(await backends()).toBe(before + 2);
});

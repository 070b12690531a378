/**
 * CPU time per query, Prisma (WASM query compiler over @prisma/adapter-pg) against the same
 * statement through node-postgres on the same pool: the figures prisma/README.md gives for why
 * hot reads are plain SQL.
 *
 *   pnpm exec tsx bench/prisma-cpu.ts [--iterations 2000] [--keep]
 *
 * One process, one query at a time (awaited), on a migrated Users database of its own with 100
 * users. Reported per query kind: this process's user + system CPU time per query
 * (process.cpuUsage, all threads), after `iterations / 10` warm-up queries. PostgreSQL's own CPU is
 * not included.
 */
import { randomUUID } from "node:crypto";
import { createUsersDatabase } from "@hv/users/src/db";
import { flag } from "./support/args";
import { benchDatabase, dropUnlessKept, printHeader, runBench } from "./support/service";

const USERS = 100;

async function cpuMsPerQuery(iterations: number, query: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.ceil(iterations / 10); i += 1) await query();
  const before = process.cpuUsage();
  for (let i = 0; i < iterations; i += 1) await query();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / iterations;
}

async function main(): Promise<void> {
  printHeader("prisma-cpu.ts");
  const iterations = flag("iterations", 2000);
  const keep = process.argv.includes("--keep");
  const url = await benchDatabase("users", "prismacpu", Date.now().toString(36));
  const { db, sql } = createUsersDatabase(url);
  try {
    const ids = Array.from({ length: USERS }, () => randomUUID());
    await db.user.createMany({
      data: ids.map((id, i) => ({
        id,
        email: `bench-${i}@example.com`,
        passwordHash: "not-a-hash",
        displayName: `Bench ${i}`,
        birthDate: new Date("1995-05-05"),
        interests: ["hiking", "jazz"],
      })),
    });
    const first50 = ids.slice(0, 50);
    const last50 = ids.slice(50);
    const columns = `id, display_name AS "displayName", bio, birth_date AS "birthDate", interests`;
    const kinds: Array<[string, () => Promise<unknown>]> = [
      ["Prisma  $queryRaw SELECT 1", () => db.$queryRaw`SELECT 1`],
      ["Prisma  findUnique by id", () => db.user.findUnique({ where: { id: ids[7]! } })],
      ["Prisma  findMany, IN of 50 ids", () => db.user.findMany({ where: { id: { in: first50 } } })],
      [
        "Prisma  findMany, OR of two IN of 50",
        () => db.user.findMany({ where: { OR: [{ id: { in: first50 } }, { id: { in: last50 } }] } }),
      ],
      ["pg      SELECT 1", () => sql.query({ text: "SELECT 1", values: [] })],
      [
        "pg      one row by id",
        () => sql.query({ text: `SELECT ${columns} FROM users WHERE id = $1`, values: [ids[7]] }),
      ],
      [
        "pg      50 rows, = ANY($1)",
        () =>
          sql.query({ text: `SELECT ${columns} FROM users WHERE id = ANY($1::uuid[])`, values: [first50] }),
      ],
    ];
    console.log(`iterations: ${iterations} per kind, sequential`);
    for (const [label, query] of kinds) {
      const ms = await cpuMsPerQuery(iterations, query);
      console.log(`${label.padEnd(40)} ${ms.toFixed(3)} CPU-ms per query`);
    }
  } finally {
    await db.$disconnect();
    await dropUnlessKept(url, keep);
  }
}

runBench(main);

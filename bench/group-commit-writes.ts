/**
 * The group commit's client side (kit/src/group-commit.ts): what a transaction of several
 * statements costs this process, this checkout's against another checkout's (`--baseline DIR`),
 * interleaved in one process.
 *
 *   pnpm exec tsx bench/group-commit-writes.ts [--batches 2000] [--per 4] [--rounds 4] [--baseline ../wt-main]
 *
 * A database of its own with one table. Each way gets a group commit with one connection
 * (`maxRunning` 1); a batch is `per` + 1 inserts sent at once: the first runs alone, the other
 * `per` wait for it and commit together. Reported per way and round: this process's CPU µs per
 * statement (process.cpuUsage) and write system calls per statement (/proc/self/io `syscw`).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import os from "node:os";
import { Pool } from "pg";
import { defaultDatabaseUrl, dropDatabase, ensureDatabase, withDatabaseName } from "@hv/prisma";
import { groupCommit, type GroupCommit, type GroupCommitOptions, type SqlStatement } from "@hv/kit";

type Factory = (options: GroupCommitOptions) => GroupCommit;

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? undefined : process.argv[index + 1];
}

const writeCalls = () => Number(/syscw: (\d+)/.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? NaN);

async function main(): Promise<void> {
  const batches = Number(argument("batches") ?? 2000);
  const per = Number(argument("per") ?? 4);
  const rounds = Number(argument("rounds") ?? 4);
  const baselineDir = argument("baseline");
  console.log(`command: pnpm exec tsx bench/group-commit-writes.ts ${process.argv.slice(2).join(" ")}`);

  const databaseUrl = withDatabaseName(
    process.env.CHAT_DATABASE_URL || defaultDatabaseUrl("chat"),
    `hv_bench_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}_gc`,
  );
  await ensureDatabase(databaseUrl);
  const admin = new Pool({ connectionString: databaseUrl, max: 1 });
  await admin.query("CREATE UNLOGGED TABLE gc (n bigserial PRIMARY KEY, k text NOT NULL, v text NOT NULL)");

  const ways: Array<[string, Factory]> = [["this checkout", groupCommit]];
  if (baselineDir) {
    const baseline = (await import(path.resolve(baselineDir, "kit/src/group-commit.ts"))) as {
      groupCommit: Factory;
    };
    ways.push([`baseline (${baselineDir})`, baseline.groupCommit]);
  }
  const insert = (k: string, v: string): SqlStatement => ({
    name: "gc_insert",
    text: "INSERT INTO gc (k, v) VALUES ($1, $2) RETURNING n",
    values: [k, v],
  });

  try {
    for (let round = 1; round <= rounds; round += 1) {
      const order = round % 2 === 1 ? ways : [...ways].reverse();
      for (const [name, factory] of order) {
        const group = factory({ databaseUrl, poolName: "bench", maxBatch: 16, maxRunning: 1 });
        await group.query(insert("warm", "warm"), "warm");
        const cpuBefore = process.cpuUsage();
        const writesBefore = writeCalls();
        for (let batch = 0; batch < batches; batch += 1) {
          await Promise.all(
            Array.from({ length: per + 1 }, (_, i) => group.query(insert(`k${i}`, `${batch}.${i}`), `k${i}`)),
          );
        }
        const cpu = process.cpuUsage(cpuBefore);
        const writes = writeCalls() - writesBefore;
        const statements = batches * (per + 1);
        await group.end();
        console.log(
          `round ${round} ${name}: ${((cpu.user + cpu.system) / statements).toFixed(1)} CPU-µs and ${(writes / statements).toFixed(2)} write system calls per statement; load ${os.loadavg()[0]!.toFixed(1)}`,
        );
        await admin.query("TRUNCATE gc");
      }
    }
  } finally {
    await admin.end();
    await dropDatabase(databaseUrl);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

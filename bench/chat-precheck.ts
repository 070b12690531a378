/**
 * The send's pre-check (subgraphs/chat/src/modules/send-precheck.ts) in one process: a statement
 * per send against `SendPrechecks` (the sends arriving while one is read share one statement).
 *
 *   pnpm exec tsx bench/chat-precheck.ts [--turns 1500] [--rounds 4] [--per-turn 1,4,16] [--conversations 500] [--keep]
 *
 * A bench database of Chat's schema with `conversations` two-person GROUP conversations, Chat's
 * own database clients on it (its pool of 10, the named statements). Each round runs, for each
 * number of sends per turn, each way in an order that rotates per round: `turns` times, that many
 * pre-checks started in one turn and awaited together. Reported per pre-check: this process's CPU
 * (process.cpuUsage: user + system, µs), the CPU of the pool's PostgreSQL backends (/proc, 10 ms
 * steps), and statements sent.
 */
import { randomUUID } from "node:crypto";
import { createDatabaseClients } from "@hv/kit";
import { PrismaClient } from "@hv/chat/src/generated/prisma/client";
import { SendPrechecks } from "@hv/chat/src/modules/send-precheck";
import { precheckStatement } from "@hv/chat/src/modules/store-statement";
import { argument, flag } from "./support/args";
import {
  benchDatabase,
  cpuSecondsOf,
  dropUnlessKept,
  loadAverage,
  printHeader,
  runBench,
} from "./support/service";

interface Conversation {
  id: string;
  a: string;
  b: string;
}

async function main(): Promise<void> {
  printHeader("chat-precheck.ts");
  const turns = flag("turns", 1500);
  const rounds = flag("rounds", 4);
  const conversationCount = Math.max(1, flag("conversations", 500));
  const perTurn = (argument("per-turn") ?? "1,4,16").split(",").map(Number);
  const keep = process.argv.includes("--keep");
  const databaseUrl = await benchDatabase("chat", "precheck", Date.now().toString(36));
  let statements = 0;
  const { prisma, sql, pool } = createDatabaseClients(PrismaClient, databaseUrl, {
    onQuery: () => (statements += 1),
  });
  try {
    const conversations: Conversation[] = Array.from({ length: conversationCount }, () => ({
      id: randomUUID(),
      a: randomUUID(),
      b: randomUUID(),
    }));
    await pool.query(
      `INSERT INTO conversations (id, kind, title) SELECT id, 'GROUP', 'bench' FROM unnest($1::uuid[]) AS t(id)`,
      [conversations.map((c) => c.id)],
    );
    await pool.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role)
       SELECT c, u, 'MEMBER' FROM unnest($1::uuid[], $2::uuid[]) AS t(c, u)`,
      [conversations.flatMap((c) => [c.id, c.id]), conversations.flatMap((c) => [c.a, c.b])],
    );
    const batched = new SendPrechecks(sql);
    const ways: Record<string, (c: Conversation) => Promise<unknown>> = {
      "a statement per send (before)": async (c) =>
        (await sql.query(precheckStatement(c.id, c.a, randomUUID())))[0],
      "SendPrechecks (after)": (c) => batched.check(c.id, c.a, randomUUID()),
    };
    // Every backend of the bench database is the pool's (this one's too: the pool hands the most
    // recently released connection out first, the one a lone pre-check then uses).
    const backendPids = async () =>
      (
        await pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`,
        )
      ).rows.map((row) => row.pid);
    const backendCpu = (pids: number[]) =>
      pids.reduce((sum, pid) => {
        try {
          return sum + cpuSecondsOf(pid);
        } catch {
          return sum;
        }
      }, 0);
    // Warm-up: every way's statements prepared on every pooled connection.
    for (const run of Object.values(ways))
      for (let i = 0; i < 50; i++) await Promise.all(conversations.slice(0, 16).map((c) => run(c)));
    const pids = await backendPids();
    const results = new Map<string, { own: number[]; backend: number[]; statements: number[] }>();
    for (let round = 0; round < rounds; round++) {
      for (const k of perTurn) {
        const names = Object.keys(ways);
        const order = names.map((_, i) => names[(i + round) % names.length]!);
        for (const name of order) {
          const run = ways[name]!;
          const statementsBefore = statements;
          const backendBefore = backendCpu(pids);
          const own = process.cpuUsage();
          for (let turn = 0; turn < turns; turn++) {
            const batch: Array<Promise<unknown>> = [];
            for (let i = 0; i < k; i++)
              batch.push(run(conversations[(turn * k + i) % conversations.length]!));
            const answers = await Promise.all(batch);
            if (answers.some((answer) => answer === undefined))
              throw new Error(`${name}: a member not found`);
          }
          const used = process.cpuUsage(own);
          const sends = turns * k;
          const key = `${name}, ${k} per turn`;
          const entry = results.get(key) ?? { own: [], backend: [], statements: [] };
          entry.own.push((used.user + used.system) / sends);
          entry.backend.push(((backendCpu(pids) - backendBefore) * 1e6) / sends);
          entry.statements.push((statements - statementsBefore) / sends);
          results.set(key, entry);
        }
      }
      console.log(`round ${round + 1} done, load average ${loadAverage()}`);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(
      "way | this process CPU-µs per pre-check (rounds; median) | backends CPU-µs (median) | statements per pre-check",
    );
    for (const [key, entry] of results) {
      console.log(
        `${key} | ${entry.own.map((v) => v.toFixed(0)).join(" ")}; ${median(entry.own).toFixed(0)} | ${median(entry.backend).toFixed(0)} | ${median(entry.statements).toFixed(2)}`,
      );
    }
    console.log(`load average at the end: ${loadAverage()}`);
  } finally {
    await prisma.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);

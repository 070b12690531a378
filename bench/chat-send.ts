/**
 * Chat's sendMessage on one Chat instance over HTTP, without the gateway or subscribers.
 *
 *   pnpm exec tsx bench/chat-send.ts [--senders 64] [--seconds 10] [--conversations 500] [--group 0] [--checkpoint] [--keep]
 *
 * Chat runs as its own process (built, as deployed; BENCH_RUN=source: node --import tsx subgraphs/chat/src/index.ts) on a database of its
 * own, verifying tokens against a JWKS endpoint served by this process. `conversations` two-person
 * conversations are seeded with SQL (plus, with --group N, one group of N members that every 10th
 * send goes to). `senders` concurrent loops each send one message, wait for the answer, send the
 * next (closed loop), for `seconds`. Reported: messages stored per second, the round trip p50/p99,
 * and what each stored message cost PostgreSQL: the CPU of the backends serving the bench database
 * (/proc), transactions and rows written (pg_stat_database of the bench database, which nothing
 * else uses), and the WAL the cluster wrote (pg_stat_wal: records, full-page images, bytes; the
 * whole cluster's, so only meaningful on one nothing else writes to). `--checkpoint` runs CHECKPOINT
 * just before the load, so every run starts paying full-page images as a run after a checkpoint does.
 * `--ab N`: a second Chat on the same database with SUBGRAPH_KNOWN_OPERATIONS=false (Apollo Server
 * answers every request), and N rounds of `seconds` of load on each in turn; reported per round:
 * each process's CPU and read + write system calls per message (PostgreSQL's figures are left out).
 */
import { execSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { generateSigningKeyJwk, publicSigningKeyJwk } from "@hv/kit";
import { createChatDb } from "@hv/chat/src/db";
import { databaseUrlEnvVar, defaultDatabaseUrl, ensureDatabase, migrateDeploy } from "@hv/prisma";
import {
  benchTokenIssuer,
  dropUnlessKept,
  RUN_MODE,
  runBench,
  startChild,
  stopChild,
  syscallsOf,
} from "./support/service";

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} needs a non-negative integer`);
  return value;
}
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function main(): Promise<void> {
  const senders = flag("senders", 64);
  const seconds = flag("seconds", 10);
  const conversationCount = Math.max(1, flag("conversations", 500));
  const groupSize = flag("group", 0);
  const keep = process.argv.includes("--keep");
  const checkpoint = process.argv.includes("--checkpoint");
  const abRounds = flag("ab", 0);
  const stamp = Date.now().toString(36);
  console.log(`command: pnpm exec tsx bench/chat-send.ts ${process.argv.slice(2).join(" ")}`.trim());
  console.log(
    `machine: ${os.cpus()[0]?.model ?? "?"}, nproc ${execSync("nproc").toString().trim()}, node ${process.version}, services ${RUN_MODE}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );

  const url = new URL(process.env[databaseUrlEnvVar("chat")] ?? defaultDatabaseUrl("chat"));
  url.pathname = `/hv_bench_send_${stamp}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await migrateDeploy("chat", databaseUrl);
  const db = createChatDb(databaseUrl);

  const key = generateSigningKeyJwk("bench-send");
  const jwks = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [publicSigningKeyJwk(key)] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let apolloChild: ChildProcess | undefined;
  try {
    // Two people per conversation (a GROUP of two, as the gateway bench makes them), seeded with SQL.
    const people = Array.from({ length: conversationCount * 2 }, () => randomUUID());
    const conversations = Array.from({ length: conversationCount }, (_, i) => ({
      id: randomUUID(),
      a: people[2 * i]!,
      b: people[2 * i + 1]!,
    }));
    await db.$executeRawUnsafe(
      `INSERT INTO conversations (id, kind, title) SELECT id::uuid, 'GROUP', 'bench' FROM unnest($1::text[]) AS t(id)`,
      conversations.map((c) => c.id),
    );
    await db.$executeRawUnsafe(
      `INSERT INTO conversation_members (conversation_id, user_id, role)
       SELECT c::uuid, u::uuid, 'MEMBER' FROM unnest($1::text[], $2::text[]) AS t(c, u)`,
      conversations.flatMap((c) => [c.id, c.id]),
      conversations.flatMap((c) => [c.a, c.b]),
    );
    const groupId = randomUUID();
    if (groupSize > 1) {
      await db.$executeRawUnsafe(
        `INSERT INTO conversations (id, kind, title) VALUES ($1::uuid, 'GROUP', 'bench group')`,
        groupId,
      );
      await db.$executeRawUnsafe(
        `INSERT INTO conversation_members (conversation_id, user_id) SELECT $1::uuid, u::uuid FROM unnest($2::text[]) AS t(u)`,
        groupId,
        people.slice(0, groupSize),
      );
    }
    const issuer = benchTokenIssuer(key);
    const tokens = new Map<string, string>();
    for (const userId of people)
      tokens.set(userId, (await issuer.issue({ userId, sessionId: randomUUID(), role: "USER" })).token);

    // --profile DIR: a V8 CPU profile of the Chat process, written when it exits.
    const profileDir =
      process.argv.indexOf("--profile") >= 0
        ? process.argv[process.argv.indexOf("--profile") + 1]
        : undefined;
    const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    const chatEnv = (chatPort: number, more: Record<string, string> = {}) => ({
      CHAT_DATABASE_URL: databaseUrl,
      CHAT_PORT: String(chatPort),
      AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
      EVENTS_PREFIX: `hvbenchsend${stamp}`,
      CHAT_SEND_BURST: "10000",
      CHAT_SEND_SUSTAINED: "1000000",
      CHAT_GROUP_MAX_MEMBERS: String(Math.max(256, groupSize)),
      ...more,
    });
    child = await startChild(
      "subgraphs/chat/src/index.ts",
      chatEnv(port),
      `http://127.0.0.1:${port}/readyz`,
      profile,
    );

    const agent = new http.Agent({ keepAlive: true, maxSockets: senders });
    const mutation = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
    const send = (conversationId: string, from: string, text: string, to = port) =>
      new Promise<{ errors?: Array<{ message?: string; extensions?: { code?: string } }> }>(
        (resolve, reject) => {
          const body = JSON.stringify({
            query: mutation,
            variables: { input: { conversationId, clientMessageId: randomUUID(), text } },
          });
          const req = http.request(
            `http://127.0.0.1:${to}/graphql`,
            {
              method: "POST",
              agent,
              headers: {
                "content-type": "application/json",
                authorization: `Bearer ${tokens.get(from)}`,
                "content-length": Buffer.byteLength(body),
              },
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (chunk: Buffer) => chunks.push(chunk));
              res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
            },
          );
          req.on("error", reject);
          req.end(body);
        },
      );

    // Warm-up: every code path compiled, pools filled.
    await Promise.all(
      conversations.slice(0, Math.min(senders, conversations.length)).map((c) => send(c.id, c.a, "warm-up")),
    );
    if (abRounds > 0) {
      const apolloPort = await freePort();
      apolloChild = await startChild(
        "subgraphs/chat/src/index.ts",
        chatEnv(apolloPort, { SUBGRAPH_KNOWN_OPERATIONS: "false" }),
        `http://127.0.0.1:${apolloPort}/readyz`,
      );
      await Promise.all(
        conversations
          .slice(0, Math.min(senders, conversations.length))
          .map((c) => send(c.id, c.a, "warm-up", apolloPort)),
      );
      const sides = [
        { name: "Apollo Server", child: apolloChild, port: apolloPort },
        { name: "known operations", child, port },
      ];
      for (let round = 1; round <= abRounds; round += 1) {
        for (const side of sides) {
          const cpuAtStart = cpuSeconds(side.child.pid!);
          const syscallsAtStart = syscallsOf(side.child.pid!);
          let done = 0;
          let refused = 0;
          const until = performance.now() + seconds * 1000;
          await Promise.all(
            Array.from({ length: senders }, async () => {
              while (performance.now() < until) {
                const conversation = conversations[Math.floor(Math.random() * conversations.length)]!;
                const result = await send(conversation.id, conversation.a, `m${done}`, side.port);
                if (result.errors) refused += 1;
                else done += 1;
              }
            }),
          );
          const used = cpuSeconds(side.child.pid!) - cpuAtStart;
          console.log(
            `round ${round} ${side.name}: ${done} stored (${refused} refused), chat ${((used / Math.max(1, done)) * 1000).toFixed(3)} CPU-ms and ${((syscallsOf(side.child.pid!) - syscallsAtStart) / Math.max(1, done)).toFixed(1)} read + write system calls per message; load ${os
              .loadavg()
              .map((l) => l.toFixed(2))
              .join(" ")}`,
          );
        }
      }
      return;
    }

    const stats = async () =>
      (
        await db.$queryRawUnsafe<
          Array<{
            xact_commit: bigint;
            xact_rollback: bigint;
            tup_inserted: bigint;
            tup_updated: bigint;
            sessions: bigint;
          }>
        >(
          `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, sessions FROM pg_stat_database WHERE datname = current_database()`,
        )
      )[0]!;
    // The CPU of every backend serving the bench database (Chat's pool), by pid, from /proc.
    const backendCpu = async () => {
      const rows = await db.$queryRawUnsafe<Array<{ pid: number }>>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      const cpu = new Map<number, number>();
      for (const { pid } of rows) {
        try {
          cpu.set(pid, cpuSeconds(pid));
        } catch {
          // ended meanwhile
        }
      }
      return cpu;
    };
    // The cluster's WAL so far (pg_stat_wal is kept by each backend and flushed with its other counters).
    const wal = async () =>
      (
        await db.$queryRawUnsafe<Array<{ records: bigint; fpi: bigint; bytes: string }>>(
          `SELECT wal_records AS records, wal_fpi AS fpi, wal_bytes::text AS bytes FROM pg_stat_wal`,
        )
      )[0]!;
    if (checkpoint) await db.$executeRawUnsafe("CHECKPOINT");
    // pg_stat_database is updated when a backend reports (at most every 10 s on PostgreSQL 15, and at idle).
    await sleep(1_500);
    const before = await stats();
    const walBefore = await wal();
    const pgBefore = await backendCpu();
    const cpuBefore = cpuSeconds(child.pid!);
    const syscallsBefore = syscallsOf(child.pid!);
    const latencies: number[] = [];
    let stored = 0;
    let failed = 0;
    const errorCodes = new Map<string, number>();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let counter = 0;
    await Promise.all(
      Array.from({ length: senders }, async () => {
        while (performance.now() < deadline) {
          const n = counter++;
          const toGroup = groupSize > 1 && n % 10 === 0;
          const conversation = conversations[Math.floor(Math.random() * conversations.length)]!;
          const conversationId = toGroup ? groupId : conversation.id;
          const from = toGroup
            ? people[n % groupSize]!
            : Math.random() < 0.5
              ? conversation.a
              : conversation.b;
          const at = performance.now();
          try {
            const result = await send(conversationId, from, `m${n}`);
            latencies.push(performance.now() - at);
            if (result.errors) {
              failed += 1;
              const code = result.errors[0]?.extensions?.code ?? result.errors[0]?.message ?? "?";
              errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
            } else stored += 1;
          } catch {
            failed += 1;
          }
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(child.pid!) - cpuBefore;
    let pgCpu = 0;
    for (const [pid, seconds] of await backendCpu()) pgCpu += seconds - (pgBefore.get(pid) ?? 0);
    const syscalls = syscallsOf(child.pid!) - syscallsBefore;
    await sleep(11_000); // let every backend report its counters
    const after = await stats();
    const walAfter = await wal();
    latencies.sort((a, b) => a - b);
    const per = (field: keyof typeof before) =>
      (Number(after[field] - before[field]) / Math.max(1, stored)).toFixed(2);
    console.log(
      `${senders} concurrent senders for ${elapsed.toFixed(1)} s over ${conversationCount} conversations${groupSize > 1 ? ` (+ every 10th send to a group of ${groupSize})` : ""}`,
    );
    console.log(
      `stored ${stored} messages: ${(stored / elapsed).toFixed(0)} msgs/s; refused or failed ${failed}${errorCodes.size ? ` (${[...errorCodes].map(([c, k]) => `${c} ${k}`).join(", ")})` : ""}`,
    );
    console.log(
      `sendMessage round trip: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
    );
    console.log(
      `chat CPU ${cpu.toFixed(1)} s in ${elapsed.toFixed(1)} s (${((cpu / Math.max(1, stored)) * 1000).toFixed(2)} ms per message); ${(syscalls / Math.max(1, stored)).toFixed(1)} read + write system calls per message`,
    );
    console.log(
      `PostgreSQL backends CPU ${pgCpu.toFixed(2)} s (${((pgCpu / Math.max(1, stored)) * 1000).toFixed(2)} ms per message); ${after.sessions - before.sessions} connections opened`,
    );
    console.log(
      `PostgreSQL per stored message (pg_stat_database, includes the outbox relay): ${per("xact_commit")} commits, ${per("xact_rollback")} rollbacks, ${per("tup_inserted")} rows inserted, ${per("tup_updated")} rows updated`,
    );
    const perMessage = (value: number) => (value / Math.max(1, stored)).toFixed(2);
    console.log(
      `WAL per stored message (pg_stat_wal, the whole cluster${checkpoint ? ", CHECKPOINT before the load" : ""}): ${perMessage(Number(walAfter.records - walBefore.records))} records, ${perMessage(Number(walAfter.fpi - walBefore.fpi))} full-page images, ${perMessage(Number(walAfter.bytes) - Number(walBefore.bytes))} bytes`,
    );
    console.log(
      `load average at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
  } finally {
    await stopChild(apolloChild);
    await stopChild(child);
    jwks.close();
    await db.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);

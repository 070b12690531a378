/**
 * The send's SQL alone: what each way of storing a message costs the PostgreSQL backend running it,
 * interleaved in one process on one connection (so the machine's load hits every way alike).
 *
 *   pnpm exec tsx bench/chat-store.ts [--sends 2000] [--rounds 4] [--conversations 500] [--messages 200000]
 *     [--published 100000] [--checkpoint] [--fk-on] [--only "NAME|..."] [--keep]
 *
 * A bench database of Chat's schema with `conversations` two-person GROUP conversations (as the
 * gateway bench makes them) and as many DIRECT ones, holding `messages` messages with random
 * (version 4) ids, as a database written before round 8 does. Each round runs every way `sends`
 * times, one statement at a time (autocommit, as Chat sends them), in an order that rotates per
 * round, and reads the backend's CPU from /proc and the WAL written (pg_current_wal_lsn: run it on a
 * cluster nothing else writes to) before and after: CPU-µs and WAL bytes per send. `--checkpoint`
 * runs CHECKPOINT before each way's batch, so each batch pays the full-page images a batch right
 * after a checkpoint pays. The ways:
 * - `STORE (group|direct), v4 ids`: the variant a text send runs (store-statement.ts), the message
 *   and outbox event ids random, as before round 8;
 * - `STORE (group|direct), v7 ids`: the same with time-ordered ids (timeOrderedUuid), as Chat sends;
 * - with `--fk-on`, `STORE (group), v7, with FK`: the same on a second bench database, seeded alike,
 *   that has the foreign key messages -> conversations back (as before round 11), to price the
 *   message row's check against conversations;
 * - `pre-check`: the read before the budgets (messages.ts), alone;
 * - `outbox row + mark`: an event row (a v7 id) inserted per send and marked published 20 at a time
 *   (the relay's MARK_SQL) on a copy of the outbox table holding `published` rows published earlier,
 *   as an outbox that is never pruned does.
 * `--only "A|B"` runs only the ways whose name contains one of these (e.g. `--only "v7 ids|with FK"`).
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { Client, Pool } from "pg";
import {
  groupCommit,
  MARK_SQL,
  type GroupCommit,
  outboxEventData,
  timeOrderedUuid,
  type SqlStatement,
} from "@hv/kit";
import {
  precheckStatement,
  storeStatement,
  type ConversationKind,
  type NewMessage,
} from "@hv/chat/src/modules/store-statement";
import { argument, flag, percentile } from "./support/args";
import {
  benchDatabase,
  cpuSecondsOf,
  dropUnlessKept,
  loadAverage,
  printHeader,
  runBench,
} from "./support/service";

/**
 * A process's time on a CPU so far in µs: the scheduler's own sum in ns (/proc/<pid>/schedstat),
 * or utime + stime (USER_HZ 100: 10 ms steps) where the kernel keeps no schedstat.
 */
function cpuMicros(pid: number): number {
  const schedstat = existsSync(`/proc/${pid}/schedstat`)
    ? readFileSync(`/proc/${pid}/schedstat`, "utf8")
    : "";
  const ns = Number(schedstat.split(" ")[0]);
  return schedstat !== "" && Number.isFinite(ns)
    ? Math.round(ns / 1000)
    : Math.round(cpuSecondsOf(pid) * 1_000_000);
}

interface Conversation {
  id: string;
  a: string;
  b: string;
}

type Ids = "v4" | "v7";

function newMessage(
  conversation: Conversation,
  n: number,
  ids: Ids = "v7",
): { message: NewMessage; eventId: string; eventBase: Record<string, unknown> } {
  const now = new Date();
  const message: NewMessage = {
    messageId: ids === "v4" ? randomUUID() : timeOrderedUuid(),
    conversationId: conversation.id,
    senderId: n % 2 === 0 ? conversation.a : conversation.b,
    clientMessageId: randomUUID(),
    text: `m${n}`,
    attachmentIds: [],
    replyToId: null,
    now,
  };
  const event = outboxEventData("message.created", {
    messageId: message.messageId,
    conversationId: message.conversationId,
    conversationKind: "GROUP",
    senderId: message.senderId,
    seq: 1,
    sentAt: now.toISOString(),
    preview: message.text,
    recipients: [],
  });
  const { seq: _seq, conversationKind: _kind, recipients: _recipients, ...eventBase } = event.payload;
  return { message, eventId: ids === "v4" ? randomUUID() : event.id, eventBase };
}

/**
 * `--rate R1,R2 --seconds S --running C1,C2`: STORE (group variant) sends arriving at each rate for
 * S seconds: each alone from a pool of 10 connections, as Chat ran them before round 9, then through
 * `groupCommit` on C pipelined connections (at most C transactions under way, 16 sends in one). The ways alternate
 * per round. PostgreSQL CPU (the pools' backends, /proc), write transactions (transaction ids
 * taken) and the wait for each send's commit (latency: meaningless on a loaded machine) per send.
 */
async function atRates(
  url: string,
  client: Client,
  rates: number[],
  seconds: number,
  runningList: number[],
  rounds: number,
  next: () => { statement: SqlStatement; key: string },
): Promise<void> {
  const pool = new Pool({ connectionString: url, max: 10 });
  const database = new URL(url).pathname.slice(1);
  const groups: GroupCommit[] = [];
  const ways: Array<{ name: string; run: (statement: SqlStatement, key: string) => Promise<unknown> }> = [
    { name: "alone (pool of 10)", run: (statement) => pool.query(statement as never) },
    ...runningList.map((running) => {
      const group = groupCommit({ databaseUrl: url, poolName: "store", maxBatch: 16, maxRunning: running });
      groups.push(group);
      return { name: `group commit, ${running} under way`, run: group.query.bind(group) };
    }),
  ];
  const snapshot = async () => {
    const pids = (
      await client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [database],
      )
    ).rows.map((row) => row.pid);
    // Each write transaction takes one transaction id (the stats of idle backends lag by up to 10 s).
    const commits = Number(
      (await client.query<{ x: string }>("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x"))
        .rows[0]!.x,
    );
    const cpu = new Map(pids.map((pid) => [pid, cpuSecondsOf(pid)]));
    return { cpu, commits };
  };
  try {
    for (const rate of rates) {
      const figures = new Map<string, string[]>(ways.map((way) => [way.name, []]));
      for (let round = 0; round < rounds; round += 1) {
        for (const way of ways.map((_, i) => ways[(i + round) % ways.length]!)) {
          const before = await snapshot();
          const total = rate * seconds;
          const started = performance.now();
          const pending: Array<Promise<unknown>> = [];
          const waits: number[] = [];
          const timed = (promise: Promise<unknown>) => {
            const at = performance.now();
            return promise.then(() => waits.push(performance.now() - at));
          };
          let sent = 0;
          while (sent < total) {
            const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
            for (; sent < due; sent += 1) {
              const { statement, key } = next();
              pending.push(timed(way.run(statement, key)));
            }
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          await Promise.all(pending);
          const after = await snapshot();
          let cpu = 0;
          for (const [pid, value] of after.cpu) cpu += value - (before.cpu.get(pid) ?? 0);
          const perSend = (cpu * 1000) / total;
          const commits = (after.commits - before.commits) / total;
          waits.sort((x, y) => x - y);
          const p = (q: number) => percentile(waits, q).toFixed(0);
          figures
            .get(way.name)!
            .push(
              `${perSend.toFixed(3)} ms, ${commits.toFixed(2)} write transactions, wait p50 ${p(50)} p99 ${p(99)} ms`,
            );
        }
        console.log(`${rate}/s round ${round + 1} done, load average ${loadAverage()}`);
      }
      console.log(
        `${rate} sends/s for ${seconds} s, PostgreSQL backend CPU-ms and write transactions per send, each round:`,
      );
      for (const [name, values] of figures) console.log(`  ${name.padEnd(28)} ${values.join(" | ")}`);
    }
  } finally {
    await pool.end();
    await Promise.all(groups.map((group) => group.end()));
  }
}

/** Seeds a bench database: the conversations, their members and history, published outbox rows, and a copy of the outbox. */
async function fill(
  client: Client,
  all: Array<Conversation & { kind: ConversationKind }>,
  perConversation: number,
  published: number,
): Promise<void> {
  await client.query(
    `INSERT INTO conversations (id, kind, title, last_seq, version)
     SELECT id::uuid, k::"ConversationKind", 'bench', $3::int, $3::int FROM unnest($1::text[], $2::text[]) AS t(id, k)`,
    [all.map((c) => c.id), all.map((c) => c.kind), perConversation],
  );
  await client.query(
    `INSERT INTO conversation_members (conversation_id, user_id, role, last_read_seq, delivered_seq)
     SELECT c::uuid, u::uuid, 'MEMBER', $3::int, $3::int FROM unnest($1::text[], $2::text[]) AS t(c, u)`,
    [all.flatMap((c) => [c.id, c.id]), all.flatMap((c) => [c.a, c.b]), perConversation],
  );
  // The history: random ids, in send order (seq), each member sending every other message.
  await client.query(
    `INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, text, created_at, version)
     SELECT gen_random_uuid(), c::uuid, s, CASE WHEN s % 2 = 0 THEN a::uuid ELSE b::uuid END, gen_random_uuid()::text,
            'history ' || s, now() - interval '1 day', s
       FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, a, b), generate_series(1, $4::int) AS s`,
    [all.map((c) => c.id), all.map((c) => c.a), all.map((c) => c.b), perConversation],
  );
  await client.query(
    `INSERT INTO outbox_events (id, type, payload, created_at, published_at)
     SELECT gen_random_uuid(), 'message.created', '{"preview": "bench"}'::jsonb, now() - interval '1 day', now() - interval '1 day'
       FROM generate_series(1, $1::int)`,
    [published],
  );
  // A copy of the outbox table for the row + mark way (STORE's events go to outbox_events).
  await client.query(`CREATE TABLE outbox_index (LIKE outbox_events INCLUDING ALL)`);
  await client.query(`INSERT INTO outbox_index SELECT * FROM outbox_events`);
  await client.query(`VACUUM ANALYZE`);
}

async function main(): Promise<void> {
  printHeader("chat-store.ts");
  const sends = flag("sends", 2000);
  const rounds = flag("rounds", 4);
  const count = flag("conversations", 500);
  const messages = flag("messages", 200_000);
  const published = flag("published", 100_000);
  const checkpoint = process.argv.includes("--checkpoint");
  const fkOn = process.argv.includes("--fk-on");
  const groupSizes = (argument("group-commit") ?? "")
    .split(",")
    .filter((size) => size !== "")
    .map(Number);
  const keep = process.argv.includes("--keep");
  const list = (name: string) =>
    (argument(name) ?? "")
      .split(",")
      .filter((value) => value !== "")
      .map(Number);
  const rates = list("rate");
  const seconds = flag("seconds", 5);
  const runningList = list("running");
  const stamp = Date.now().toString(36);
  const url = await benchDatabase("chat", "store", stamp);
  const client = new Client({ connectionString: url });
  await client.connect();
  const fkUrl = fkOn ? await benchDatabase("chat", "store_fk", stamp) : undefined;
  const withFk = fkUrl ? new Client({ connectionString: fkUrl }) : undefined;
  try {
    const seed = (kind: ConversationKind) =>
      Array.from({ length: count }, () => ({ id: randomUUID(), a: randomUUID(), b: randomUUID(), kind }));
    const groups = seed("GROUP");
    const directs = seed("DIRECT");
    const all = [...groups, ...directs];
    const perConversation = Math.max(1, Math.floor(messages / all.length));
    await fill(client, all, perConversation, published);
    const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    // The second database, seeded alike, with the foreign key messages -> conversations back.
    let withFkPid = 0;
    if (withFk) {
      await withFk.connect();
      await fill(withFk, all, perConversation, published);
      await withFk.query(
        `ALTER TABLE messages ADD CONSTRAINT "messages_conversation_id_fkey" FOREIGN KEY (conversation_id)
           REFERENCES conversations(id) ON DELETE CASCADE ON UPDATE CASCADE`,
      );
      withFkPid = (await withFk.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    }
    let n = 0;
    const pick = (list: Conversation[]) => list[Math.floor(Math.random() * list.length)]!;
    let unmarked: string[] = [];
    const insertOutbox = `INSERT INTO outbox_index (id, type, payload, created_at) VALUES ($1::uuid, 'message.created', $2::jsonb, $3::timestamptz)`;
    const markOutbox = MARK_SQL.replace("outbox_events", "outbox_index");
    const store =
      (list: Conversation[], kind: ConversationKind, ids: Ids, on: Client = client) =>
      () => {
        const { message, eventId, eventBase } = newMessage(pick(list), n++, ids);
        return on.query(storeStatement(message, eventBase, eventId, kind) as never);
      };
    // `size` sends in one transaction (BEGIN, the STOREs, COMMIT): one commit for many.
    // A run is one transaction; its figures are per send (`sends` runs of `size` STOREs).
    const inTransactions = (size: number, run: () => Promise<unknown>) => async () => {
      await client.query("BEGIN");
      for (let i = 0; i < size; i += 1) await run();
      await client.query("COMMIT");
    };
    const allWays: Array<{ name: string; run: () => Promise<unknown>; pid?: number; perRun?: number }> = [
      { name: "STORE (group), v4 ids", run: store(groups, "GROUP", "v4") },
      { name: "STORE (group), v7 ids", run: store(groups, "GROUP", "v7") },
      { name: "STORE (direct), v4 ids", run: store(directs, "DIRECT", "v4") },
      { name: "STORE (direct), v7 ids", run: store(directs, "DIRECT", "v7") },
      {
        name: "outbox row + mark",
        run: async () => {
          const { message, eventId, eventBase } = newMessage(pick(groups), n++);
          await client.query({
            name: "insert_outbox_index",
            text: insertOutbox,
            values: [
              eventId,
              JSON.stringify({
                ...eventBase,
                recipients: [{ userId: message.senderId, unreadCount: 1, totalUnreadCount: 1 }],
              }),
              message.now,
            ],
          });
          unmarked.push(eventId);
          if (unmarked.length < 20) return;
          await client.query({ name: "mark_outbox_index", text: markOutbox, values: [unmarked] });
          unmarked = [];
        },
      },
      ...groupSizes.map((size) => ({
        name: `STORE (group), ${size} a commit`,
        run: inTransactions(size, store(groups, "GROUP", "v7")),
        perRun: size,
      })),
      ...(withFk
        ? [{ name: "STORE (group), v7, with FK", run: store(groups, "GROUP", "v7", withFk), pid: withFkPid }]
        : []),
      {
        name: "pre-check",
        run: () => {
          const c = pick(groups);
          return client.query(precheckStatement(c.id, c.a, randomUUID()) as never);
        },
      },
    ];
    if (rates.length > 0) {
      await atRates(url, client, rates, seconds, runningList, rounds, () => {
        const { message, eventId, eventBase } = newMessage(pick(groups), n++);
        return {
          statement: storeStatement(message, eventBase, eventId, "GROUP"),
          key: message.conversationId,
        };
      });
      return;
    }
    const walLsn = async () =>
      BigInt(
        (await client.query<{ lsn: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn")).rows[0]!
          .lsn,
      );
    const only = (argument("only") ?? "").split("|").filter((part) => part !== "");
    const ways = allWays.filter((way) => only.length === 0 || only.some((part) => way.name.includes(part)));
    // Warm-up: every statement prepared and past PostgreSQL's five custom plans.
    for (const way of ways) for (let i = 0; i < 20; i += 1) await way.run();
    const results = new Map<string, Array<{ cpu: number; wal: number }>>(ways.map((way) => [way.name, []]));
    for (let round = 0; round < rounds; round += 1) {
      const order = ways.map((_, i) => ways[(i + round) % ways.length]!);
      for (const way of order) {
        if (checkpoint) await client.query("CHECKPOINT");
        const wal = await walLsn();
        const before = cpuMicros(way.pid ?? pid);
        for (let i = 0; i < sends; i += 1) await way.run();
        const statements = sends * (way.perRun ?? 1);
        const cpu = (cpuMicros(way.pid ?? pid) - before) / statements;
        results.get(way.name)!.push({ cpu, wal: Number((await walLsn()) - wal) / statements });
      }
      console.log(`round ${round + 1} done, load average ${loadAverage()}`);
    }
    const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
    console.log(
      `${sends} statements a way per round, ${rounds} rounds, ${perConversation} messages per conversation before${checkpoint ? ", CHECKPOINT before each batch" : ""}:`,
    );
    console.log(
      `  ${"way".padEnd(24)} backend CPU-µs per statement, each round (median); WAL bytes per statement (median)`,
    );
    for (const [name, values] of results) {
      const cpu = values.map((v) => v.cpu);
      const wal = values.map((v) => v.wal);
      console.log(
        `  ${name.padEnd(24)} ${cpu.map((v) => v.toFixed(0).padStart(5)).join(" ")} (${median(cpu).toFixed(0)}); ${wal.map((v) => v.toFixed(0)).join(" ")} (${median(wal).toFixed(0)})`,
      );
    }
  } finally {
    await withFk?.end();
    await client.end();
    await dropUnlessKept(url, keep);
    if (fkUrl) await dropUnlessKept(fkUrl, keep);
  }
}

runBench(main);

/**
 * The send's SQL alone: what each way of storing a message costs the PostgreSQL backend running it,
 * interleaved in one process on one connection (so the machine's load hits every way alike).
 *
 *   pnpm exec tsx bench/chat-store.ts [--sends 2000] [--rounds 4] [--conversations 500] [--published 100000] [--keep]
 *
 * A bench database of Chat's schema with `conversations` two-person GROUP conversations (as the
 * gateway bench makes them) and as many DIRECT ones. Each round runs every way `sends` times, one
 * statement at a time (autocommit, as Chat sends them), in an order that rotates per round, and
 * reads the backend's CPU from /proc before and after: CPU-µs per send. The ways:
 * - `round 6 STORE`: the one statement every send ran before round 7 (reply, attachments and
 *   one-to-one checks always in the plan);
 * - `STORE (group)`, `STORE (direct)`: the variant a text send runs now (store-statement.ts);
 * - `pre-check`: the read before the budgets (messages.ts), alone;
 * - `outbox row + mark`: an event row inserted per send and marked published 20 at a time (the
 *   relay's MARK_SQL), on a copy of the outbox table with its (published_at, created_at) index and
 *   on one with a partial index on the unpublished rows instead; both hold `published` rows
 *   published earlier, as an outbox that is never pruned does.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Client } from "pg";
import { MARK_SQL, outboxEventData, type SqlStatement } from "@hv/kit";
import { Prisma } from "@hv/chat/src/generated/prisma/client";
import {
  precheckStatement,
  storeStatement,
  type ConversationKind,
  type NewMessage,
} from "@hv/chat/src/modules/store-statement";
import { benchDatabase, dropUnlessKept, loadAverage, printHeader, runBench } from "./support/service";

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer`);
  return value;
}

/** utime + stime of a process in µs (USER_HZ 100: 10 ms steps, hence many sends per round). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

interface Conversation {
  id: string;
  a: string;
  b: string;
}

/** Round 6's STORE (main before rt-pg7), kept for comparison. */
function round6Store(m: NewMessage, eventBase: Record<string, unknown>, eventId: string): SqlStatement {
  const { messageId, conversationId, senderId, clientMessageId, text, now } = m;
  const replyToId: string | null = null;
  const attachmentIds: string[] = [];
  const statement = Prisma.sql`
      WITH conv AS (
        UPDATE conversations c SET last_seq = c.last_seq + 1, version = c.version + 1, last_activity_at = ${now}::timestamptz
         WHERE c.id = ${conversationId}::uuid
           AND c.closed_at IS NULL
           AND EXISTS (SELECT 1 FROM conversation_members s WHERE s.conversation_id = c.id AND s.user_id = ${senderId}::uuid)
           AND NOT EXISTS (SELECT 1 FROM banned_users WHERE user_id = ${senderId}::uuid)
           AND (c.kind <> 'DIRECT' OR NOT EXISTS (
                SELECT 1 FROM conversation_members o JOIN blocks b
                    ON (b.blocker_id = ${senderId}::uuid AND b.blocked_id = o.user_id)
                    OR (b.blocked_id = ${senderId}::uuid AND b.blocker_id = o.user_id)
                 WHERE o.conversation_id = c.id AND o.user_id <> ${senderId}::uuid))
           AND (${replyToId}::uuid IS NULL OR EXISTS (
                SELECT 1 FROM messages r WHERE r.id = ${replyToId}::uuid AND r.conversation_id = c.id))
        RETURNING c.kind::text AS kind, c.last_seq AS seq, c.version AS version
      ), msg AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, text, reply_to_id, created_at, version)
        SELECT ${messageId}::uuid, ${conversationId}::uuid, conv.seq, ${senderId}::uuid, ${clientMessageId}::text,
               ${text}::text, ${replyToId}::uuid, ${now}::timestamptz, conv.version
          FROM conv
        RETURNING seq, version
      ), att AS (
        INSERT INTO message_attachments (message_id, media_id, position)
        SELECT ${messageId}::uuid, a.media_id, (a.ord - 1)::int
          FROM msg, unnest(${attachmentIds}::uuid[]) WITH ORDINALITY AS a(media_id, ord)
      ), mine AS (
        UPDATE conversation_members m
           SET last_read_seq = GREATEST(m.last_read_seq, msg.seq), delivered_seq = GREATEST(m.delivered_seq, msg.seq)
          FROM msg
         WHERE m.conversation_id = ${conversationId}::uuid AND m.user_id = ${senderId}::uuid
      ), others AS (
        SELECT o.user_id, o.muted, o.last_read_seq,
               EXISTS (SELECT 1 FROM blocks b
                        WHERE (b.blocker_id = ${senderId}::uuid AND b.blocked_id = o.user_id)
                           OR (b.blocked_id = ${senderId}::uuid AND b.blocker_id = o.user_id)) AS blocked
          FROM conversation_members o
         WHERE o.conversation_id = ${conversationId}::uuid AND o.user_id <> ${senderId}::uuid
      ), recipients AS (
        SELECT o.user_id, GREATEST(0, msg.seq - o.last_read_seq) AS unread,
               GREATEST(0, msg.seq - o.last_read_seq) + COALESCE((
                 SELECT sum(GREATEST(0, c2.last_seq - m2.last_read_seq))
                   FROM conversation_members m2 JOIN conversations c2 ON c2.id = m2.conversation_id
                  WHERE m2.user_id = o.user_id AND m2.conversation_id <> ${conversationId}::uuid AND NOT m2.muted), 0)::int AS total
          FROM others o, msg
         WHERE NOT o.muted AND NOT o.blocked
      ), event AS (
        INSERT INTO outbox_events (id, type, payload, created_at)
        SELECT ${eventId}::uuid, ${"message.created"}::text,
               ${JSON.stringify(eventBase)}::jsonb || jsonb_build_object(
                 'seq', msg.seq,
                 'conversationKind', conv.kind,
                 'recipients', COALESCE(
                   (SELECT jsonb_agg(jsonb_build_object('userId', r.user_id, 'unreadCount', r.unread, 'totalUnreadCount', r.total) ORDER BY r.user_id) FROM recipients r),
                   '[]'::jsonb)),
               ${now}::timestamptz
          FROM conv, msg
        RETURNING payload
      )
      SELECT conv.kind, msg.seq, msg.version, (SELECT payload FROM event) AS event,
             ${senderId}::text || ARRAY(SELECT o.user_id::text FROM others o WHERE NOT o.blocked) AS audience
        FROM conv, msg`;
  return { name: "round6_store", text: statement.text, values: statement.values };
}

function newMessage(
  conversation: Conversation,
  n: number,
): { message: NewMessage; eventId: string; eventBase: Record<string, unknown> } {
  const now = new Date();
  const message: NewMessage = {
    messageId: randomUUID(),
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
  return { message, eventId: event.id, eventBase };
}

async function main(): Promise<void> {
  printHeader("chat-store.ts");
  const sends = flag("sends", 2000);
  const rounds = flag("rounds", 4);
  const count = flag("conversations", 500);
  const published = flag("published", 100_000);
  const keep = process.argv.includes("--keep");
  const url = await benchDatabase("chat", "store", Date.now().toString(36));
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const seed = (kind: ConversationKind) =>
      Array.from({ length: count }, () => ({ id: randomUUID(), a: randomUUID(), b: randomUUID(), kind }));
    const groups = seed("GROUP");
    const directs = seed("DIRECT");
    const all = [...groups, ...directs];
    await client.query(
      `INSERT INTO conversations (id, kind, title) SELECT id::uuid, k::"ConversationKind", 'bench' FROM unnest($1::text[], $2::text[]) AS t(id, k)`,
      [all.map((c) => c.id), all.map((c) => c.kind)],
    );
    await client.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role)
       SELECT c::uuid, u::uuid, 'MEMBER' FROM unnest($1::text[], $2::text[]) AS t(c, u)`,
      [all.flatMap((c) => [c.id, c.id]), all.flatMap((c) => [c.a, c.b])],
    );
    // Two copies of the outbox table: its (published_at, created_at) index, and a partial one.
    await client.query(`CREATE TABLE outbox_index (LIKE outbox_events INCLUDING ALL)`);
    await client.query(`CREATE TABLE outbox_partial (LIKE outbox_events INCLUDING DEFAULTS)`);
    await client.query(`ALTER TABLE outbox_partial ADD PRIMARY KEY (id)`);
    await client.query(`CREATE INDEX ON outbox_partial (created_at) WHERE published_at IS NULL`);
    for (const table of ["outbox_index", "outbox_partial"]) {
      await client.query(
        `INSERT INTO ${table} (id, type, payload, created_at, published_at)
         SELECT gen_random_uuid(), 'message.created', '{"preview": "bench"}'::jsonb, now() - interval '1 day', now() - interval '1 day'
           FROM generate_series(1, $1::int)`,
        [published],
      );
      await client.query(`VACUUM ANALYZE ${table}`);
    }
    const outboxWay = (table: string) => {
      let unmarked: string[] = [];
      const insert = `INSERT INTO ${table} (id, type, payload, created_at) VALUES ($1::uuid, 'message.created', $2::jsonb, $3::timestamptz)`;
      const mark = MARK_SQL.replace("outbox_events", table);
      return async () => {
        const { message, eventId, eventBase } = newMessage(pick(groups), n++);
        await client.query({
          name: `insert_${table}`,
          text: insert,
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
        await client.query({ name: `mark_${table}`, text: mark, values: [unmarked] });
        unmarked = [];
      };
    };
    const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    let n = 0;
    const pick = (list: Conversation[]) => list[Math.floor(Math.random() * list.length)]!;
    const ways: Array<{ name: string; run: () => Promise<unknown> }> = [
      {
        name: "round 6 STORE (group)",
        run: () => {
          const { message, eventId, eventBase } = newMessage(pick(groups), n++);
          return client.query(round6Store(message, eventBase, eventId) as never);
        },
      },
      {
        name: "STORE (group)",
        run: () => {
          const { message, eventId, eventBase } = newMessage(pick(groups), n++);
          return client.query(storeStatement(message, eventBase, eventId, "GROUP") as never);
        },
      },
      {
        name: "round 6 STORE (direct)",
        run: () => {
          const { message, eventId, eventBase } = newMessage(pick(directs), n++);
          return client.query(round6Store(message, eventBase, eventId) as never);
        },
      },
      {
        name: "STORE (direct)",
        run: () => {
          const { message, eventId, eventBase } = newMessage(pick(directs), n++);
          return client.query(storeStatement(message, eventBase, eventId, "DIRECT") as never);
        },
      },
      { name: "outbox row + mark (index)", run: outboxWay("outbox_index") },
      { name: "outbox row + mark (partial)", run: outboxWay("outbox_partial") },
      {
        name: "pre-check",
        run: () => {
          const c = pick(groups);
          return client.query(precheckStatement(c.id, c.a, randomUUID()) as never);
        },
      },
    ];
    // Warm-up: every statement prepared and past PostgreSQL's five custom plans.
    for (const way of ways) for (let i = 0; i < 20; i += 1) await way.run();
    const results = new Map<string, number[]>(ways.map((way) => [way.name, []]));
    for (let round = 0; round < rounds; round += 1) {
      const order = ways.map((_, i) => ways[(i + round) % ways.length]!);
      for (const way of order) {
        const before = cpuMicros(pid);
        for (let i = 0; i < sends; i += 1) await way.run();
        results.get(way.name)!.push((cpuMicros(pid) - before) / sends);
      }
      console.log(`round ${round + 1} done, load average ${loadAverage()}`);
    }
    console.log(`backend CPU-µs per statement, ${sends} statements a way per round, ${rounds} rounds:`);
    for (const [name, values] of results) {
      const sorted = [...values].sort((x, y) => x - y);
      console.log(
        `  ${name.padEnd(30)} ${values.map((v) => v.toFixed(0).padStart(5)).join(" ")}   median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)}`,
      );
    }
  } finally {
    await client.end();
    await dropUnlessKept(url, keep);
  }
}

runBench(main);

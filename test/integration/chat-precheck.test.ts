import { randomUUID } from "node:crypto";
import { createDatabaseClients, type SqlClient } from "@hv/kit";
import { defaultDatabaseUrl } from "@hv/prisma";
import { PrismaClient } from "@hv/chat/src/generated/prisma/client";
import { SendPrechecks } from "@hv/chat/src/modules/send-precheck";
import { precheckStatement } from "@hv/chat/src/modules/store-statement";
import { freePort } from "../support/ports";

const CHAT_URL = process.env.CHAT_DATABASE_URL || defaultDatabaseUrl("chat");

/** The sends' pre-checks (send-precheck.ts): one statement for the sends of one turn, each its own answer. */
describe("send pre-checks", () => {
  let statements: string[];
  let clients: ReturnType<typeof createDatabaseClients<PrismaClient>>;
  let sql: SqlClient;
  const [conversation, other, alice, bob, carol, banned, held] = [
    randomUUID(),
    randomUUID(),
    randomUUID(),
    randomUUID(),
    randomUUID(),
    randomUUID(),
    randomUUID(),
  ];
  const earlierId = randomUUID();

  beforeAll(async () => {
    statements = [];
    clients = createDatabaseClients(PrismaClient, CHAT_URL, { onQuery: (text) => statements.push(text) });
    sql = clients.sql;
    const { pool } = clients;
    await pool.query(
      `INSERT INTO conversations (id, kind, title) VALUES ($1, 'GROUP', 't'), ($2, 'DIRECT', NULL)`,
      [conversation, other],
    );
    await pool.query(`UPDATE conversations SET closed_at = now() WHERE id = $1`, [other]);
    await pool.query(
      `INSERT INTO conversation_members (conversation_id, user_id) SELECT $1::uuid, u FROM unnest($2::uuid[]) AS t(u)`,
      [conversation, [alice, bob, banned, held]],
    );
    await pool.query(`INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)`, [
      other,
      alice,
    ]);
    await pool.query(`INSERT INTO banned_users (user_id) VALUES ($1)`, [banned]);
    await pool.query(`INSERT INTO held_senders (user_id, signal) VALUES ($1, 'test')`, [held]);
    await pool.query(
      `INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, text) VALUES ($1, $2, 1, $3, 'sent-once', 'hi')`,
      [earlierId, conversation, alice],
    );
  });
  afterAll(async () => {
    await clients.pool.query(`DELETE FROM messages WHERE conversation_id = ANY($1::uuid[])`, [
      [conversation, other],
    ]);
    await clients.pool.query(`DELETE FROM conversations WHERE id = ANY($1::uuid[])`, [[conversation, other]]);
    await clients.pool.query(`DELETE FROM banned_users WHERE user_id = $1`, [banned]);
    await clients.pool.query(`DELETE FROM held_senders WHERE user_id = $1`, [held]);
    await clients.prisma.$disconnect();
  });

  const cases: Array<[string, () => [string, string, string]]> = [
    ["a member's new message", () => [conversation, alice, randomUUID()]],
    ["a retry", () => [conversation, alice, "sent-once"]],
    ["another member's message under the same client id", () => [conversation, bob, "sent-once"]],
    ["a non-member", () => [conversation, carol, randomUUID()]],
    ["a banned member", () => [conversation, banned, randomUUID()]],
    ["a held member", () => [conversation, held, randomUUID()]],
    ["a closed one-to-one", () => [other, alice, randomUUID()]],
    ["a conversation that does not exist", () => [randomUUID(), alice, randomUUID()]],
  ];

  it("should read the pre-checks of sends arriving while one is read in one statement, each as its own statement answers", async () => {
    const sends = cases.map(([, args]) => args());
    const alone = await Promise.all(
      sends.map(async (args) => (await sql.query(precheckStatement(...args)))[0]),
    );
    const prechecks = new SendPrechecks(sql);
    statements.length = 0;
    // The first send's statement goes at once; the other seven arrive while it is read.
    const together = await Promise.all(sends.map((args) => prechecks.check(...args)));
    expect(statements).toHaveLength(2);
    expect(statements[0]).toBe(precheckStatement(conversation, alice, "x").text);
    expect(together).toEqual(alone);
    expect(Object.fromEntries(cases.map(([label], index) => [label, together[index]]))).toEqual({
      "a member's new message": { kind: "GROUP", closed: false, banned: false, held: false, existing: null },
      "a retry": { kind: "GROUP", closed: false, banned: false, held: false, existing: earlierId },
      "another member's message under the same client id": {
        kind: "GROUP",
        closed: false,
        banned: false,
        held: false,
        existing: null,
      },
      "a non-member": undefined,
      "a banned member": { kind: "GROUP", closed: false, banned: true, held: false, existing: null },
      "a held member": { kind: "GROUP", closed: false, banned: false, held: true, existing: null },
      "a closed one-to-one": { kind: "DIRECT", closed: true, banned: false, held: false, existing: null },
      "a conversation that does not exist": undefined,
    });
  });

  it("should read the pre-check of a send arriving while none is read at once, with its own statement", async () => {
    const prechecks = new SendPrechecks(sql);
    statements.length = 0;
    const first = await prechecks.check(conversation, alice, randomUUID());
    const second = await prechecks.check(conversation, carol, randomUUID());
    expect(statements).toEqual([
      precheckStatement(conversation, alice, "x").text,
      precheckStatement(conversation, carol, "x").text,
    ]);
    expect(first?.kind).toBe("GROUP");
    expect(second).toBeUndefined();
  });

  it("should fail every send of a batch whose statement fails", async () => {
    // A database nobody listens on: the statement fails to connect.
    const nowhere = createDatabaseClients(
      PrismaClient,
      `postgresql://postgres@127.0.0.1:${await freePort()}/none`,
    );
    try {
      const prechecks = new SendPrechecks(nowhere.sql);
      const results = await Promise.allSettled([
        prechecks.check(conversation, alice, randomUUID()),
        prechecks.check(conversation, bob, randomUUID()),
      ]);
      expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    } finally {
      await nowhere.prisma.$disconnect();
    }
  });
});

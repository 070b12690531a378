import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createClient, type Client } from "graphql-ws";
import { Queue } from "bullmq";
import Redis from "ioredis";
import pg from "pg";
import WebSocket from "ws";
import {
  createAccessTokenIssuer,
  eventQueueName,
  generateSigningKeyJwk,
  SessionRevocations,
  subscribersOf,
} from "@hv/kit";
import {
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
} from "@hv/prisma";
import { startReferenceServer, type ReferenceServer } from "../../bench/reference-chat-server";
import { startReferenceChecks } from "../../bench/reference-checks";
import { seedGroup, seedReference } from "../../bench/support/reference-target";
import { waitFor } from "../support/wait";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const operation = (name: string) => readFileSync(path.join(__dirname, "../../operations/chat", name), "utf8");

/** A scratch database name beside Chat's, a Redis prefix and a signing key with its issuer. */
function scratch(label: string) {
  const base = new URL(process.env[databaseUrlEnvVar("chat")] ?? defaultDatabaseUrl("chat"));
  base.pathname = `${base.pathname}_${label}_${randomBytes(3).toString("hex")}`;
  const key = generateSigningKeyJwk(`${label}-test`);
  const issuer = createAccessTokenIssuer({
    keys: [key],
    issuer: "haiyvee",
    audience: "haiyvee-api",
    ttlSeconds: 900,
  });
  return {
    databaseUrl: base.toString(),
    prefix: `hvtest-${label}-${randomBytes(4).toString("hex")}`,
    key,
    issuer,
  };
}

interface FeedEvent {
  kind: string;
  seq: number;
  message: { id: string; text: string; sender: { id: string; displayName: string } };
}

/**
 * A graphql-ws client on the server's `myChatEvents` with `token`, its events gathered in
 * `received`; resolves once Redis holds the subscriber of `channel`.
 */
async function subscribeFeed(port: number, token: string, redis: Redis, channel: string) {
  const received: FeedEvent[] = [];
  const client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  client.subscribe(
    { query: operation("ChatMyEvents.graphql") },
    {
      next: (result) => received.push((result.data as { myChatEvents: FeedEvent }).myChatEvents),
      error: (error) => {
        throw error instanceof Error ? error : new Error(JSON.stringify(error));
      },
      complete: () => undefined,
    },
  );
  try {
    await waitFor("subscribed", async () => ((await redis.pubsub("NUMSUB", channel)) as unknown[])[1] === 1);
  } catch (error) {
    await client.dispose();
    throw error;
  }
  return { client, received };
}

describe("the reference chat server (bench/reference-chat-server.ts)", () => {
  const { databaseUrl, prefix, key, issuer } = scratch("reference");
  const [alice, bob, eve] = [randomUUID(), randomUUID(), randomUUID()];
  const conversationId = randomUUID();
  const redis = new Redis(REDIS_URL);
  let server: ReferenceServer | undefined;
  let client: Client | undefined;

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    await seedReference(databaseUrl, [alice, bob, eve], [{ id: conversationId, members: [alice, bob] }]);
    server = await startReferenceServer({
      port: 0,
      databaseUrl,
      redisUrl: REDIS_URL,
      channelPrefix: prefix,
      signingKeys: JSON.stringify([key]),
    });
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
    await redis.quit();
    await dropDatabase(databaseUrl);
  });

  const token = async (userId: string) =>
    (await issuer.issue({ userId, sessionId: randomUUID(), role: "USER" })).token;
  const send = async (from: string, clientMessageId: string, text: string) => {
    const response = await fetch(`http://127.0.0.1:${server!.port}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await token(from)}` },
      body: JSON.stringify({
        query: operation("ChatSendMessage.graphql"),
        variables: { input: { conversationId, clientMessageId, text } },
      }),
    });
    return (await response.json()) as {
      data?: { sendMessage: { id: string; seq: number; sender: { displayName: string } } } | null;
      errors?: unknown[];
    };
  };

  it("should deliver each message to the other member over graphql-ws with seq 1, 2, … and store a retried key once", async () => {
    const feed = await subscribeFeed(server!.port, await token(bob), redis, `${prefix}:user:${bob}`);
    client = feed.client;
    const { received } = feed;

    const first = await send(alice, "k1", "hello");
    const second = await send(alice, "k2", "again");
    const retried = await send(alice, "k1", "hello");
    const third = await send(alice, "k3", "third");
    expect([first, second, retried, third].map((r) => r.data?.sendMessage.seq)).toEqual([1, 2, 1, 3]);
    expect(retried.data?.sendMessage.id).toBe(first.data?.sendMessage.id);
    expect(first.data?.sendMessage.sender.displayName).toBe("Person 1");

    // The retry published nothing: bob's feed holds seq 1, 2, 3 in order, each from Alice by name.
    await waitFor("three events at bob", () => received.length >= 3);
    expect(received.map((e) => [e.kind, e.seq, e.message.text])).toEqual([
      ["MESSAGE_ADDED", 1, "hello"],
      ["MESSAGE_ADDED", 2, "again"],
      ["MESSAGE_ADDED", 3, "third"],
    ]);
    expect(received.map((e) => e.message.sender)).toEqual(
      Array.from({ length: 3 }, () => ({ id: alice, displayName: "Person 1" })),
    );
  });

  it("should refuse a sender who is not a member, and a request without a valid token", async () => {
    const refused = await send(eve, "k1", "let me in");
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors).toEqual([
      expect.objectContaining({ message: "Not a member of this conversation" }),
    ]);
    const response = await fetch(`http://127.0.0.1:${server!.port}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer nope" },
      body: JSON.stringify({ query: operation("ChatSendMessage.graphql"), variables: {} }),
    });
    expect(response.status).toBe(401);
  });
});

describe("the reference chat server with our contract's checks (bench/reference-checks.ts)", () => {
  const { databaseUrl, prefix, key, issuer } = scratch("refchecks");
  const [alice, bob, carol] = [randomUUID(), randomUUID(), randomUUID()];
  const redis = new Redis(REDIS_URL);
  /** Chat's burst budget in this server: three sends per 10 s and sender. */
  const BURST = 3;
  let server: ReferenceServer | undefined;
  let conversationId = "";
  let carolsConversation = "";

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    await migrateDeploy("chat", databaseUrl);
    await seedReference(databaseUrl, [alice, bob, carol], []);
    const db = {
      $executeRawUnsafe: async (query: string, ...values: unknown[]) => {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        try {
          await client.query(query, values);
        } finally {
          await client.end();
        }
      },
    };
    conversationId = await seedGroup(db, [alice, bob]);
    carolsConversation = await seedGroup(db, [carol, bob]);
    server = await startReferenceServer({
      port: 0,
      databaseUrl,
      redisUrl: REDIS_URL,
      channelPrefix: prefix,
      signingKeys: JSON.stringify([key]),
      checks: {
        eventsPrefix: prefix,
        budgets: {
          address: 1000,
          user: 1000,
          sendMessage: 1000,
          subscribe: 1000,
          sendBurst: BURST,
          sendSustained: 1000,
        },
        pushBatchMs: 0,
        start: startReferenceChecks,
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await redis.quit();
    await dropDatabase(databaseUrl);
  });

  const session = async (userId: string) => {
    const sessionId = randomUUID();
    return { sessionId, token: (await issuer.issue({ userId, sessionId, role: "USER" })).token };
  };
  const send = async (token: string, conversation: string, clientMessageId: string, text: string) => {
    const response = await fetch(`http://127.0.0.1:${server!.port}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: operation("ChatSendMessage.graphql"),
        variables: { input: { conversationId: conversation, clientMessageId, text } },
      }),
    });
    const body = (await response.json()) as {
      data?: { sendMessage: { id: string; seq: number } } | null;
      errors?: Array<{ message: string; extensions?: { code?: string; limit?: string } }>;
    };
    return { status: response.status, ...body };
  };

  it("should store the message with its outbox row, hand a push job over, and deliver it", async () => {
    const { client, received } = await subscribeFeed(
      server!.port,
      (await session(bob)).token,
      redis,
      `${prefix}:user:${bob}`,
    );
    try {
      const { token } = await session(alice);
      const first = await send(token, conversationId, "k1", "hello");
      const retried = await send(token, conversationId, "k1", "hello");
      expect([first.data?.sendMessage.seq, retried.data?.sendMessage.seq]).toEqual([1, 1]);
      expect(retried.data?.sendMessage.id).toBe(first.data?.sendMessage.id);
      await waitFor("the event at bob", () => received.length >= 1);
      expect(received.map((e) => [e.kind, e.seq, e.message.text])).toEqual([["MESSAGE_ADDED", 1, "hello"]]);

      const client2 = new pg.Client({ connectionString: databaseUrl });
      await client2.connect();
      const { rows } = await client2
        .query<{ payload: { messageId: string; recipients: Array<{ userId: string }> } }>(
          `SELECT payload FROM outbox_events WHERE type = 'message.created'`,
        )
        .finally(() => client2.end());
      expect(rows.map((row) => [row.payload.messageId, row.payload.recipients.map((r) => r.userId)])).toEqual(
        [[first.data?.sendMessage.id, [bob]]],
      );
      const [consumer] = subscribersOf("message.created");
      const queue = new Queue(eventQueueName(consumer!), { connection: { url: REDIS_URL }, prefix });
      try {
        await waitFor(
          "the push job",
          async () => (await queue.getJobs(["waiting", "prioritized"])).length > 0,
        );
        const jobs = await queue.getJobs(["waiting", "prioritized"]);
        expect(JSON.stringify(jobs.map((job) => job.data))).toContain(first.data!.sendMessage.id);
      } finally {
        await queue.close();
      }
    } finally {
      await client.dispose();
    }
  });

  it("should refuse a revoked token at admission, before any check of the send", async () => {
    const { sessionId, token } = await session(alice);
    expect((await send(token, conversationId, "r1", "before")).data?.sendMessage.seq).toBeGreaterThan(0);
    await new SessionRevocations(redis).revokeSession(sessionId);
    const refused = await send(token, conversationId, "r2", "after");
    expect(refused.status).toBe(401);
    expect(refused.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("should refuse a send over Chat's burst budget", async () => {
    const { token } = await session(carol);
    const answers = [];
    for (let n = 0; n <= BURST; n += 1)
      answers.push(await send(token, carolsConversation, `b${n}`, `burst ${n}`));
    expect(answers.slice(0, BURST).map((a) => a.data?.sendMessage.seq)).toEqual([1, 2, 3]);
    expect(answers[BURST]!.data ?? null).toBeNull();
    expect(answers[BURST]!.errors?.[0]?.extensions).toEqual(
      expect.objectContaining({ code: "RATE_LIMITED" }),
    );
  });

  it("should refuse a sender who is not a member", async () => {
    const { token } = await session(carol);
    const refused = await send(token, conversationId, "x1", "let me in");
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });
});

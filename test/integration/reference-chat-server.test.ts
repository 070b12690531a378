import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createClient, type Client } from "graphql-ws";
import Redis from "ioredis";
import WebSocket from "ws";
import { createAccessTokenIssuer, generateSigningKeyJwk } from "@hv/kit";
import { databaseUrlEnvVar, defaultDatabaseUrl, dropDatabase, ensureDatabase } from "@hv/prisma";
import { startReferenceServer, type ReferenceServer } from "../../bench/reference-chat-server";
import { seedReference } from "../../bench/support/reference-target";
import { waitFor } from "../support/wait";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const operation = (name: string) => readFileSync(path.join(__dirname, "../../operations/chat", name), "utf8");

interface FeedEvent {
  kind: string;
  seq: number;
  message: { id: string; text: string; sender: { id: string; displayName: string } };
}

describe("the reference chat server (bench/reference-chat-server.ts)", () => {
  const base = new URL(process.env[databaseUrlEnvVar("chat")] ?? defaultDatabaseUrl("chat"));
  base.pathname = `${base.pathname}_reference_${randomBytes(3).toString("hex")}`;
  const databaseUrl = base.toString();
  const prefix = `hvtest-ref-${randomBytes(4).toString("hex")}`;
  const key = generateSigningKeyJwk("reference-test");
  const issuer = createAccessTokenIssuer({
    keys: [key],
    issuer: "haiyvee",
    audience: "haiyvee-api",
    ttlSeconds: 900,
  });
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
    const received: FeedEvent[] = [];
    client = createClient({
      url: `ws://127.0.0.1:${server!.port}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${await token(bob)}` },
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
    await waitFor("bob subscribed", async () => {
      const counts = (await redis.pubsub("NUMSUB", `${prefix}:user:${bob}`)) as unknown[];
      return counts[1] === 1;
    });

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

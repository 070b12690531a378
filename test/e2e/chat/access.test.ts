import { randomUUID } from "node:crypto";
import { createAccessTokenIssuer } from "@hv/kit";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import {
  AUDIENCE,
  codeOf,
  createGroup,
  eventually,
  gql,
  ISSUER,
  send,
  startChatHarness,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
} from "./harness";

describe("who may subscribe to chat events", () => {
  let harness: ChatHarness;
  beforeAll(async () => {
    harness = await startChatHarness();
  });
  afterAll(async () => harness?.stop());

  /** The first result (or error) of one subscription on a fresh non-retrying client. */
  async function firstOutcome(
    query: string,
    variables: Record<string, unknown>,
    connectionParams?: Record<string, unknown>,
    extensions?: Record<string, unknown>,
  ) {
    const client = createClient({
      url: wsUrl(harness.instances[0]!),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      ...(connectionParams ? { connectionParams } : {}),
    });
    try {
      return await new Promise<{ errors?: Array<{ extensions?: Record<string, unknown> }>; data?: unknown }>(
        (resolve) => {
          client.subscribe(
            { query, variables, ...(extensions ? { extensions } : {}) },
            {
              next: (value) => resolve(value as never),
              error: (error) =>
                resolve({
                  errors: Array.isArray(error)
                    ? error
                    : [{ extensions: { closed: String((error as { code?: number }).code) } }],
                }),
              complete: () => undefined,
            },
          );
        },
      );
    } finally {
      await client.dispose();
    }
  }

  const CONVERSATION_EVENTS = "subscription($c: ID!) { conversationEvents(conversationId: $c) { kind seq } }";

  it("should refuse a non-member with NOT_FOUND, the same as for a conversation that does not exist", async () => {
    const [a, b, stranger] = [await harness.person(), await harness.person(), await harness.person()];
    const conversationId = await createGroup(harness.instances[0]!.url, a, [b]);
    const auth = { authorization: `Bearer ${stranger.token}` };
    const existing = await firstOutcome(CONVERSATION_EVENTS, { c: conversationId }, auth);
    const missing = await firstOutcome(CONVERSATION_EVENTS, { c: randomUUID() }, auth);
    expect(existing.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(missing.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(existing.errors?.[0]).toEqual(missing.errors?.[0]);
    const malformed = await firstOutcome(CONVERSATION_EVENTS, { c: "1 OR 1=1" }, auth);
    expect(malformed.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    // And the stranger's own stream never sees the conversation's messages.
    const strangerStream = subscriber(() => wsUrl(harness.instances[0]!), stranger);
    const memberStream = subscriber(() => wsUrl(harness.instances[0]!), b);
    await untilLive(harness.instances[0]!.url, b, memberStream, conversationId);
    await eventually(() => strangerStream.connections() > 0, "stranger connected");
    const sent = await send(harness.instances[0]!.url, a, conversationId, "members only");
    await eventually(
      () => memberStream.events.some((event) => event.message?.id === sent.body.data.sendMessage.id),
      "member got it",
    );
    expect(strangerStream.events.filter((event) => event.conversationId === conversationId)).toEqual([]);
    await Promise.all([strangerStream.dispose(), memberStream.dispose()]);
  });

  it("should refuse a subscription without a viewer with UNAUTHENTICATED", async () => {
    const outcome = await firstOutcome("subscription { myChatEvents { kind } }", {});
    expect(outcome.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("should close the socket with 4403 when the connection's token expires mid-stream", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const conversationId = await createGroup(harness.instances[0]!.url, a, [b]);
    const { token } = await harness.shortToken({ userId: b.userId, sessionId: b.sessionId });
    const stream = subscriber(() => wsUrl(harness.instances[0]!), { ...b, token }, undefined, {
      retry: false,
    });
    void conversationId;
    await eventually(() => stream.connections() > 0, "connected");
    await eventually(() => stream.closes.length > 0, "socket closed", 800);
    expect(stream.closes[0]).toBe(4403);
    await stream.dispose();
  });

  it("should end just the operation with UNAUTHENTICATED when its own token expires (the gateway's multiplexed case)", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const conversationId = await createGroup(harness.instances[0]!.url, a, [b]);
    const { token } = await harness.shortToken({ userId: b.userId, sessionId: b.sessionId });
    const longLived = subscriber(() => wsUrl(harness.instances[0]!), a);
    const client = createClient({
      url: wsUrl(harness.instances[0]!),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    const results: Array<{
      errors?: Array<{ extensions?: Record<string, unknown> }>;
      data?: { myChatEvents?: { kind: string } };
    }> = [];
    let completed = false;
    client.subscribe(
      {
        query: "subscription { myChatEvents { kind seq } }",
        extensions: { authorization: `Bearer ${token}` },
      },
      {
        next: (value) => void results.push(value as never),
        error: () => undefined,
        complete: () => (completed = true),
      },
    );
    const anonymousOnSameSocket = await new Promise<unknown>((resolve) => {
      client.subscribe(
        { query: "subscription { myChatEvents { kind } }" },
        { next: resolve, error: resolve, complete: () => undefined },
      );
    });
    expect(
      (anonymousOnSameSocket as { errors?: Array<{ extensions?: { code?: string } }> }).errors?.[0]
        ?.extensions?.code,
    ).toBe("UNAUTHENTICATED");
    await eventually(() => completed, "operation ended", 800);
    expect(results.at(-1)?.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "expired",
    });
    // The other user's subscription on the instance goes on.
    await untilLive(harness.instances[0]!.url, a, longLived, conversationId);
    await Promise.all([client.dispose(), longLived.dispose()]);
  });

  it("should refuse a forged connection token with 4403 and a forged operation token with UNAUTHENTICATED", async () => {
    const forger = createAccessTokenIssuer({
      keys: [(await import("@hv/kit")).generateSigningKeyJwk("forger")],
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: 900,
    });
    const { token } = await forger.issue({ userId: randomUUID(), sessionId: randomUUID(), role: "USER" });
    const connection = await firstOutcome(
      "subscription { myChatEvents { kind } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(connection.errors?.[0]?.extensions?.closed).toBe("4403");
    const operation = await firstOutcome("subscription { myChatEvents { kind } }", {}, undefined, {
      authorization: `Bearer ${token}`,
    });
    expect(operation.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("should refuse HTTP operations without a token, and with someone else's conversation", async () => {
    const [a, b, stranger] = [await harness.person(), await harness.person(), await harness.person()];
    const url = harness.instances[0]!.url;
    const conversationId = await createGroup(url, a, [b]);
    expect(codeOf(await send(url, { ...a, token: "" }, conversationId, "hi"))).toBe("UNAUTHENTICATED");
    expect(codeOf(await send(url, stranger, conversationId, "hi"))).toBe("NOT_FOUND");
    const peek = await gql(
      url,
      "query($id: ID!) { conversation(id: $id) { id } }",
      { id: conversationId },
      stranger,
    );
    expect(peek.body.data).toEqual({ conversation: null });
  });
});

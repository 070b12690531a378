import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import {
  eventually,
  phone,
  startHarness,
  Subscription,
  type Harness,
  type Phone,
  type TestChatEvent,
} from "./harness";
import type { SignedIn } from "../../support/users-client";

const MY_EVENTS = `subscription Mine { myChatEvents { kind conversationId seq message { id seq text sender { id displayName } } } }`;
const CONVERSATION_EVENTS = `subscription Conv($id: ID!) { conversationEvents(conversationId: $id) { kind seq message { text sender { displayName } } } }`;

interface EventData {
  myChatEvents: {
    kind: string;
    conversationId: string;
    seq: number;
    message: { id: string; seq: number; text: string; sender: { id: string; displayName: string } } | null;
  };
}

function messageEvent(
  conversationId: string,
  seq: number,
  senderId: string,
  text = `hello ${seq}`,
): TestChatEvent {
  return {
    kind: "MESSAGE_ADDED",
    conversationId,
    seq,
    message: {
      id: randomUUID(),
      seq,
      text,
      clientMessageId: randomUUID(),
      createdAt: new Date().toISOString(),
      sender: { id: senderId },
    },
  };
}

const entityFetches = (h: Harness) => h.usersRequests.filter((body) => body.includes("_entities")).length;

describe("subscriptions through the gateway (test chat subgraph, real Users)", () => {
  let h: Harness;
  const phones: Phone[] = [];
  const connect = (token?: string, params?: Record<string, unknown>) => {
    const p = phone(h.wsUrl, params ?? (token ? { authorization: `Bearer ${token}` } : undefined));
    phones.push(p);
    return p;
  };

  beforeAll(async () => {
    // Tokens re-verified often, so a revoked session is noticed within the test.
    // Warming off: these tests count the per-event fetches (warming: user-cache-warm.test.ts).
    h = await startHarness({ subscriptions: { revalidateMs: 250, warmSubscribers: false } });
  });
  afterEach(async () => {
    h.usersGate.current = undefined;
    await Promise.all(phones.splice(0).map((p) => p.dispose()));
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function person(displayName: string): Promise<SignedIn> {
    return h.client.signUp({ displayName });
  }

  it("should deliver an event with the sender's displayName resolved by Users", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const sub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    const event = messageEvent("c1", 7, bob.userId, "hi Ada");
    h.chat.publish([ada.userId], event);
    const result = await sub.nextResult();
    expect(result.errors).toBeUndefined();
    expect(result.data?.myChatEvents).toEqual({
      kind: "MESSAGE_ADDED",
      conversationId: "c1",
      seq: 7,
      message: {
        id: event.message?.id,
        seq: 7,
        text: "hi Ada",
        sender: { id: bob.userId, displayName: "Bob" },
      },
    });
    // The upstream operation was authenticated as Ada, from payload.extensions.authorization.
    expect(h.chat.subscribes.at(-1)?.userId).toBe(ada.userId);
    sub.dispose();
    await eventually(
      () => h.chat.activeSubscriptions() === 0,
      "the upstream subscription to end when the client leaves",
    );
  });

  it("should deliver events in upstream order even when their fetches answer in the reverse order", async () => {
    const ada = await person("Ada");
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => person(`Sender ${i}`)));
    // Event i's sender profile is fetched on its own (a different sender each time); every fetch
    // is held until all have arrived, then Users answers them last to first: later events are
    // resolved before earlier ones.
    const arrived: number[] = [];
    const answered: string[] = [];
    const held = new Map<number, () => void>();
    h.usersGate.current = async (body) => {
      const index = senders.findIndex((s) => body.includes(s.userId));
      if (index < 0) return;
      arrived.push(index);
      await new Promise<void>((resolve) => held.set(index, resolve));
      answered.push(senders[index]!.userId);
    };
    const sub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    // One at a time: the user cache sends the misses of one turn of the loop in one fetch.
    for (const [i, sender] of senders.entries()) {
      h.chat.publish([ada.userId], messageEvent("c-order", i + 1, sender.userId));
      await eventually(() => arrived.includes(i), `event ${i + 1}'s fetch to reach Users`);
    }
    for (let i = senders.length - 1; i >= 0; i -= 1) {
      held.get(i)?.();
      // Paced so each answer leaves before the next is released (the order, not a time, is tested).
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await sub.until(() => sub.results.length === senders.length, "every event");
    // The premise: the fetches did complete out of order...
    expect(answered[0]).toBe(senders.at(-1)?.userId);
    // ...and yet every event arrives in seq order with its own sender.
    expect(
      sub.results.map((r) => [r.data?.myChatEvents.seq, r.data?.myChatEvents.message?.sender.displayName]),
    ).toEqual(senders.map((_, i) => [i + 1, `Sender ${i}`]));
    sub.dispose();
  });

  it("should fetch a group message's sender once for all members' streams, over few upstream connections", async () => {
    const sender = await person("Grace");
    const members = await Promise.all(Array.from({ length: 12 }, (_, i) => person(`Member ${i}`)));
    const subs = members.map((m) => new Subscription<EventData>(connect(m.accessToken).client, MY_EVENTS));
    await eventually(() => h.chat.activeSubscriptions() === members.length, "12 upstream subscriptions");
    // Multiplexed: 12 users' operations share one upstream socket (GATEWAY_UPSTREAM_CONNECTIONS).
    expect(h.chat.openConnections()).toBe(1);
    const before = entityFetches(h);
    const runsBefore = h.gateway.subscriptionStats().eventRuns;
    h.chat.publish(
      members.map((m) => m.userId),
      messageEvent("group-1", 1, sender.userId, "hello group"),
    );
    for (const sub of subs) {
      const result = await sub.nextResult();
      expect(result.data?.myChatEvents.message?.sender.displayName).toBe("Grace");
    }
    expect(entityFetches(h) - before).toBe(1);
    // The plan fetches public fields only and no member is named in the event: resolved once for all 12.
    expect(h.gateway.subscriptionStats().eventRuns - runsBefore).toBe(1);
    // The one shared fetch went as nobody: only public fields were asked for, so no member's
    // token (nor address) went with it.
    const shared = h.usersReceived.filter((r) => r.body.includes("_entities")).at(-1);
    expect(shared?.body).toContain(sender.userId);
    expect(shared?.headers.authorization).toBeUndefined();
    expect(shared?.headers["x-forwarded-for"]).toBeUndefined();
    subs.forEach((s) => s.dispose());
  });

  it("should resolve a group event once for every member, the sender's own echo included, when everyone sees the sender", async () => {
    const sender = await person("Heidi");
    const members = await Promise.all(Array.from({ length: 4 }, (_, i) => person(`Peer ${i}`)));
    const everyone = [sender, ...members];
    const subs = everyone.map((m) => new Subscription<EventData>(connect(m.accessToken).client, MY_EVENTS));
    await eventually(() => h.chat.activeSubscriptions() === everyone.length, "5 upstream subscriptions");
    const runsBefore = h.gateway.subscriptionStats().eventRuns;
    h.chat.publish(
      everyone.map((m) => m.userId),
      messageEvent("group-echo", 1, sender.userId, "hello peers"),
    );
    for (const sub of subs)
      expect((await sub.nextResult()).data?.myChatEvents.message?.sender.displayName).toBe("Heidi");
    // One run for all five: the sender is named in the event (their own entity), but the public
    // fetch showed them, so they see what everyone sees (a hidden sender: the next tests).
    expect(h.gateway.subscriptionStats().eventRuns - runsBefore).toBe(1);
    subs.forEach((s) => s.dispose());
  });

  it("should run identical subscriptions of one session once upstream", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const subscribesBefore = h.chat.subscribes.length;
    const subs = [0, 1, 2].map(() => new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS));
    await eventually(
      () => h.gateway.subscriptionStats().clientSubscriptions >= 3,
      "three client subscriptions",
    );
    await eventually(() => h.chat.activeSubscriptions() === 1, "one upstream subscription");
    expect(h.chat.subscribes.length - subscribesBefore).toBe(1);
    h.chat.publish([ada.userId], messageEvent("c2", 1, bob.userId));
    for (const sub of subs)
      expect((await sub.nextResult()).data?.myChatEvents.message?.sender.displayName).toBe("Bob");
    subs[0]?.dispose();
    subs[1]?.dispose();
    // One subscriber left: the upstream stays.
    h.chat.publish([ada.userId], messageEvent("c2", 2, bob.userId));
    expect((await subs[2]!.nextResult(2)).data?.myChatEvents.seq).toBe(2);
    expect(h.chat.activeSubscriptions()).toBe(1);
    subs[2]?.dispose();
    await eventually(
      () => h.chat.activeSubscriptions() === 0,
      "the upstream subscription to end with its last subscriber",
    );
  });

  it("should not share a viewer-dependent field across viewers, neither of them the owner", async () => {
    const [ada, carol, bob] = [await person("Ada"), await person("Carol"), await person("Bob")];
    // `seenBy` is the viewer's own id: it differs between Ada and Carol, and Bob (the sender) is neither.
    const query = `subscription { myChatEvents { seq message { sender { displayName seenBy } } } }`;
    type Seen = { myChatEvents: { message: { sender: { displayName: string; seenBy: string | null } } } };
    const adaSub = new Subscription<Seen>(connect(ada.accessToken).client, query);
    const carolSub = new Subscription<Seen>(connect(carol.accessToken).client, query);
    await eventually(() => h.chat.activeSubscriptions() === 2, "two upstream subscriptions");
    h.chat.publish([ada.userId, carol.userId], messageEvent("c3", 1, bob.userId));
    expect((await adaSub.nextResult()).data?.myChatEvents.message.sender).toEqual({
      displayName: "Bob",
      seenBy: ada.userId,
    });
    expect((await carolSub.nextResult()).data?.myChatEvents.message.sender).toEqual({
      displayName: "Bob",
      seenBy: carol.userId,
    });
    adaSub.dispose();
    carolSub.dispose();
  });

  it("should not keep a fetch answer with errors for the next event", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    let failures = 0;
    // Users' first answer for Bob's profile is an error; the next ones are real.
    h.usersGate.current = async (body) => {
      if (!body.includes(bob.userId) || failures > 0) return;
      failures += 1;
      return {
        data: { _entities: [null] },
        errors: [
          { message: "a hiccup", path: ["_entities", 0], extensions: { code: "INTERNAL_SERVER_ERROR" } },
        ],
      };
    };
    const sub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    const beforeFirst = entityFetches(h);
    h.chat.publish([ada.userId], messageEvent("c-err", 1, bob.userId));
    const first = await sub.nextResult();
    expect(failures).toBe(1);
    expect(first.errors?.length).toBeGreaterThan(0);
    // The failed answer reached the executor from the direct attempt: not asked a second time.
    expect(entityFetches(h) - beforeFirst).toBe(1);
    const before = entityFetches(h);
    // Well within the 1 s an answer is shared for: an answer without errors would be reused.
    h.chat.publish([ada.userId], messageEvent("c-err", 2, bob.userId));
    const second = await sub.nextResult();
    expect(second.errors).toBeUndefined();
    expect(second.data?.myChatEvents.message?.sender.displayName).toBe("Bob");
    expect(entityFetches(h) - before).toBe(1);
    sub.dispose();
  });

  it("should end a feed whose events pile up behind a subgraph that does not answer, and leave its upstream", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    h.usersGate.current = () => held;
    const sub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    try {
      // 100 events waiting on Users are the most one feed holds; the 101st ends it.
      for (let seq = 1; seq <= 101; seq += 1)
        h.chat.publish([ada.userId], messageEvent("c-slow", seq, bob.userId));
      const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
      expect(error[0]?.extensions?.code).toBe("SUBSCRIPTION_INTERRUPTED");
      expect(sub.results).toEqual([]);
      await eventually(() => h.chat.activeSubscriptions() === 0, "the upstream subscription to end");
    } finally {
      release();
    }
  });

  it("should end the client's subscription with SUBSCRIPTION_INTERRUPTED when the subgraph completes a stream", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const sub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    h.chat.publish([ada.userId], messageEvent("c-end", 1, bob.userId));
    await sub.nextResult();
    h.chat.completeAll();
    const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(sub.completed).toBe(false);
    expect(error[0]?.extensions?.code).toBe("SUBSCRIPTION_INTERRUPTED");
    expect(sub.results).toHaveLength(1);
  });

  it("should end the upstream operation when a client's socket drops without `complete`", async () => {
    const ada = await person("Ada");
    const socket = new WebSocket(h.wsUrl, "graphql-transport-ws");
    await new Promise((resolve) => socket.once("open", resolve));
    const acked = new Promise<void>((resolve) =>
      socket.on(
        "message",
        (raw: Buffer) =>
          (JSON.parse(raw.toString()) as { type: string }).type === "connection_ack" && resolve(),
      ),
    );
    socket.send(
      JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${ada.accessToken}` } }),
    );
    await acked;
    socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: MY_EVENTS } }));
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    socket.terminate();
    await eventually(() => h.chat.activeSubscriptions() === 0, "the upstream subscription to end");
    await eventually(
      () => h.gateway.subscriptionStats().clientSubscriptions === 0,
      "the client subscription to be gone",
    );
  });

  it("should shape an event resolved without the executor as the client asked: aliases, __typename, nulls, several fetches", async () => {
    const [ada, bob, carol] = [await person("Ada"), await person("Bob"), await person("Carol")];
    const shaped = `subscription Shaped { e: myChatEvents { __typename seq message { __typename who: sender { __typename name: displayName id } replyTo { seq sender { displayName } } } } }`;
    const sub = new Subscription<Record<string, unknown>>(connect(ada.accessToken).client, shaped);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    const directBefore = h.gateway.subscriptionStats().eventRunsDirect;
    const first = messageEvent("c-shaped", 1, bob.userId);
    h.chat.publish([ada.userId], first);
    const reply = messageEvent("c-shaped", 2, carol.userId);
    reply.message!.replyTo = { ...first.message!, replyTo: undefined } as never;
    h.chat.publish([ada.userId], reply);
    const results = [await sub.nextResult(), await sub.nextResult()];
    expect(results.map((r) => r.errors)).toEqual([undefined, undefined]);
    expect(JSON.stringify(results.map((r) => r.data))).toBe(
      JSON.stringify([
        {
          e: {
            __typename: "ChatEvent",
            seq: 1,
            message: {
              __typename: "Message",
              who: { __typename: "User", name: "Bob", id: bob.userId },
              replyTo: null,
            },
          },
        },
        {
          e: {
            __typename: "ChatEvent",
            seq: 2,
            message: {
              __typename: "Message",
              who: { __typename: "User", name: "Carol", id: carol.userId },
              replyTo: { seq: 1, sender: { displayName: "Bob" } },
            },
          },
        },
      ]),
    );
    // Both runs took the direct path (the second with two fetches: the sender and the reply's sender).
    expect(h.gateway.subscriptionStats().eventRunsDirect - directBefore).toBe(2);
    sub.dispose();
  });

  it("should show a hidden sender to themselves only", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const hide = await h.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      bob.accessToken,
    );
    expect(hide.body.errors).toBeUndefined();
    const adaSub = new Subscription<EventData>(connect(ada.accessToken).client, MY_EVENTS);
    const bobSub = new Subscription<EventData>(connect(bob.accessToken).client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 2, "two upstream subscriptions");
    const runsBefore = h.gateway.subscriptionStats().eventRuns;
    h.chat.publish([ada.userId, bob.userId], messageEvent("c4", 1, bob.userId));
    // Bob's own echo is fetched with his token (a hidden profile is visible to its owner)...
    expect((await bobSub.nextResult()).data?.myChatEvents.message?.sender.displayName).toBe("Bob");
    // ...and nobody else gets what only Bob may see.
    const adaResult = await adaSub.nextResult();
    expect(adaResult.data?.myChatEvents.seq).toBe(1);
    expect(adaResult.data?.myChatEvents.message).toBeNull();
    // Not a silent null: the spec's field error names where the promised value was missing.
    expect(adaResult.errors).toEqual([
      expect.objectContaining({
        message: "Cannot return null for non-nullable field User.displayName.",
        path: ["myChatEvents", "message", "sender", "displayName"],
      }),
    ]);
    // The shared run (as nobody) could not show Bob: his echo ran on its own.
    expect(h.gateway.subscriptionStats().eventRuns - runsBefore).toBe(2);
    adaSub.dispose();
    bobSub.dispose();
  });

  it("should end a non-member's subscription with the subgraph's FORBIDDEN", async () => {
    const ada = await person("Ada");
    const sub = new Subscription(connect(ada.accessToken).client, CONVERSATION_EVENTS, {
      id: "not-a-member",
    });
    const error = await sub.ending();
    expect(Array.isArray(error)).toBe(true);
    expect((error as Array<{ extensions?: Record<string, unknown> }>)[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("should end an anonymous subscription with UNAUTHENTICATED from the subgraph", async () => {
    const sub = new Subscription(connect().client, MY_EVENTS);
    const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(error[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("should deliver per-conversation streams to every subscriber of the conversation", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = randomUUID();
    const adaSub = new Subscription<{
      conversationEvents: {
        kind: string;
        seq: number;
        message: { text: string; sender: { displayName: string } };
      };
    }>(connect(ada.accessToken).client, CONVERSATION_EVENTS, { id: conversationId });
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    h.chat.publish([], messageEvent(conversationId, 3, bob.userId, "in the room"));
    expect((await adaSub.nextResult()).data?.conversationEvents).toEqual({
      kind: "MESSAGE_ADDED",
      seq: 3,
      message: { text: "in the room", sender: { displayName: "Bob" } },
    });
    adaSub.dispose();
  });

  describe("connection authentication", () => {
    it("should refuse a malformed token with 4403 and reason invalid", async () => {
      const p = connect(undefined, { authorization: "Bearer not.a.token" });
      expect(await p.closed).toEqual({ code: 4403, reason: "Forbidden: invalid" });
    });

    it("should refuse a non-string authorization with 4403", async () => {
      const p = connect(undefined, { authorization: { token: "x" } });
      expect((await p.closed).code).toBe(4403);
    });

    it("should refuse an expired token with 4403 and reason expired", async () => {
      const ada = await person("Ada");
      // Issued a minute ago for ten seconds: past the verifier's clock tolerance.
      const expired = await h
        .shortLivedTokens(10, () => new Date(Date.now() - 60_000))
        .issue({ userId: ada.userId, sessionId: randomUUID(), role: "USER" });
      const p = connect(undefined, { authorization: `Bearer ${expired.token}` });
      expect(await p.closed).toEqual({ code: 4403, reason: "Forbidden: expired" });
    });

    it("should close with 4403 and reason revoked when the session is revoked mid-stream", async () => {
      const ada = await person("Ada");
      const p = connect(ada.accessToken);
      const sub = new Subscription<EventData>(p.client, MY_EVENTS);
      await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
      const logOut = await h.client.request(`mutation { logOut }`, {}, ada.accessToken);
      expect(logOut.body.errors).toBeUndefined();
      expect(await p.closed).toEqual({ code: 4403, reason: "Forbidden: revoked" });
      expect(await sub.ending()).toMatchObject({ code: 4403 });
      await eventually(
        () => h.chat.activeSubscriptions() === 0,
        "the upstream subscription to end with the connection",
      );
    });

    it("should close with 4403 when the token expires mid-stream", async () => {
      const ada = await person("Ada");
      const login = await h.client.logIn(ada.email, ada.password);
      const sessionToken = login.body.data?.logIn.accessToken;
      expect(sessionToken).toBeDefined();
      // A token of the same session that lives 2 seconds.
      const payload = JSON.parse(Buffer.from(sessionToken!.split(".")[1]!, "base64url").toString()) as {
        sid: string;
      };
      const shortLived = await h
        .shortLivedTokens(2)
        .issue({ userId: ada.userId, sessionId: payload.sid, role: "USER" });
      const p = connect(shortLived.token);
      const sub = new Subscription<EventData>(p.client, MY_EVENTS);
      await eventually(
        () => h.chat.subscribes.some((s) => s.userId === ada.userId),
        "the upstream subscription",
      );
      const closed = await p.closed;
      expect(closed).toEqual({ code: 4403, reason: "Forbidden: expired" });
      expect(await sub.ending()).toMatchObject({ code: 4403 });
    });
  });

  describe("hostile input", () => {
    let client: Phone["client"];
    beforeEach(async () => {
      client = connect((await person("Eve")).accessToken).client;
    });
    const codeOf = async (query: string, variables: Record<string, unknown> = {}, operationName?: string) => {
      const sub = new Subscription(client, query, variables, operationName);
      const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
      return error?.[0]?.extensions?.code;
    };

    it("should refuse a subscription to a field that does not exist", async () => {
      expect(await codeOf(`subscription { nobodyHome { id } }`)).toBe("GRAPHQL_VALIDATION_FAILED");
    });
    it("should refuse a document that does not parse", async () => {
      expect(await codeOf(`subscription { myChatEvents { `)).toBe("GRAPHQL_PARSE_FAILED");
    });
    it("should refuse an unknown operation name", async () => {
      expect(await codeOf(MY_EVENTS, {}, "Nope")).toBe("OPERATION_RESOLUTION_FAILURE");
    });
    it("should refuse invalid and missing variables", async () => {
      expect(await codeOf(CONVERSATION_EVENTS, { id: { nested: true } })).toBe("BAD_USER_INPUT");
      expect(await codeOf(CONVERSATION_EVENTS, {})).toBe("BAD_USER_INPUT");
    });
    it("should answer a query over WebSocket with one next then complete", async () => {
      const sub = new Subscription(client, `query { chatTestPing }`);
      await sub.ending();
      // The test chat subgraph serves no HTTP queries: the answer is HTTP's (UPSTREAM_UNAVAILABLE in data).
      expect({ results: sub.results.length, completed: sub.completed, error: sub.error }).toEqual({
        results: 1,
        completed: true,
        error: undefined,
      });
      expect(sub.results[0]?.data).toEqual({ chatTestPing: null });
    });
    it("should refuse a query longer than the limit", async () => {
      expect(await codeOf(`subscription { myChatEvents { seq ${" ".repeat(20_000)} } }`)).toBe(
        "BAD_USER_INPUT",
      );
    });
    it("should refuse a document with too many tokens", async () => {
      expect(await codeOf(`subscription { myChatEvents { ${"seq ".repeat(3_000)} } }`)).toBe(
        "GRAPHQL_PARSE_FAILED",
      );
    });
    it("should refuse a document nested too deep", async () => {
      const deep = `subscription { myChatEvents { message { ${"replyTo { ".repeat(12)}seq${" }".repeat(12)} } } }`;
      expect(await codeOf(deep)).toBe("GRAPHQL_VALIDATION_FAILED");
      // The same through fragments.
      const viaFragments = `subscription { myChatEvents { message { ...R0 } } } ${Array.from({ length: 12 }, (_, i) => `fragment R${i} on Message { seq replyTo { ${i < 11 ? `...R${i + 1}` : "seq"} } }`).join(" ")}`;
      expect(await codeOf(viaFragments)).toBe("GRAPHQL_VALIDATION_FAILED");
    });
    it("should accept a document within the depth limit", async () => {
      const sub = new Subscription(
        client,
        `subscription { myChatEvents { message { ${"replyTo { ".repeat(5)}seq${" }".repeat(5)} } } }`,
      );
      await eventually(() => h.chat.activeSubscriptions() >= 1 || sub.ended, "the subscription to start");
      expect(sub.error).toBeUndefined();
      sub.dispose();
    });
    it("should close the socket on a message bigger than the payload limit", async () => {
      const p = connect((await person("Mallory")).accessToken);
      const sub = new Subscription(p.client, `subscription { myChatEvents { seq } } # ${"x".repeat(70_000)}`);
      expect((await p.closed).code).toBe(1009);
      sub.dispose();
    });
    it("should refuse more subscriptions than allowed on one connection", async () => {
      const subs = Array.from({ length: 51 }, () => new Subscription(client, MY_EVENTS));
      await subs[50]!.ending();
      expect((subs[50]!.error as Array<{ extensions?: Record<string, unknown> }>)[0]?.extensions?.code).toBe(
        "RATE_LIMITED",
      );
      subs.forEach((s) => s.dispose());
    });
    it("should refuse a client that skips connection_init", async () => {
      const socket = new WebSocket(h.wsUrl, "graphql-transport-ws");
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: MY_EVENTS } }));
      const code = await new Promise<number>((resolve) => socket.once("close", (c) => resolve(c)));
      expect(code).toBe(4401);
    });
  });
});

describe("when the upstream subgraph goes away", () => {
  let h: Harness;
  const phones: Phone[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await Promise.all(phones.map((p) => p.dispose()));
    await h?.stop();
  });

  it("should end every client subscription with SUBSCRIPTION_INTERRUPTED, and work again once it is back", async () => {
    const [ada, bob] = [
      await h.client.signUp({ displayName: "Ada" }),
      await h.client.signUp({ displayName: "Bob" }),
    ];
    const p = phone(h.wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    phones.push(p);
    const sub = new Subscription<EventData>(p.client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    h.chat.publish([ada.userId], messageEvent("c", 1, bob.userId));
    await sub.nextResult();
    await h.chat.kill();
    const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(error[0]?.extensions?.code).toBe("SUBSCRIPTION_INTERRUPTED");
    // The client's connection stays open: only the operation ended.
    expect(p.closes).toEqual([]);
    await h.restartChat();
    const again = new Subscription<EventData>(p.client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the new upstream subscription");
    h.chat.publish([ada.userId], messageEvent("c", 2, bob.userId));
    expect((await again.nextResult()).data?.myChatEvents.seq).toBe(2);
    again.dispose();
  });

  it("should interrupt every feed that shares the upstream subscription that dropped", async () => {
    const [ada, bob] = [
      await h.client.signUp({ displayName: "Ada" }),
      await h.client.signUp({ displayName: "Bob" }),
    ];
    // Two feeds (different variables) whose primary fetch is the same: one upstream subscription.
    const query = `subscription Named($skip: Boolean!) { myChatEvents { seq message { sender { displayName @skip(if: $skip) } } } }`;
    const p = phone(h.wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    phones.push(p);
    const named = new Subscription<EventData>(p.client, query, { skip: false });
    const unnamed = new Subscription<EventData>(p.client, query, { skip: true });
    await eventually(() => h.gateway.subscriptionStats().feeds === 2, "two feeds");
    await eventually(() => h.chat.activeSubscriptions() === 1, "one upstream subscription");
    expect(h.gateway.subscriptionStats().upstream.subscriptions).toBe(1);
    h.chat.publish([ada.userId], messageEvent("c", 1, bob.userId));
    expect((await named.nextResult()).data?.myChatEvents.message?.sender).toEqual({ displayName: "Bob" });
    expect((await unnamed.nextResult()).data?.myChatEvents.message?.sender).toEqual({});
    await h.chat.kill();
    for (const sub of [named, unnamed]) {
      const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
      expect(error[0]?.extensions?.code).toBe("SUBSCRIPTION_INTERRUPTED");
    }
    expect(p.closes).toEqual([]);
    await h.restartChat();
  });

  it("should close client sockets with 1001 when the gateway stops", async () => {
    const ada = await h.client.signUp({ displayName: "Ada" });
    const p = phone(h.wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    phones.push(p);
    const sub = new Subscription<EventData>(p.client, MY_EVENTS);
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    await h.gateway.stop();
    expect((await p.closed).code).toBe(1001);
    sub.dispose();
  });
});

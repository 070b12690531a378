import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { createAccessTokenIssuer, loadGatewayConfig } from "@hv/kit";
import { seedProfilePhotos } from "../caching/caching-support";
import { capturingLogger } from "../../support/log-capture";
import { freePort } from "../../support/ports";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { startSystem, testEnv, type RunningSystem } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { createGroup, eventually, phone, Subscription, type Phone } from "../gateway/harness";

const ROOT = path.resolve(__dirname, "..", "..", "..");

const FEED = `subscription Feed { myChatEvents { kind conversationId seq actor { id } message { id seq text sender { id displayName } } } }`;
const ROOM = `subscription Room($id: ID!) { conversationEvents(conversationId: $id) { kind seq message { text sender { displayName } } } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const MESSAGES = `query($id: ID!, $after: Int) { messages(conversationId: $id, after: $after, first: 100) { messages { id seq text sender { displayName } } } }`;

interface FeedEvent {
  kind: string;
  conversationId: string;
  seq: number;
  actor: { id: string } | null;
  message: {
    id: string;
    seq: number;
    text: string | null;
    sender: { id: string; displayName: string };
  } | null;
}
type FeedData = { myChatEvents: FeedEvent };

/**
 * The real Chat subgraph behind the gateway: two gateways, each with its own chat instance (the
 * second one in a child process, so it can be killed outright), both on this run's databases and
 * Redis, with the real Users resolving senders.
 */
describe("chat through the gateway over graphql-ws", () => {
  let system: RunningSystem;
  let client: UsersClient;
  let client2: UsersClient;
  let gateway2: RunningGateway;
  let chat2: ChildProcess | undefined;
  let chat2Port: number;
  let dbs: TestDatabases;
  const phones: Phone[] = [];

  const startChat2 = async () => {
    chat2 = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "subgraphs/chat/src/index.ts")], {
      cwd: ROOT,
      env: {
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl, CHAT_SEND_BURST: "1000" }),
        CHAT_PORT: String(chat2Port),
        LOG_LEVEL: "warn",
      } as NodeJS.ProcessEnv,
      stdio: "ignore",
    });
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${chat2Port}/readyz`).catch(() => null))?.status === 200,
      "the second chat instance to be ready",
      1500,
    );
  };

  beforeAll(async () => {
    system = await startSystem({ CHAT_SEND_BURST: "1000" });
    dbs = testDatabases();
    client = new UsersClient(system.gatewayUrl);
    chat2Port = await freePort();
    await startChat2();
    gateway2 = await startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        USERS_URL: system.subgraphs.users.url,
        DISCOVERY_URL: system.subgraphs.discovery.url,
        CHAT_URL: `http://127.0.0.1:${chat2Port}/graphql`,
        MEDIA_URL: system.subgraphs.media.url,
      }),
      capturingLogger("gateway-2").logger,
    );
    client2 = new UsersClient(gateway2.url);
  });
  afterAll(async () => {
    await Promise.all(phones.map((p) => p.dispose()));
    await gateway2?.stop();
    chat2?.kill("SIGKILL");
    await system?.stop();
    await dbs?.close();
  });

  const wsOf = (gateway: { url: string }) => gateway.url.replace(/^http/, "ws");
  const connect = (gateway: { url: string }, who: SignedIn | string) => {
    const token = typeof who === "string" ? who : who.accessToken;
    const p = phone(wsOf(gateway), { authorization: `Bearer ${token}` });
    phones.push(p);
    return p;
  };

  const group = (owner: SignedIn, members: SignedIn[]) => createGroup(client, dbs, owner, members, "friends");

  async function send(via: UsersClient, who: SignedIn, conversationId: string, text: string) {
    const response = await via.request<{ sendMessage: { id: string; seq: number } }>(
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text } },
      who.accessToken,
    );
    if (!response.body.data) throw new Error(`sendMessage failed: ${JSON.stringify(response.body.errors)}`);
    return response.body.data.sendMessage;
  }

  /** Live once the subscriber sees its own DELIVERED marker come back through the stream. */
  async function untilLive(
    via: UsersClient,
    who: SignedIn,
    sub: Subscription<FeedData>,
    conversationId: string,
  ) {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      await via.request(
        `mutation($c: ID!) { markDelivered(conversationId: $c, seq: 0) }`,
        { c: conversationId },
        who.accessToken,
      );
      await new Promise((resolve) => setTimeout(resolve, 25));
      if (
        sub.results.some(
          (r) => r.data?.myChatEvents.kind === "DELIVERED" && r.data.myChatEvents.actor?.id === who.userId,
        )
      )
        return;
      if (sub.ended) throw new Error(`the subscription ended: ${JSON.stringify(sub.error)}`);
    }
    throw new Error("the subscription never went live");
  }

  const messagesIn = (sub: Subscription<FeedData>) =>
    sub.results.map((r) => r.data?.myChatEvents).filter((e): e is FeedEvent => e?.kind === "MESSAGE_ADDED");

  it("should deliver a message with the sender's displayName from Users", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    const conversationId = await group(ada, [bob]);
    const sub = new Subscription<FeedData>(connect(system.gateway, bob).client, FEED);
    await untilLive(client, bob, sub, conversationId);
    const sent = await send(client, ada, conversationId, "hello Bob");
    await sub.until(() => messagesIn(sub).length === 1, "the message");
    expect(messagesIn(sub)[0]).toEqual({
      kind: "MESSAGE_ADDED",
      conversationId,
      seq: sent.seq,
      actor: expect.anything(),
      message: {
        id: sent.id,
        seq: sent.seq,
        text: "hello Bob",
        sender: { id: ada.userId, displayName: "Ada" },
      },
    });
    sub.dispose();
  });

  it("should store and answer a send over the sender's own socket as over HTTP, with the same codes for bad input", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    const conversationId = await group(ada, [bob]);
    const sub = new Subscription<FeedData>(connect(system.gateway, bob).client, FEED);
    await untilLive(client, bob, sub, conversationId);
    const adaSocket = connect(system.gateway, ada).client;
    /** One operation over Ada's socket: its `next` results, or its `error`. */
    const overSocket = (query: string, variables: Record<string, unknown>) =>
      new Promise<
        | { results: Array<{ data?: unknown; errors?: Array<{ extensions?: Record<string, unknown> }> }> }
        | { refused: unknown }
      >((resolve) => {
        const results: Array<{ data?: unknown; errors?: Array<{ extensions?: Record<string, unknown> }> }> =
          [];
        adaSocket.subscribe(
          { query, variables },
          {
            next: (value) => results.push(value as unknown as (typeof results)[number]),
            error: (error) => resolve({ refused: error }),
            complete: () => resolve({ results }),
          },
        );
      });
    const overHttp = (query: string, variables: Record<string, unknown>) =>
      client.request(query, variables, ada.accessToken);
    const input = { conversationId, clientMessageId: randomUUID(), text: "over the socket" };
    const sent = await overSocket(SEND, { input });
    if (!("results" in sent)) throw new Error(`refused: ${JSON.stringify(sent.refused)}`);
    expect(sent.results).toHaveLength(1);
    const answer = (sent.results[0]?.data as { sendMessage: { id: string; seq: number } }).sendMessage;
    await sub.until(() => messagesIn(sub).some((m) => m.message?.id === answer.id), "the message");
    const stored = await client.request<{
      messages: { messages: Array<{ id: string; seq: number; text: string }> };
    }>(MESSAGES, { id: conversationId }, bob.accessToken);
    expect(stored.body.data?.messages.messages.find((m) => m.id === answer.id)).toMatchObject({
      seq: answer.seq,
      text: "over the socket",
    });
    // The same clientMessageId again is the same message, as over HTTP.
    expect((await overHttp(SEND, { input })).body).toEqual({ data: { sendMessage: answer } });
    // Wrong, missing, oversized and hostile input: the codes HTTP answers.
    const codesOf = (reply: { errors?: Array<{ extensions?: Record<string, unknown> }> }) =>
      reply.errors?.map((e) => e.extensions?.code) ?? [];
    const cases: Array<Record<string, unknown>> = [
      { input: { conversationId, clientMessageId: randomUUID(), text: "x".repeat(20_000) } },
      { input: { conversationId, clientMessageId: randomUUID() } },
      {
        input: {
          conversationId: "not-a-uuid'; DROP TABLE messages; --",
          clientMessageId: randomUUID(),
          text: "x",
        },
      },
      { input: { conversationId: { $ne: null }, clientMessageId: randomUUID(), text: "x" } },
      {},
    ];
    for (const variables of cases) {
      const http = await overHttp(SEND, variables);
      const socket = await overSocket(SEND, variables);
      const socketCodes =
        "results" in socket
          ? socket.results.flatMap(codesOf)
          : (socket.refused as Array<{ extensions?: Record<string, unknown> }>).map(
              (e) => e.extensions?.code,
            );
      expect({ variables, codes: socketCodes }).toEqual({ variables, codes: codesOf(http.body) });
      expect(codesOf(http.body)).not.toEqual([]);
    }
    sub.dispose();
  });

  it("should deliver a message sent through one chat instance to a subscriber whose upstream is the other", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    const conversationId = await group(ada, [bob]);
    // Bob on gateway 2 (chat instance 2); Ada sends through gateway 1 (chat instance 1).
    const sub = new Subscription<FeedData>(connect(gateway2, bob).client, FEED);
    await untilLive(client2, bob, sub, conversationId);
    const sent = await send(client, ada, conversationId, "across instances");
    await sub.until(() => messagesIn(sub).length === 1, "the message from the other instance");
    expect(messagesIn(sub)[0]?.message).toEqual({
      id: sent.id,
      seq: sent.seq,
      text: "across instances",
      sender: { id: ada.userId, displayName: "Ada" },
    });
    sub.dispose();
  });

  it("should fetch a group message's sender from Users once, whatever the number of members subscribed", async () => {
    const ada = await client.signUp({ displayName: "Ada" });
    const members = await Promise.all(
      Array.from({ length: 8 }, (_, i) => client.signUp({ displayName: `Member ${i}` })),
    );
    const conversationId = await group(ada, members);
    const subs = members.map((m) => new Subscription<FeedData>(connect(system.gateway, m).client, FEED));
    await Promise.all(members.map((m, i) => untilLive(client, m, subs[i]!, conversationId)));
    // Requests that reached Users for this operation's entity fetches (Users logs each request it serves).
    const usersFetches = () =>
      system.logs.users.filter(
        (line) => line.msg === "graphql request" && String(line.operationName).startsWith("Feed__users"),
      ).length;
    const before = usersFetches();
    await send(client, ada, conversationId, "hello everyone");
    for (const sub of subs) {
      await sub.until(() => messagesIn(sub).length === 1, "the group message");
      expect(messagesIn(sub)[0]?.message?.sender.displayName).toBe("Ada");
    }
    expect(usersFetches() - before).toBe(1);
    subs.forEach((s) => s.dispose());
  });

  it("should end the subscription when its chat instance is killed; the client resubscribes and catches up, losing and repeating nothing", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    const conversationId = await group(ada, [bob]);
    const p = connect(gateway2, bob);
    const first = new Subscription<FeedData>(p.client, FEED);
    await untilLive(client2, bob, first, conversationId);
    const sent: Array<{ id: string; seq: number }> = [];
    for (let i = 1; i <= 5; i += 1) sent.push(await send(client, ada, conversationId, `m${i}`));
    await first.until(() => messagesIn(first).length === 5, "five live messages");

    chat2?.kill("SIGKILL");
    const error = (await first.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(error[0]?.extensions?.code).toBe("SUBSCRIPTION_INTERRUPTED");
    // Sent while Bob's instance is down: only the catch-up can bring them.
    for (let i = 6; i <= 10; i += 1) sent.push(await send(client, ada, conversationId, `m${i}`));
    await startChat2();

    // The phone's connection to the gateway survived; it subscribes again, then catches up.
    expect(p.closes).toEqual([]);
    const second = new Subscription<FeedData>(p.client, FEED);
    await untilLive(client2, bob, second, conversationId);
    const held = new Map<number, string>();
    const live = [...messagesIn(first), ...messagesIn(second)];
    for (const event of live) held.set(event.seq, event.message!.id);
    const lastSeq = Math.max(...held.keys());
    const catchUp = await client2.request<{
      messages: {
        messages: Array<{ id: string; seq: number; text: string; sender: { displayName: string } }>;
      };
    }>(MESSAGES, { id: conversationId, after: lastSeq }, bob.accessToken);
    for (const message of catchUp.body.data?.messages.messages ?? []) {
      expect(held.has(message.seq)).toBe(false);
      expect(message.sender.displayName).toBe("Ada");
      held.set(message.seq, message.id);
    }
    sent.push(await send(client, ada, conversationId, "m11"));
    await second.until(() => messagesIn(second).length === 1, "the next message live");
    held.set(messagesIn(second)[0]!.seq, messagesIn(second)[0]!.message!.id);

    expect([...held.keys()].sort((a, b) => a - b)).toEqual(sent.map((m) => m.seq));
    expect([...held.values()].sort()).toEqual(sent.map((m) => m.id).sort());
    const streamed = [...messagesIn(first), ...messagesIn(second)].map((e) => e.message!.id);
    expect(new Set(streamed).size).toBe(streamed.length);
    second.dispose();
  });

  it("should not hand a blocked person's photos to the member who blocked them, though another member gets them from the same event", async () => {
    const [ada, bob, eve] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
      await client.signUp({ displayName: "Eve" }),
    ];
    const evePhotos = await seedProfilePhotos(dbs, eve.userId, 2);
    const conversationId = await group(eve, [ada, bob]);
    const original = await send(client, eve, conversationId, "a message Ada will not see");
    expect(
      (
        await client.request(
          `mutation($id: ID!) { blockUser(userId: $id) }`,
          { id: eve.userId },
          ada.accessToken,
        )
      ).body.errors,
    ).toBeUndefined();
    // Media learns of the block from Users' events: over HTTP, Ada sees none of Eve's photos.
    const photosAs = async (who: SignedIn) =>
      (
        await client.request<{ user: { photos: Array<{ id: string }> } | null }>(
          `query($id: ID!) { user(id: $id) { photos { id } } }`,
          { id: eve.userId },
          who.accessToken,
        )
      ).body.data?.user?.photos;
    await eventually(async () => (await photosAs(ada))?.length === 0, "Media to learn of the block");
    expect((await photosAs(bob))?.map((p) => p.id)).toEqual(evePhotos);

    // Bob's reply references Eve's message: both members' streams resolve Eve (replyTo.sender).
    const REPLIES = `subscription Replies { myChatEvents { kind conversationId seq actor { id } message { id seq text sender { id displayName } replyTo { sender { id displayName photos { id status width height } } } } } }`;
    type ReplyEvent = FeedEvent & {
      message: {
        replyTo: { sender: { id: string; photos: Array<{ id: string; status: string | null }> } } | null;
      } | null;
    };
    const adaSub = new Subscription<{ myChatEvents: ReplyEvent }>(
      connect(system.gateway, ada).client,
      REPLIES,
    );
    const bobSub = new Subscription<{ myChatEvents: ReplyEvent }>(
      connect(system.gateway, bob).client,
      REPLIES,
    );
    await untilLive(client, ada, adaSub as unknown as Subscription<FeedData>, conversationId);
    await untilLive(client, bob, bobSub as unknown as Subscription<FeedData>, conversationId);
    const reply = await client.request<{ sendMessage: { id: string } }>(
      SEND,
      {
        input: {
          conversationId,
          clientMessageId: randomUUID(),
          text: "replying to Eve",
          replyToId: original.id,
        },
      },
      bob.accessToken,
    );
    expect(reply.body.errors).toBeUndefined();
    const replyIn = (sub: Subscription<{ myChatEvents: ReplyEvent }>) =>
      sub.results
        .map((r) => r.data?.myChatEvents)
        .find((e) => e?.kind === "MESSAGE_ADDED" && e.message?.id === reply.body.data?.sendMessage.id);
    await bobSub.until(() => replyIn(bobSub) !== undefined, "the reply in Bob's stream");
    await adaSub.until(() => replyIn(adaSub) !== undefined, "the reply in Ada's stream");
    // Bob may see Eve's photos...
    expect(replyIn(bobSub)?.message?.replyTo?.sender.photos).toEqual(
      evePhotos.map((id) => ({ id, status: "READY", width: 640, height: 800 })),
    );
    // ...Ada, who blocked Eve, gets none of them through the same event (Users shows profiles
    // across blocks, Media hides photos: were the fetch shared token-less, she would get Bob's answer).
    expect(replyIn(adaSub)?.message?.replyTo?.sender).toEqual({
      id: eve.userId,
      displayName: "Eve",
      photos: [],
    });
    adaSub.dispose();
    bobSub.dispose();
  });

  it("should resolve a subscriber's own media with their token (its status is theirs to see)", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    // A READY chat attachment of Ada's: not on any profile, so only Ada (or a grant holder) may see its metadata.
    const attachmentId = randomUUID();
    await dbs.media.media.create({
      data: {
        id: attachmentId,
        ownerId: ada.userId,
        kind: "IMAGE",
        status: "READY",
        purpose: "CHAT_ATTACHMENT",
        width: 320,
        height: 200,
        variants: [],
      },
    });
    const conversationId = await group(ada, [bob]);
    const MINE = `subscription Attachments { myChatEvents { kind conversationId seq actor { id } message { id seq text sender { id displayName } attachments { id kind status width } } } }`;
    type AttachmentEvent = FeedEvent & {
      message: {
        attachments: Array<{ id: string; kind: string; status: string | null; width: number | null }>;
      } | null;
    };
    const sub = new Subscription<{ myChatEvents: AttachmentEvent }>(
      connect(system.gateway, ada).client,
      MINE,
    );
    await untilLive(client, ada, sub as unknown as Subscription<FeedData>, conversationId);
    const sent = await client.request<{ sendMessage: { id: string } }>(
      SEND,
      {
        input: {
          conversationId,
          clientMessageId: randomUUID(),
          text: "my picture",
          attachmentIds: [attachmentId],
        },
      },
      ada.accessToken,
    );
    expect(sent.body.errors).toBeUndefined();
    const echo = () =>
      sub.results
        .map((r) => r.data?.myChatEvents)
        .find((e) => e?.kind === "MESSAGE_ADDED" && e.message?.id === sent.body.data?.sendMessage.id);
    await sub.until(() => echo() !== undefined, "Ada's own message");
    expect(echo()?.message?.attachments).toEqual([
      { id: attachmentId, kind: "IMAGE", status: "READY", width: 320 },
    ]);
    sub.dispose();
  });

  it("should end a non-member's subscription with the subgraph's error", async () => {
    const [ada, bob, eve] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
      await client.signUp({ displayName: "Eve" }),
    ];
    const conversationId = await group(ada, [bob]);
    const sub = new Subscription(connect(system.gateway, eve).client, ROOM, { id: conversationId });
    const error = (await sub.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(error[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(sub.results).toEqual([]);
  });

  it("should pass the subgraph's BAD_USER_INPUT on for a malformed conversation id, and refuse a wrong variable type itself", async () => {
    const ada = await client.signUp({ displayName: "Ada" });
    const p = connect(system.gateway, ada);
    const malformed = new Subscription(p.client, ROOM, { id: "not-a-uuid'; DROP TABLE messages; --" });
    const error = (await malformed.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(error[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT" });
    const wrongType = new Subscription(p.client, ROOM, { id: { $ne: null } });
    expect(
      ((await wrongType.ending()) as Array<{ extensions?: Record<string, unknown> }>)[0]?.extensions?.code,
    ).toBe("BAD_USER_INPUT");
  });

  it("should close with 4403 when the access token expires mid-stream", async () => {
    const [ada, bob] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
    ];
    const conversationId = await group(ada, [bob]);
    const sid = (
      JSON.parse(Buffer.from(bob.accessToken.split(".")[1]!, "base64url").toString()) as { sid: string }
    ).sid;
    const shortLived = await createAccessTokenIssuer({
      keys: system.signingKeys,
      issuer: "haiyvee",
      audience: "haiyvee-api",
      ttlSeconds: 3,
    }).issue({
      userId: bob.userId,
      sessionId: sid,
      role: "USER",
    });
    const p = connect(system.gateway, shortLived.token);
    const sub = new Subscription<FeedData>(p.client, FEED);
    await untilLive(client, bob, sub, conversationId);
    expect(await p.closed).toEqual({ code: 4403, reason: "Forbidden: expired" });
    expect(await sub.ending()).toMatchObject({ code: 4403 });
  });
});

import { randomUUID } from "node:crypto";
import { checkMediaGrant, type EventPayload } from "@hv/kit";
import { Redis } from "ioredis";
import {
  codeOf,
  createGroup,
  eventually,
  gql,
  invitationTo,
  MESSAGE_FIELDS,
  MESSAGES,
  send,
  startChatHarness,
  chatEventFeed,
  type ChatEventFeed,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Person,
  type Subscriber,
} from "./harness";
import { startRedisServer, type RedisServer } from "../../support/redis-server";

const DEV_GRANT_SECRET = "development-only-media-grant-secret-not-for-production";

describe("chat safety: blocks, limits, push events, matches, receipts, presence, attachments", () => {
  let harness: ChatHarness;
  let url: string;
  let events: ChatEventFeed;
  // A redis-server of the suite's own: one test counts commands with MONITOR, which another
  // suite's traffic on a shared server can break (ioredis's monitor mode).
  let privateRedis: RedisServer;

  beforeAll(async () => {
    privateRedis = await startRedisServer();
    harness = await startChatHarness({
      REDIS_URL: `redis://127.0.0.1:${privateRedis.port}`,
      CHAT_SEND_BURST: "5",
      CHAT_SEND_SUSTAINED: "8",
      CHAT_PRESENCE_TTL_SECONDS: "30",
    });
    url = harness.instances[0]!.url;
    // Events reach Chat the way the other subgraphs' relays deliver them: jobs on its BullMQ queue.
    events = chatEventFeed(harness);
  });
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
    await privateRedis?.stop();
  });

  const deliver: ChatEventFeed["deliver"] = (type, payload) => events.deliver(type, payload);

  const DIRECT = "mutation($u: ID!) { openDirectConversation(userId: $u) { id kind } }";
  const CONVERSATION =
    "query($id: ID!) { conversation(id: $id) { id kind closed closedReason unreadCount lastSeq muted myRole memberCount lastMessage { seq text } members { user { id } role lastReadSeq deliveredSeq } } }";

  it("should open a direct conversation on match.created (and only then), and close it on match.ended", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const before = await gql(url, DIRECT, { u: b.userId }, a);
    expect(codeOf(before)).toBe("FORBIDDEN");
    const matchId = randomUUID();
    await deliver("match.created", { matchId, userIds: [a.userId, b.userId] });
    await deliver("match.created", { matchId, userIds: [a.userId, b.userId] }); // delivered twice: still one
    const opened = await gql(url, DIRECT, { u: b.userId }, a);
    expect(opened.body.data.openDirectConversation.kind).toBe("DIRECT");
    const conversationId = opened.body.data.openDirectConversation.id;
    expect(await harness.db.conversation.count({ where: { matchId } })).toBe(1);
    expect((await send(url, a, conversationId, "hi")).body.errors).toBeUndefined();
    await deliver("match.ended", { matchId, userIds: [a.userId, b.userId] });
    const after = await send(url, b, conversationId, "still there?");
    expect(codeOf(after)).toBe("FORBIDDEN");
    expect(after.body.errors?.[0]?.extensions?.reason).toBe("closed");
    const closed = await gql(url, CONVERSATION, { id: conversationId }, b);
    expect(closed.body.data.conversation).toMatchObject({ closed: true, lastSeq: 1, unreadCount: 1 });
    // History stays readable.
    expect((await gql(url, MESSAGES, { conversationId }, b)).body.data.messages.messages).toHaveLength(1);
  });

  it("should stop contact on a block (the conversation closes, hidden from the blocker), and open a new one only on a new match after unblocking", async () => {
    const [a, b, c] = [await harness.person(), await harness.person(), await harness.person()];
    const matchId = randomUUID();
    await deliver("match.created", { matchId, userIds: [a.userId, b.userId] });
    const direct = (await gql(url, DIRECT, { u: b.userId }, a)).body.data.openDirectConversation.id;
    expect((await send(url, b, direct, "before the block")).body.errors).toBeUndefined();
    const group = await createGroup(url, c, [a, b]);
    const bStream = subscriber(() => wsUrl(harness.instances[0]!), b);
    await untilLive(url, b, bStream, group);
    // b and c also hold the app's feed selection, whose new-message events one execution serves.
    const appFeed = `subscription { myChatEvents { kind conversationId seq actor { id } message { id text sender { id } reactions { emoji count reactedByMe } } invitation { id } } }`;
    const [bApp, cApp] = [b, c].map((who) =>
      subscriber(() => wsUrl(harness.instances[0]!), who, appFeed),
    ) as [Subscriber, Subscriber];
    await untilLive(url, b, bApp, group);
    await untilLive(url, c, cApp, group);
    await deliver("user.blocked", { blockerId: a.userId, blockedId: b.userId });
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as Array<[Person, Person]>) {
      const response = await send(url, from, direct, `to ${to.userId}`);
      expect(codeOf(response)).toBe("FORBIDDEN");
      expect(response.body.errors?.[0]?.extensions?.reason).toBe("closed");
    }
    // b sees it closed like after an unmatch (not told of the block); for a it is gone, listed or not.
    await eventually(
      () =>
        bStream.events.some(
          (event) => event.kind === "CONVERSATION_CLOSED" && event.conversationId === direct,
        ),
      "b told it closed",
    );
    expect((await gql(url, CONVERSATION, { id: direct }, b)).body.data.conversation).toMatchObject({
      closed: true,
      closedReason: "UNMATCHED",
    });
    expect((await gql(url, CONVERSATION, { id: direct }, a)).body.data.conversation).toBeNull();
    const LIST = "query { conversations(first: 50, includeClosed: true) { edges { node { id } } } }";
    const listed = async (who: Person) =>
      (await gql(url, LIST, {}, who)).body.data.conversations.edges.map(
        (edge: { node: { id: string } }) => edge.node.id,
      );
    expect(await listed(a)).not.toContain(direct);
    expect(await listed(b)).toContain(direct);
    // In the group, a's message reaches c but never b (nor b's history).
    const fromA = (await send(url, a, group, "b cannot see this")).body.data.sendMessage.id;
    const fromC = (await send(url, c, group, "everyone sees this")).body.data.sendMessage.id;
    await eventually(
      () => bStream.events.some((event) => event.message?.id === fromC),
      "c's message reached b",
    );
    expect(bStream.events.some((event) => event.message?.id === fromA || event.actor?.id === a.userId)).toBe(
      false,
    );
    await eventually(
      () => [fromA, fromC].every((id) => cApp.events.some((event) => event.message?.id === id)),
      "both messages reached c's app feed",
    );
    await eventually(
      () => bApp.events.some((event) => event.message?.id === fromC),
      "c's message on b's app feed",
    );
    expect(bApp.events.some((event) => event.message?.id === fromA || event.actor?.id === a.userId)).toBe(
      false,
    );
    const history = (await gql(url, MESSAGES, { conversationId: group }, b)).body.data.messages.messages.map(
      (message: { id: string }) => message.id,
    );
    expect(history).toContain(fromC);
    expect(history).not.toContain(fromA);
    const outbox = await harness.db.outboxEvent.findMany({ where: { type: "message.created" } });
    const event = outbox.find((row) => (row.payload as { messageId: string }).messageId === fromA);
    expect(
      (event?.payload as { recipients: Array<{ userId: string }> }).recipients.map(
        (recipient) => recipient.userId,
      ),
    ).toEqual([c.userId]);
    // Unblocked: the old conversation stays closed (history readable again for a), nothing reopens it.
    await deliver("user.unblocked", { blockerId: a.userId, blockedId: b.userId });
    expect(await listed(a)).toContain(direct);
    expect((await send(url, b, direct, "friends again?")).body.errors?.[0]?.extensions?.reason).toBe(
      "closed",
    );
    // A new match (Discovery forgot the old one on the block) opens a new conversation.
    const newMatch = randomUUID();
    await deliver("match.created", { matchId: newMatch, userIds: [a.userId, b.userId] });
    const reopened = (await gql(url, DIRECT, { u: b.userId }, a)).body.data.openDirectConversation.id;
    expect(reopened).not.toBe(direct);
    expect((await send(url, b, reopened, "hello again")).body.errors).toBeUndefined();
    expect(
      (await gql(url, MESSAGES, { conversationId: reopened }, a)).body.data.messages.messages.map(
        (m: { text: string }) => m.text,
      ),
    ).toEqual(["hello again"]);
    await Promise.all([bStream, bApp, cApp].map((sub) => sub.dispose()));
  });

  it("should give a match's conversation with its last message, none when its sender and the viewer blocked each other", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const matchId = randomUUID();
    await deliver("match.created", { matchId, userIds: [a.userId, b.userId] });
    const direct = (await gql(url, DIRECT, { u: b.userId }, a)).body.data.openDirectConversation.id;
    const MATCH = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Match { conversation { id closed unreadCount lastMessage { ${MESSAGE_FIELDS} } } } } }`;
    const ofMatch = async (who: Person) =>
      (await gql(url, MATCH, { reps: [{ __typename: "Match", id: matchId }] }, who)).body.data._entities[0]
        .conversation;
    const LAST = `query($id: ID!) { conversation(id: $id) { lastMessage { ${MESSAGE_FIELDS} } } }`;
    const ofConversation = async (who: Person) =>
      (await gql(url, LAST, { id: direct }, who)).body.data.conversation?.lastMessage;
    expect(await ofMatch(a)).toEqual({ id: direct, closed: false, unreadCount: 0, lastMessage: null });
    await send(url, b, direct, "first");
    const second = (await send(url, b, direct, "second")).body.data.sendMessage;
    const react = `mutation($m: ID!) { reactToMessage(messageId: $m, emoji: "👍") { id } }`;
    expect((await gql(url, react, { m: second.id }, a)).body.errors).toBeUndefined();
    expect(await ofMatch(a)).toMatchObject({
      id: direct,
      closed: false,
      unreadCount: 2,
      lastMessage: {
        id: second.id,
        seq: 2,
        text: "second",
        createdAt: second.createdAt,
        sender: { id: b.userId },
        reactions: [{ emoji: "👍", count: 1, reactedByMe: true }],
        deleted: false,
      },
    });
    // The same message as the conversation's own lookup gives.
    expect((await ofMatch(a)).lastMessage).toEqual(await ofConversation(a));
    // b blocks a: a still sees the conversation, closed, without b's message; b no longer sees it.
    await deliver("user.blocked", { blockerId: b.userId, blockedId: a.userId });
    expect(await ofMatch(a)).toMatchObject({ id: direct, closed: true, lastMessage: null });
    expect(await ofConversation(a)).toBeNull();
    expect(await ofMatch(b)).toBeNull();
  });

  it("should refuse a banned user's messages", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    await deliver("user.banned", { userId: b.userId });
    const response = await send(url, b, group, "spam");
    expect(codeOf(response)).toBe("FORBIDDEN");
    expect(response.body.errors?.[0]?.extensions?.reason).toBe("banned");
  });

  it("should rate-limit sending per user, burst first, with retryAfterSeconds", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const results = [];
    for (let index = 0; index < 6; index += 1) results.push(await send(url, a, group, `burst ${index}`));
    expect(results.slice(0, 5).every((result) => result.body.errors === undefined)).toBe(true);
    const refused = results[5]!;
    expect(codeOf(refused)).toBe("RATE_LIMITED");
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({
      limit: "chat-send-burst",
      retryAfterSeconds: expect.any(Number),
    });
    expect(await harness.db.message.count({ where: { conversationId: group } })).toBe(5);
    // Another person's budget is their own.
    expect((await send(url, b, group, "me too")).body.errors).toBeUndefined();
  });

  it("should count refused sends against the sustained budget, and refuse over it once the burst refills", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const codes: Array<string | undefined> = [];
    for (let index = 0; index < 6; index += 1)
      codes.push(codeOf(await send(url, a, group, `early ${index}`)));
    expect(codes).toEqual([undefined, undefined, undefined, undefined, undefined, "RATE_LIMITED"]);
    // The burst window refilling, without waiting 10 s: its counter goes (the sustained one stays at 6).
    const redis = new Redis(String(harness.env.REDIS_URL ?? "redis://127.0.0.1:6379"));
    try {
      expect(await redis.del(`hv:rl:chat-send-burst:${a.userId}`)).toBe(1);
      expect(await redis.get(`hv:rl:chat-send-sustained:${a.userId}`)).toBe("6");
    } finally {
      redis.disconnect();
    }
    const later = [];
    for (let index = 0; index < 3; index += 1) later.push(await send(url, a, group, `later ${index}`));
    expect(later.map(codeOf)).toEqual([undefined, undefined, "RATE_LIMITED"]);
    expect(later[2]!.body.errors?.[0]?.extensions).toMatchObject({
      limit: "chat-send-sustained",
      retryAfterSeconds: expect.any(Number),
    });
    expect(later[2]!.body.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(3000);
    expect(await harness.db.message.count({ where: { conversationId: group } })).toBe(7);
  });

  it("should spend both send budgets and the spam counters in one Redis round trip per send", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const redis = new Redis(String(harness.env.REDIS_URL ?? "redis://127.0.0.1:6379"));
    const monitor = await redis.monitor();
    // Commands naming the sender's budget or spam keys, as sent by a client (not run inside a script).
    const sent: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return;
      if (args.some((arg) => arg.includes(a.userId) && /^hv:(rl:chat-send|chat:spam)/.test(arg)))
        sent.push(args);
    });
    try {
      expect((await send(url, a, group, "one round trip")).body.errors).toBeUndefined();
      // MONITOR reports commands as they run: a last round trip makes sure ours have been seen.
      await redis.ping();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sent).toHaveLength(1);
      expect(sent[0]![0]!.toLowerCase()).toMatch(/^evalsha$|^eval$/);
      expect(sent[0]).toEqual(
        expect.arrayContaining([
          `hv:rl:chat-send-burst:${a.userId}`,
          `hv:rl:chat-send-sustained:${a.userId}`,
          expect.stringMatching(new RegExp(`^hv:chat:spam:text:${a.userId}:`)),
        ]),
      );
    } finally {
      monitor.disconnect();
      redis.disconnect();
    }
  });

  it("should write message.created with the sender, muted members and blocked pairs left out, and unread counts", async () => {
    const [a, b, c, d] = [
      await harness.person(),
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    const group = await createGroup(url, a, [b, c, d]);
    const mute = await gql(
      url,
      "mutation($c: ID!) { muteConversation(conversationId: $c, muted: true) { muted } }",
      { c: group },
      c,
    );
    expect(mute.body.data.muteConversation.muted).toBe(true);
    await deliver("user.blocked", { blockerId: d.userId, blockedId: a.userId });
    await send(url, b, group, "one from b");
    const sent = await send(url, a, group, "x".repeat(300));
    const message = sent.body.data.sendMessage;
    const row = (await harness.db.outboxEvent.findMany({ where: { type: "message.created" } })).find(
      (candidate) => (candidate.payload as { messageId: string }).messageId === message.id,
    );
    expect(row?.payload).toEqual({
      messageId: message.id,
      conversationId: group,
      conversationKind: "GROUP",
      senderId: a.userId,
      seq: 2,
      sentAt: message.createdAt,
      preview: "x".repeat(200),
      // b sent seq 1 (read up to 1), so one unread.
      recipients: [{ userId: b.userId, unreadCount: 1, totalUnreadCount: 1 }],
    });
    // The relay publishes it to the push queue and marks it published.
    await eventually(
      async () =>
        (await harness.db.outboxEvent.findUniqueOrThrow({ where: { id: row!.id } })).publishedAt !== null,
      "relayed",
    );
  });

  it("should give each recipient their total unread count over their unmuted conversations for the badge", async () => {
    const [a, b, c, d] = [
      await harness.person(),
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    const group = await createGroup(url, a, [b, c]);
    const other = await createGroup(url, d, [b]); // b has 2 unread here
    const muted = await createGroup(url, d, [b, c]); // and 3 here, muted: not in the badge
    expect(
      (
        await gql(
          url,
          "mutation($c: ID!) { muteConversation(conversationId: $c, muted: true) { muted } }",
          { c: muted },
          b,
        )
      ).body.data,
    ).toBeTruthy();
    for (const text of ["o1", "o2"]) expect((await send(url, d, other, text)).body.errors).toBeUndefined();
    for (const text of ["m1", "m2", "m3"])
      expect((await send(url, d, muted, text)).body.errors).toBeUndefined();
    // c read everything in `muted` (c's total is this group only); b read nothing.
    await gql(
      url,
      "mutation($c: ID!, $s: Int!) { markRead(conversationId: $c, seq: $s) }",
      { c: muted, s: 3 },
      c,
    );
    expect((await send(url, c, group, "from c")).body.errors).toBeUndefined();
    const sent = await send(url, a, group, "the badge");
    const messageId = sent.body.data.sendMessage.id as string;
    const row = (await harness.db.outboxEvent.findMany({ where: { type: "message.created" } })).find(
      (candidate) => (candidate.payload as { messageId: string }).messageId === messageId,
    );
    const recipients = (row?.payload as EventPayload<"message.created">).recipients;
    expect([...recipients].sort((x, y) => x.userId.localeCompare(y.userId))).toEqual(
      [
        // b: 2 unread in this group (c's message and a's), 2 in `other`; `muted` left out.
        { userId: b.userId, unreadCount: 2, totalUnreadCount: 4 },
        // c sent seq 1 here (read), so 1 unread; nothing elsewhere.
        { userId: c.userId, unreadCount: 1, totalUnreadCount: 1 },
      ].sort((x, y) => x.userId.localeCompare(y.userId)),
    );
  });

  it("should keep read and delivered markers and unread counts, publishing receipts", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const aStream = subscriber(() => wsUrl(harness.instances[0]!), a);
    await untilLive(url, a, aStream, group);
    for (const text of ["1", "2", "3"]) await send(url, a, group, text);
    let view = await gql(url, CONVERSATION, { id: group }, b);
    expect(view.body.data.conversation).toMatchObject({
      unreadCount: 3,
      lastSeq: 3,
      lastMessage: { seq: 3, text: "3" },
    });
    expect(
      (await gql(url, "mutation($c: ID!) { markDelivered(conversationId: $c, seq: 3) }", { c: group }, b))
        .body.data.markDelivered,
    ).toBe(3);
    expect(
      (await gql(url, "mutation($c: ID!) { markRead(conversationId: $c, seq: 2) }", { c: group }, b)).body
        .data.markRead,
    ).toBe(2);
    // Never backwards, never past the last message.
    expect(
      (await gql(url, "mutation($c: ID!) { markRead(conversationId: $c, seq: 1) }", { c: group }, b)).body
        .data.markRead,
    ).toBe(2);
    expect(
      (await gql(url, "mutation($c: ID!) { markRead(conversationId: $c, seq: 99) }", { c: group }, b)).body
        .data.markRead,
    ).toBe(3);
    view = await gql(url, CONVERSATION, { id: group }, b);
    expect(view.body.data.conversation.unreadCount).toBe(0);
    const bMember = view.body.data.conversation.members.find(
      (member: { user: { id: string } }) => member.user.id === b.userId,
    );
    expect(bMember).toMatchObject({ lastReadSeq: 3, deliveredSeq: 3 });
    await eventually(
      () =>
        aStream.events.some(
          (event) => event.kind === "READ" && event.actor?.id === b.userId && event.seq === 3,
        ),
      "read receipt",
    );
    expect(
      aStream.events.some(
        (event) => event.kind === "DELIVERED" && event.actor?.id === b.userId && event.seq === 3,
      ),
    ).toBe(true);
    await aStream.dispose();
  });

  it("should throttle typing and never store it", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const bStream = subscriber(() => wsUrl(harness.instances[0]!), b);
    await untilLive(url, b, bStream, group);
    for (let index = 0; index < 5; index += 1) {
      expect(
        (await gql(url, "mutation($c: ID!) { typing(conversationId: $c) }", { c: group }, a)).body.data
          .typing,
      ).toBe(true);
    }
    await send(url, a, group, "done typing");
    await eventually(
      () => bStream.events.some((event) => event.kind === "MESSAGE_ADDED"),
      "message after typing",
    );
    expect(bStream.events.filter((event) => event.kind === "TYPING")).toHaveLength(1);
    expect(await harness.db.message.count({ where: { conversationId: group } })).toBe(1);
    await bStream.dispose();
  });

  it("should show presence to people who share a conversation, and hide it on request", async () => {
    const [a, b, stranger] = [await harness.person(), await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const PRESENCE =
      "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id presence { online lastSeenAt } } } }";
    const presenceOf = async (viewer: Person, target: Person) =>
      (await gql(url, PRESENCE, { r: [{ __typename: "User", id: target.userId }] }, viewer)).body.data
        ._entities[0].presence;
    expect(await presenceOf(a, b)).toEqual({ online: false, lastSeenAt: null });
    const bStream = subscriber(() => wsUrl(harness.instances[0]!), b);
    await untilLive(url, b, bStream, group);
    const online = await presenceOf(a, b);
    expect(online.online).toBe(true);
    expect(online.lastSeenAt).toEqual(expect.any(String));
    expect(await presenceOf(stranger, b)).toBeNull();
    await gql(url, "mutation { setPresenceVisible(visible: false) }", {}, b);
    expect(await presenceOf(a, b)).toBeNull();
    await gql(url, "mutation { setPresenceVisible(visible: true) }", {}, b);
    expect((await presenceOf(a, b)).online).toBe(true);
    await bStream.dispose();
  });

  it("should vouch for attachment readers: members get a read grant naming the sender, others get null", async () => {
    const [a, b, stranger] = [await harness.person(), await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    const mediaId = randomUUID();
    await send(url, a, group, "look", { attachmentIds: [mediaId] });
    const GRANT = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { id readGrant } } }";
    const grantFor = async (viewer: Person) =>
      (await gql(url, GRANT, { r: [{ __typename: "Media", id: mediaId }] }, viewer)).body.data._entities[0]
        .readGrant;
    const grant = await grantFor(b);
    expect(
      checkMediaGrant(grant, { mediaId, viewerId: b.userId, ownerId: a.userId }, DEV_GRANT_SECRET),
    ).toEqual({ ok: true });
    expect(
      checkMediaGrant(grant, { mediaId, viewerId: stranger.userId, ownerId: a.userId }, DEV_GRANT_SECRET),
    ).toEqual({ ok: false, reason: "other-viewer" });
    expect(await grantFor(stranger)).toBeNull();
    expect(
      (await gql(url, GRANT, { r: [{ __typename: "Media", id: mediaId }] })).body.data._entities[0].readGrant,
    ).toBeNull();
  });

  it("should give each media id one sender: another sender attaching it is refused, even racing, and grants name the first", async () => {
    const [a, b, c] = [await harness.person(), await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b, c]);
    const mediaId = randomUUID();
    expect((await send(url, a, group, "mine", { attachmentIds: [mediaId] })).body.errors).toBeUndefined();
    // The sender may attach it again (another message, another conversation).
    expect((await send(url, a, group, "again", { attachmentIds: [mediaId] })).body.errors).toBeUndefined();
    const stolen = await send(url, b, group, "not mine", { attachmentIds: [randomUUID(), mediaId] });
    expect(codeOf(stolen)).toBe("FORBIDDEN");
    expect(stolen.body.errors?.[0]?.extensions).toMatchObject({
      reason: "attachment-taken",
      field: "input.attachmentIds[1]",
    });
    expect(await harness.db.messageAttachment.count({ where: { mediaId } })).toBe(2);
    const GRANT = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Media { id readGrant } } }";
    const grant = (await gql(url, GRANT, { r: [{ __typename: "Media", id: mediaId }] }, c)).body.data
      ._entities[0].readGrant;
    expect(
      checkMediaGrant(grant, { mediaId, viewerId: c.userId, ownerId: a.userId }, DEV_GRANT_SECRET),
    ).toEqual({ ok: true });

    // Two senders racing for a new id: exactly one gets it, the other is refused and stores nothing.
    const raced = randomUUID();
    const results = await Promise.all(
      [a, b, c].map((who) => send(url, who, group, "race", { attachmentIds: [raced] })),
    );
    expect(results.filter((result) => result.body.errors === undefined)).toHaveLength(1);
    expect(results.filter((result) => codeOf(result) === "FORBIDDEN")).toHaveLength(2);
    expect(await harness.db.messageAttachment.count({ where: { mediaId: raced } })).toBe(1);
    const owner = await harness.db.mediaSender.findUniqueOrThrow({ where: { mediaId: raced } });
    const winner = results.findIndex((result) => result.body.errors === undefined);
    expect(owner.senderId).toBe([a, b, c][winner]!.userId);
  });

  it("should enforce group roles: owner and admins manage, members do not, the owner hands over on leaving", async () => {
    const [owner, admin, member, newcomer] = [
      await harness.person(),
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    const group = await createGroup(url, owner, [admin, member]);
    const SET_ROLE =
      "mutation($c: ID!, $u: ID!, $r: MemberRole!) { setGroupMemberRole(conversationId: $c, userId: $u, role: $r) { id } }";
    const ADD =
      "mutation($c: ID!, $u: [ID!]!) { addGroupMembers(conversationId: $c, userIds: $u) { memberCount } }";
    const REMOVE =
      "mutation($c: ID!, $u: ID!) { removeGroupMember(conversationId: $c, userId: $u) { memberCount } }";
    expect(codeOf(await gql(url, SET_ROLE, { c: group, u: admin.userId, r: "ADMIN" }, member))).toBe(
      "FORBIDDEN",
    );
    expect(
      (await gql(url, SET_ROLE, { c: group, u: admin.userId, r: "ADMIN" }, owner)).body.errors,
    ).toBeUndefined();
    expect(codeOf(await gql(url, ADD, { c: group, u: [newcomer.userId] }, member))).toBe("FORBIDDEN");
    // Not matched with the admin: invited, not added.
    expect(
      (await gql(url, ADD, { c: group, u: [newcomer.userId] }, admin)).body.data.addGroupMembers.memberCount,
    ).toBe(3);
    expect(await invitationTo(url, newcomer, group)).not.toBeNull();
    expect(codeOf(await gql(url, REMOVE, { c: group, u: owner.userId }, admin))).toBe("FORBIDDEN");
    // Removing a pending invitee withdraws the invitation.
    expect(
      (await gql(url, REMOVE, { c: group, u: newcomer.userId }, admin)).body.data.removeGroupMember
        .memberCount,
    ).toBe(3);
    expect(await invitationTo(url, newcomer, group)).toBeNull();
    expect(codeOf(await send(url, newcomer, group, "am I in?"))).toBe("NOT_FOUND");
    expect(
      (await gql(url, "mutation($c: ID!) { leaveConversation(conversationId: $c) }", { c: group }, owner))
        .body.data.leaveConversation,
    ).toBe(true);
    const view = await gql(url, CONVERSATION, { id: group }, admin);
    expect(view.body.data.conversation.myRole).toBe("OWNER");
    expect(view.body.data.conversation.memberCount).toBe(2);
  });

  it("should list my conversations most recent first with cursors", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const groups = [];
    for (const title of ["g1", "g2", "g3"]) groups.push(await createGroup(url, a, [b], title));
    await send(url, b, groups[0]!, "bump g1");
    const LIST =
      "query($f: Int, $a: String) { conversations(first: $f, after: $a) { edges { cursor node { id title unreadCount lastMessage { text } } } pageInfo { hasNextPage endCursor } } }";
    const first = await gql(url, LIST, { f: 2 }, a);
    expect(
      first.body.data.conversations.edges.map((edge: { node: { title: string } }) => edge.node.title),
    ).toEqual(["g1", "g3"]);
    expect(first.body.data.conversations.edges[0].node).toMatchObject({
      unreadCount: 1,
      lastMessage: { text: "bump g1" },
    });
    expect(first.body.data.conversations.pageInfo.hasNextPage).toBe(true);
    const second = await gql(url, LIST, { f: 2, a: first.body.data.conversations.pageInfo.endCursor }, a);
    expect(
      second.body.data.conversations.edges.map((edge: { node: { title: string } }) => edge.node.title),
    ).toEqual(["g2"]);
    expect(second.body.data.conversations.pageInfo.hasNextPage).toBe(false);
  });
});

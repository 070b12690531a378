import { randomUUID } from "node:crypto";
import {
  chatEventFeed,
  codeOf,
  createGroup,
  gql,
  send,
  startChatHarness,
  type ChatEventFeed,
  type ChatHarness,
  type Person,
} from "./harness";

interface Recipient {
  userId: string;
  unreadCount: number;
  totalUnreadCount: number;
}

/**
 * STORE runs as one of several statements (store-statement.ts): the one-to-one block check, the
 * reply check and the attachments are in it only when they apply. Each variant stores the same
 * message and outbox event, and re-checks on the locked row what the pre-check does not read.
 */
describe("chat send: each STORE variant", () => {
  let harness: ChatHarness;
  let url: string;
  let events: ChatEventFeed;
  let a: Person;
  let b: Person;
  let c: Person;
  let direct: string;
  let group: string;

  beforeAll(async () => {
    harness = await startChatHarness({ CHAT_SEND_BURST: "1000", CHAT_MAX_ATTACHMENTS: "3" });
    url = harness.instances[0]!.url;
    events = chatEventFeed(harness);
    [a, b, c] = [await harness.person(), await harness.person(), await harness.person()];
    await events.deliver("match.created", { matchId: randomUUID(), userIds: [a.userId, b.userId] });
    const opened = await gql(
      url,
      "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }",
      { u: b.userId },
      a,
    );
    direct = opened.body.data.openDirectConversation.id;
    group = await createGroup(url, a, [b, c]);
  });
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
  });

  const recipientsOf = async (messageId: string) => {
    const rows = await harness.db.outboxEvent.findMany({ where: { type: "message.created" } });
    const row = rows.find((event) => (event.payload as { messageId?: string }).messageId === messageId);
    return row?.payload as { seq: number; conversationKind: string; recipients: Recipient[] } | undefined;
  };
  const seqOf = async (conversationId: string) =>
    (await harness.db.conversation.findUniqueOrThrow({ where: { id: conversationId } })).lastSeq;

  it.each([
    ["a one-to-one", () => direct, "DIRECT", () => [b]],
    ["a group", () => group, "GROUP", () => [b, c]],
  ])(
    "should store text, a reply, attachments, and a reply with attachments in %s, seq gap-free",
    async (_label, conversationOf, kind, others) => {
      const conversationId = conversationOf();
      const start = await seqOf(conversationId);
      const first = await send(url, a, conversationId, "text");
      expect(first.body.errors).toBeUndefined();
      const firstId: string = first.body.data.sendMessage.id;
      const media = [randomUUID(), randomUUID()];
      const sends: Array<Record<string, unknown>> = [
        { text: "a reply", replyToId: firstId },
        { text: null, attachmentIds: [media[0]] },
        { text: "both", attachmentIds: [media[1]], replyToId: firstId },
      ];
      const stored = [first.body.data.sendMessage];
      for (const extra of sends) {
        const response = await send(url, a, conversationId, "", extra);
        expect(response.body.errors).toBeUndefined();
        stored.push(response.body.data.sendMessage);
      }
      expect(stored.map((message) => message.seq)).toEqual([start + 1, start + 2, start + 3, start + 4]);
      expect(
        stored.map((message) => [
          message.replyTo?.id ?? null,
          message.attachments.map((m: { id: string }) => m.id),
        ]),
      ).toEqual([
        [null, []],
        [firstId, []],
        [null, [media[0]]],
        [firstId, [media[1]]],
      ]);
      for (const [index, message] of stored.entries()) {
        const event = await recipientsOf(message.id);
        expect(event).toMatchObject({ seq: start + 1 + index, conversationKind: kind });
        expect(event!.recipients.map((r) => r.userId).sort()).toEqual(
          others()
            .map((p) => p.userId)
            .sort(),
        );
      }
    },
  );

  it("should refuse a reply to another conversation's message in either kind, storing nothing", async () => {
    const elsewhere = (await send(url, a, group, "elsewhere")).body.data.sendMessage.id;
    const inDirect = (await send(url, a, direct, "here")).body.data.sendMessage.id;
    for (const [conversationId, replyToId] of [
      [direct, elsewhere],
      [group, inDirect],
    ] as const) {
      const before = await seqOf(conversationId);
      const response = await send(url, a, conversationId, "reply", { replyToId });
      expect(codeOf(response)).toBe("NOT_FOUND");
      expect(response.body.errors?.[0]?.extensions?.field).toBe("input.replyToId");
      const withMedia = await send(url, a, conversationId, "reply", {
        replyToId,
        attachmentIds: [randomUUID()],
      });
      expect(codeOf(withMedia)).toBe("NOT_FOUND");
      expect(await seqOf(conversationId)).toBe(before);
    }
  });

  it("should re-check a block on the locked row: refused one-to-one, left out of a group's recipients", async () => {
    const [d, e, f] = [await harness.person(), await harness.person(), await harness.person()];
    await events.deliver("match.created", { matchId: randomUUID(), userIds: [d.userId, e.userId] });
    const opened = await gql(
      url,
      "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }",
      { u: e.userId },
      d,
    );
    const pair = opened.body.data.openDirectConversation.id as string;
    const trio = await createGroup(url, d, [e, f]);
    // A block row without its event: the one-to-one is still open, so only STORE sees the block.
    await harness.db.block.create({ data: { blockerId: e.userId, blockedId: d.userId } });
    const before = await seqOf(pair);
    for (const extra of [{}, { replyToId: randomUUID() }, { attachmentIds: [randomUUID()] }]) {
      const refused = await send(url, d, pair, "hello?", extra);
      expect(codeOf(refused)).toBe("FORBIDDEN");
      expect(refused.body.errors?.[0]?.extensions?.reason).toBe("blocked");
    }
    expect(await seqOf(pair)).toBe(before);
    const inGroup = await send(url, d, trio, "to the group");
    expect(inGroup.body.errors).toBeUndefined();
    const event = await recipientsOf(inGroup.body.data.sendMessage.id);
    expect(event!.recipients.map((r) => r.userId)).toEqual([f.userId]);
  });
});

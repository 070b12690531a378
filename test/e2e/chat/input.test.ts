import { randomUUID } from "node:crypto";
import { codeOf, createGroup, gql, SEND, startChatHarness, type ChatHarness, type Person } from "./harness";

/** Hostile, oversized, missing and wrong input for every chat mutation: typed codes, nothing stored. */
describe("chat input validation", () => {
  let harness: ChatHarness;
  let url: string;
  let a: Person;
  let b: Person;
  let conversationId: string;
  let messageId: string;

  beforeAll(async () => {
    harness = await startChatHarness({
      CHAT_MESSAGE_MAX_LENGTH: "50",
      CHAT_MAX_ATTACHMENTS: "3",
      CHAT_GROUP_MAX_MEMBERS: "4",
      CHAT_SEND_BURST: "1000",
    });
    url = harness.instances[0]!.url;
    [a, b] = [await harness.person(), await harness.person()];
    conversationId = await createGroup(url, a, [b]);
    const sent = await gql(
      url,
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text: "hello" } },
      a,
    );
    messageId = sent.body.data.sendMessage.id;
  });
  afterAll(async () => harness?.stop());

  const fieldOf = (response: Awaited<ReturnType<typeof gql>>) => response.body.errors?.[0]?.extensions?.field;

  async function expectRefusedSend(input: Record<string, unknown>, code: string, field?: string) {
    const before = await harness.db.message.count({ where: { conversationId } });
    const response = await gql(
      url,
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text: "x", ...input } },
      a,
    );
    expect({ input: Object.keys(input), code: codeOf(response) }).toEqual({
      input: Object.keys(input),
      code,
    });
    if (field) expect(fieldOf(response)).toBe(field);
    expect(await harness.db.message.count({ where: { conversationId } })).toBe(before);
  }

  it("should refuse bad sendMessage input with BAD_USER_INPUT naming the field", async () => {
    await expectRefusedSend({ text: "x".repeat(51) }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ text: "🙂".repeat(51) }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ text: "   \n " }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ text: "nul\u0000byte" }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ text: "lone \ud800 surrogate" }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ text: null }, "BAD_USER_INPUT", "input.text");
    await expectRefusedSend({ clientMessageId: "" }, "BAD_USER_INPUT", "input.clientMessageId");
    await expectRefusedSend({ clientMessageId: "x".repeat(65) }, "BAD_USER_INPUT", "input.clientMessageId");
    await expectRefusedSend(
      { clientMessageId: "'; DROP TABLE messages; --" },
      "BAD_USER_INPUT",
      "input.clientMessageId",
    );
    await expectRefusedSend({ conversationId: "not-a-uuid" }, "BAD_USER_INPUT", "input.conversationId");
    await expectRefusedSend({ conversationId: randomUUID() }, "NOT_FOUND", "input.conversationId");
    await expectRefusedSend(
      { attachmentIds: [randomUUID(), randomUUID(), randomUUID(), randomUUID()] },
      "BAD_USER_INPUT",
      "input.attachmentIds",
    );
    const same = randomUUID();
    await expectRefusedSend({ attachmentIds: [same, same] }, "BAD_USER_INPUT", "input.attachmentIds");
    await expectRefusedSend(
      { attachmentIds: ["../../etc/passwd"] },
      "BAD_USER_INPUT",
      "input.attachmentIds[0]",
    );
    await expectRefusedSend({ replyToId: randomUUID() }, "NOT_FOUND", "input.replyToId");
    await expectRefusedSend({ replyToId: "nope" }, "BAD_USER_INPUT", "input.replyToId");
    // Missing required fields and wrong types never reach the resolver.
    for (const input of [
      { conversationId },
      { clientMessageId: "a" },
      { conversationId, clientMessageId: 5, text: "x" },
      { conversationId, clientMessageId: "a", text: ["x"] },
    ]) {
      const response = await gql(url, SEND, { input }, a);
      expect(codeOf(response)).toBe("BAD_USER_INPUT");
    }
    const huge = await gql(
      url,
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text: "x".repeat(900_000) } },
      a,
    );
    expect(codeOf(huge)).toBe("BAD_USER_INPUT");
  });

  it("should accept text with attachments, attachments alone, and a reply", async () => {
    const media = [randomUUID(), randomUUID()];
    const response = await gql(
      url,
      SEND,
      {
        input: { conversationId, clientMessageId: randomUUID(), attachmentIds: media, replyToId: messageId },
      },
      a,
    );
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data.sendMessage).toMatchObject({
      text: null,
      attachments: media.map((id) => ({ id })),
      replyTo: { id: messageId },
    });
  });

  it("should refuse bad input to the other mutations", async () => {
    const cases: Array<[string, Record<string, unknown>, string, string?]> = [
      [
        "mutation($m: ID!, $t: String!) { editMessage(messageId: $m, text: $t) { id } }",
        { m: messageId, t: "y".repeat(51) },
        "BAD_USER_INPUT",
        "text",
      ],
      [
        "mutation($m: ID!, $t: String!) { editMessage(messageId: $m, text: $t) { id } }",
        { m: "x", t: "ok" },
        "BAD_USER_INPUT",
        "messageId",
      ],
      [
        "mutation($m: ID!, $t: String!) { editMessage(messageId: $m, text: $t) { id } }",
        { m: randomUUID(), t: "ok" },
        "NOT_FOUND",
        "messageId",
      ],
      [
        "mutation($m: ID!) { deleteMessage(messageId: $m) { id } }",
        { m: randomUUID() },
        "NOT_FOUND",
        "messageId",
      ],
      [
        "mutation($m: ID!, $e: String!) { reactToMessage(messageId: $m, emoji: $e) { id } }",
        { m: messageId, e: "abc" },
        "BAD_USER_INPUT",
        "emoji",
      ],
      [
        "mutation($m: ID!, $e: String!) { reactToMessage(messageId: $m, emoji: $e) { id } }",
        { m: messageId, e: "🙂".repeat(20) },
        "BAD_USER_INPUT",
        "emoji",
      ],
      [
        "mutation($m: ID!, $e: String!) { reactToMessage(messageId: $m, emoji: $e) { id } }",
        { m: messageId, e: "" },
        "BAD_USER_INPUT",
        "emoji",
      ],
      [
        "mutation($c: ID!, $s: Int!) { markRead(conversationId: $c, seq: $s) }",
        { c: conversationId, s: -1 },
        "BAD_USER_INPUT",
        "seq",
      ],
      [
        "mutation($c: ID!, $s: Int!) { markDelivered(conversationId: $c, seq: $s) }",
        { c: randomUUID(), s: 1 },
        "NOT_FOUND",
        "conversationId",
      ],
      ["mutation($c: ID!) { typing(conversationId: $c) }", { c: "🙂" }, "BAD_USER_INPUT", "conversationId"],
      [
        "mutation($c: ID!, $m: Boolean!) { muteConversation(conversationId: $c, muted: $m) { id } }",
        { c: randomUUID(), m: true },
        "NOT_FOUND",
        "conversationId",
      ],
      [
        "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }",
        { u: "x" },
        "BAD_USER_INPUT",
        "userId",
      ],
      [
        "mutation($i: CreateGroupInput!) { createGroupConversation(input: $i) { id } }",
        { i: { title: " ", memberIds: [randomUUID()] } },
        "BAD_USER_INPUT",
        "input.title",
      ],
      [
        "mutation($i: CreateGroupInput!) { createGroupConversation(input: $i) { id } }",
        { i: { title: "t".repeat(101), memberIds: [randomUUID()] } },
        "BAD_USER_INPUT",
        "input.title",
      ],
      [
        "mutation($i: CreateGroupInput!) { createGroupConversation(input: $i) { id } }",
        { i: { title: "two\nlines", memberIds: [randomUUID()] } },
        "BAD_USER_INPUT",
        "input.title",
      ],
      [
        "mutation($i: CreateGroupInput!) { createGroupConversation(input: $i) { id } }",
        { i: { title: "empty", memberIds: [] } },
        "BAD_USER_INPUT",
        "input.memberIds",
      ],
      [
        "mutation($i: CreateGroupInput!) { createGroupConversation(input: $i) { id } }",
        { i: { title: "big", memberIds: [1, 2, 3, 4].map(() => randomUUID()) } },
        "BAD_USER_INPUT",
        "input.memberIds",
      ],
      [
        "mutation($c: ID!, $u: [ID!]!) { addGroupMembers(conversationId: $c, userIds: $u) { id } }",
        { c: conversationId, u: ["x"] },
        "BAD_USER_INPUT",
        "userIds[0]",
      ],
      [
        "mutation($c: ID!, $u: [ID!]!) { addGroupMembers(conversationId: $c, userIds: $u) { id } }",
        { c: conversationId, u: [1, 2, 3, 4].map(() => randomUUID()) },
        "BAD_USER_INPUT",
        "userIds",
      ],
      [
        "mutation($c: ID!, $u: ID!) { removeGroupMember(conversationId: $c, userId: $u) { id } }",
        { c: conversationId, u: randomUUID() },
        "NOT_FOUND",
        "userId",
      ],
      [
        "mutation($c: ID!, $u: ID!) { removeGroupMember(conversationId: $c, userId: $u) { id } }",
        { c: conversationId, u: "me" },
        "BAD_USER_INPUT",
        "userId",
      ],
      [
        "mutation($c: ID!, $u: ID!, $r: MemberRole!) { setGroupMemberRole(conversationId: $c, userId: $u, role: $r) { id } }",
        { c: conversationId, u: randomUUID(), r: "ADMIN" },
        "NOT_FOUND",
        "userId",
      ],
      [
        "mutation($c: ID!, $u: ID!, $r: MemberRole!) { setGroupMemberRole(conversationId: $c, userId: $u, role: $r) { id } }",
        { c: conversationId, u: randomUUID(), r: "GOD" },
        "BAD_USER_INPUT",
      ],
      [
        "mutation($c: ID!) { leaveConversation(conversationId: $c) }",
        { c: randomUUID() },
        "NOT_FOUND",
        "conversationId",
      ],
      [
        "mutation($m: ID!, $r: MessageReportReason!, $n: String) { reportMessage(messageId: $m, reason: $r, note: $n) }",
        { m: messageId, r: "SPAM", n: "n".repeat(1001) },
        "BAD_USER_INPUT",
        "note",
      ],
      [
        "mutation($m: ID!, $r: MessageReportReason!) { reportMessage(messageId: $m, reason: $r) }",
        { m: messageId, r: "BECAUSE" },
        "BAD_USER_INPUT",
      ],
      [
        "query($c: ID!, $f: Int) { messages(conversationId: $c, first: $f) { hasMore } }",
        { c: conversationId, f: 101 },
        "BAD_USER_INPUT",
        "first",
      ],
      [
        "query($c: ID!, $f: Int) { messages(conversationId: $c, first: $f) { hasMore } }",
        { c: conversationId, f: 0 },
        "BAD_USER_INPUT",
        "first",
      ],
      [
        "query($c: ID!) { messages(conversationId: $c, after: 1, before: 5) { hasMore } }",
        { c: conversationId },
        "BAD_USER_INPUT",
        "before",
      ],
      [
        "query($a: String) { conversations(after: $a) { edges { cursor } } }",
        { a: "forged" },
        "BAD_USER_INPUT",
        "after",
      ],
      [
        "query($a: String) { conversations(after: $a) { edges { cursor } } }",
        {
          a: Buffer.from(JSON.stringify({ t: "2020-01-01T00:00:00Z", id: "x' OR 1=1" })).toString(
            "base64url",
          ),
        },
        "BAD_USER_INPUT",
        "after",
      ],
      ["query { conversations(first: 51) { edges { cursor } } }", {}, "BAD_USER_INPUT", "first"],
    ];
    for (const [query, variables, code, field] of cases) {
      // Member management is the owner's (a); everything else as a plain member (b).
      const response = await gql(url, query, variables, /Group(Member|Members)/.test(query) ? a : b);
      expect({ query, variables, code: codeOf(response) }).toEqual({ query, variables, code });
      if (field) expect({ query, field: fieldOf(response) }).toEqual({ query, field });
    }
    // Edits and deletes of someone else's message are FORBIDDEN (b is a plain member; a sent it).
    const edit = await gql(
      url,
      'mutation($m: ID!) { editMessage(messageId: $m, text: "mine now") { id } }',
      { m: messageId },
      b,
    );
    expect(codeOf(edit)).toBe("FORBIDDEN");
    const remove = await gql(
      url,
      "mutation($m: ID!) { deleteMessage(messageId: $m) { id } }",
      { m: messageId },
      b,
    );
    expect(codeOf(remove)).toBe("FORBIDDEN");
    const message = await harness.db.message.findUniqueOrThrow({ where: { id: messageId } });
    expect({ text: message.text, deletedAt: message.deletedAt }).toEqual({ text: "hello", deletedAt: null });
  });
});

import { randomUUID } from "node:crypto";
import { codeOf, createGroup, gql, send, startChatHarness, type ChatHarness } from "./harness";

const CHANGES = `query($c: ID!, $after: Int!, $first: Int) { messageChanges(conversationId: $c, after: $after, first: $first) { version hasMore messages { id seq text deleted version reactions { emoji count } } } }`;
const EDIT = "mutation($m: ID!, $t: String!) { editMessage(messageId: $m, text: $t) { id version } }";
const DELETE = "mutation($m: ID!) { deleteMessage(messageId: $m) { id version } }";
const REACT =
  "mutation($m: ID!, $e: String!, $add: Boolean) { reactToMessage(messageId: $m, emoji: $e, add: $add) { id version } }";

describe("chat: catching up on edits, deletions and reactions (messageChanges)", () => {
  let harness: ChatHarness;
  let url: string;
  beforeAll(async () => {
    harness = await startChatHarness();
    url = harness.instances[0]!.url;
  });
  afterAll(async () => {
    await harness?.stop();
  });

  it("should return every change after the version a client holds, once, in version order", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const conversationId = await createGroup(url, a, [b]);
    const ids: string[] = [];
    for (const text of ["one", "two", "three"])
      ids.push((await send(url, a, conversationId, text)).body.data.sendMessage.id);
    // b is up to date now.
    const start = await gql(url, CHANGES, { c: conversationId, after: 0 }, b);
    expect(start.body.data.messageChanges.messages.map((m: { text: string }) => m.text)).toEqual([
      "one",
      "two",
      "three",
    ]);
    const held = start.body.data.messageChanges.version as number;
    expect(held).toBe(3);

    // While b is away: an edit of the first, a reaction on the second, a deletion of the third, a new one.
    await gql(url, EDIT, { m: ids[0], t: "one, edited" }, a);
    await gql(url, REACT, { m: ids[1], e: "👍" }, a);
    await gql(url, DELETE, { m: ids[2] }, a);
    await send(url, a, conversationId, "four");

    const caught = (await gql(url, CHANGES, { c: conversationId, after: held }, b)).body.data.messageChanges;
    expect(caught.hasMore).toBe(false);
    expect(
      caught.messages.map((m: { seq: number; text: string | null; deleted: boolean }) => [
        m.seq,
        m.text,
        m.deleted,
      ]),
    ).toEqual([
      [1, "one, edited", false],
      [2, "two", false],
      [3, null, true],
      [4, "four", false],
    ]);
    expect(caught.messages[1].reactions).toEqual([{ emoji: "👍", count: 1 }]);
    const versions = caught.messages.map((m: { version: number }) => m.version);
    expect(versions).toEqual([...versions].sort((x: number, y: number) => x - y));
    expect(caught.version).toBe(versions.at(-1));
    // Nothing more once caught up.
    expect(
      (await gql(url, CHANGES, { c: conversationId, after: caught.version }, b)).body.data.messageChanges,
    ).toEqual({
      version: caught.version,
      hasMore: false,
      messages: [],
    });

    // Paging: one change at a time walks the same list.
    const walked: number[] = [];
    let after = held;
    for (;;) {
      const page = (await gql(url, CHANGES, { c: conversationId, after, first: 1 }, b)).body.data
        .messageChanges;
      walked.push(...page.messages.map((m: { seq: number }) => m.seq));
      after = page.version;
      if (!page.hasMore) break;
    }
    expect(walked).toEqual([1, 2, 3, 4]);
  });

  it("should give concurrent changes distinct, gap-free versions", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const conversationId = await createGroup(url, a, [b]);
    const sent = (await send(url, a, conversationId, "react to me")).body.data.sendMessage.id as string;
    const emojis = ["😀", "😂", "😍", "🎉", "🔥", "👀"];
    const results = await Promise.all([
      ...emojis.map((e, i) => gql(url, REACT, { m: sent, e }, i % 2 ? a : b)),
      send(url, b, conversationId, "meanwhile"),
    ]);
    for (const result of results) expect(result.body.errors).toBeUndefined();
    const row = await harness.db.conversation.findUniqueOrThrow({
      where: { id: conversationId },
      select: { version: true },
    });
    expect(row.version).toBe(1 + emojis.length + 1);
  });

  it("should refuse bad input and strangers", async () => {
    const [a, b, stranger] = [await harness.person(), await harness.person(), await harness.person()];
    const conversationId = await createGroup(url, a, [b]);
    expect(codeOf(await gql(url, CHANGES, { c: conversationId, after: -1 }, a))).toBe("BAD_USER_INPUT");
    expect(codeOf(await gql(url, CHANGES, { c: conversationId, after: 0, first: 101 }, a))).toBe(
      "BAD_USER_INPUT",
    );
    expect(codeOf(await gql(url, CHANGES, { c: conversationId, after: 0, first: 0 }, a))).toBe(
      "BAD_USER_INPUT",
    );
    expect(codeOf(await gql(url, CHANGES, { c: "not-a-uuid", after: 0 }, a))).toBe("BAD_USER_INPUT");
    expect(codeOf(await gql(url, CHANGES, { c: "x".repeat(100_000), after: 0 }, a))).toBe("BAD_USER_INPUT");
    expect(codeOf(await gql(url, CHANGES, { c: conversationId, after: 0 }, stranger))).toBe("NOT_FOUND");
    expect(codeOf(await gql(url, CHANGES, { c: randomUUID(), after: 0 }, a))).toBe("NOT_FOUND");
    expect(codeOf(await gql(url, CHANGES, { c: conversationId, after: 0 }))).toBe("UNAUTHENTICATED");
  });
});

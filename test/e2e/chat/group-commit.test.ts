import { randomUUID } from "node:crypto";
import { createGroup, gql, SEND, startChatHarness, type ChatHarness, type Person } from "./harness";

/**
 * STORE's group commit (kit/src/group-commit.ts): with one store under way at a time, sends that
 * arrive together are stored several to a transaction, and each still gets its own message, seq
 * and outbox event; a retry racing its first send in the same transaction stores nothing twice.
 */
describe("chat send: sends stored together in one commit", () => {
  let harness: ChatHarness;
  let url: string;
  let a: Person;
  let b: Person;
  let groups: string[];

  beforeAll(async () => {
    harness = await startChatHarness({ CHAT_SEND_BURST: "1000", CHAT_STORE_RUNNING: "1" });
    url = harness.instances[0]!.url;
    [a, b] = [await harness.person(), await harness.person()];
    groups = [];
    for (const title of ["one", "two", "three"]) groups.push(await createGroup(url, a, [b], title));
  });
  afterAll(async () => {
    await harness?.stop();
  });

  test("every send stored once, seq gap-free, one event each, several in one transaction", async () => {
    const sends = groups.flatMap((conversationId) =>
      Array.from({ length: 10 }, (_, i) => ({
        conversationId,
        clientMessageId: randomUUID(),
        text: `m${i}`,
        who: i % 2 === 0 ? a : b,
      })),
    );
    // Each of three sends goes twice at once (a phone's retry racing its first attempt).
    const retried = [sends[0]!, sends[11]!, sends[29]!];
    const answers = await Promise.all(
      [...sends, ...retried].map(({ who, ...input }) => gql(url, SEND, { input }, who)),
    );
    for (const answer of answers) expect(answer.body.errors).toBeUndefined();
    const ids = answers.map((answer) => answer.body.data.sendMessage.id as string);
    expect(ids.slice(sends.length)).toEqual([ids[0], ids[11], ids[29]]);

    const rows = await harness.db.$queryRaw<
      Array<{ id: string; conversation_id: string; seq: number; tx: string }>
    >`
      SELECT id::text, conversation_id::text, seq, xmin::text AS tx FROM messages
       WHERE conversation_id = ANY(${groups}::uuid[]) ORDER BY conversation_id, seq`;
    expect(rows.map((row) => row.id).sort()).toEqual(ids.slice(0, sends.length).sort());
    for (const conversationId of groups) {
      const seqs = rows.filter((row) => row.conversation_id === conversationId).map((row) => row.seq);
      expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    }
    const events = await harness.db.outboxEvent.findMany({ where: { type: "message.created" } });
    const eventsOf = (id: string) =>
      events.filter((event) => (event.payload as { messageId?: string }).messageId === id).length;
    expect(rows.map((row) => eventsOf(row.id))).toEqual(rows.map(() => 1));
    // Alone, each send would be a transaction of its own (30 transaction ids).
    expect(new Set(rows.map((row) => row.tx)).size).toBeLessThan(rows.length);
  });
});

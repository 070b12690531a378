import { createGroup, send, startChatHarness, type ChatHarness, type Person } from "./harness";

/** The 48-bit Unix time in ms a UUIDv7 starts with. */
const timeOf = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);
const versionOf = (id: string) => id[14];

/**
 * Message and outbox event ids are time-ordered (UUIDv7): each insert appends to its primary key's
 * rightmost leaf instead of landing on a random one (docs/realtime-measurements.md, round 8).
 */
describe("chat send: time-ordered ids", () => {
  let harness: ChatHarness;
  let url: string;
  let a: Person;
  let b: Person;
  let group: string;

  beforeAll(async () => {
    harness = await startChatHarness({ CHAT_SEND_BURST: "1000" });
    url = harness.instances[0]!.url;
    [a, b] = [await harness.person(), await harness.person()];
    group = await createGroup(url, a, [b]);
  });
  afterAll(async () => {
    await harness?.stop();
  });

  it("should give messages and their message.created events v7 ids in send order, stamped with the send time", async () => {
    const start = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const sent = await send(url, i % 2 === 0 ? a : b, group, `m${i}`);
      expect(sent.body.errors).toBeUndefined();
      ids.push(sent.body.data.sendMessage.id);
    }
    const messages = await harness.db.message.findMany({
      where: { id: { in: ids } },
      orderBy: { seq: "asc" },
    });
    expect(messages.map((message) => message.id)).toEqual(ids);
    for (const message of messages) {
      expect(versionOf(message.id)).toBe("7");
      // The id is made during the send, just before the row's created_at.
      expect(timeOf(message.id)).toBeGreaterThanOrEqual(start);
      expect(timeOf(message.id)).toBeLessThanOrEqual(message.createdAt.getTime());
    }
    expect([...ids].sort()).toEqual(ids);

    const events = (await harness.db.outboxEvent.findMany({ where: { type: "message.created" } }))
      .filter((event) => ids.includes((event.payload as { messageId: string }).messageId))
      .sort((x, y) => (x.payload as { seq: number }).seq - (y.payload as { seq: number }).seq);
    expect(events).toHaveLength(ids.length);
    for (const event of events) expect(versionOf(event.id)).toBe("7");
    expect(events.map((event) => event.id)).toEqual(events.map((event) => event.id).sort());
  });
});

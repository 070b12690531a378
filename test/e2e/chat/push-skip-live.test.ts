/**
 * CHAT_PUSH_SKIP_LIVE: a message's push job leaves out recipients whose `myChatEvents` feed received
 * it; with none left there is no job at all, and the outbox row (every recipient) is still marked
 * published. Recipients without a live feed keep their push; the default keeps everyone's.
 */
import { eventQueueName, type EventPayload } from "@hv/kit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import {
  createGroup,
  eventually,
  send,
  startChatHarness,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Person,
  type Subscriber,
} from "./harness";

describe("chat push for recipients with a live feed (CHAT_PUSH_SKIP_LIVE)", () => {
  let harness: ChatHarness;
  let url: string;
  let pushQueue: Queue;
  const feeds: Subscriber[] = [];

  beforeAll(async () => {
    harness = await startChatHarness({ CHAT_PUSH_SKIP_LIVE: "true" });
    url = harness.instances[0]!.url;
    pushQueue = new Queue(eventQueueName("push"), {
      connection: { url: String(harness.env.REDIS_URL ?? "redis://127.0.0.1:6379") },
      prefix: String(harness.env.EVENTS_PREFIX),
    });
  });
  afterAll(async () => {
    await Promise.all(feeds.map((feed) => feed.dispose()));
    await pushQueue?.close();
    await harness?.stop();
  });

  /** `who`'s feed, live on the first instance. */
  async function liveFeed(who: Person, conversationId: string): Promise<Subscriber> {
    const feed = subscriber(() => wsUrl(harness.instances[0]!), who);
    feeds.push(feed);
    await untilLive(url, who, feed, conversationId);
    return feed;
  }

  /** The sent message's outbox event once the relay marked it published, and its push job if any. */
  async function relayed(sendingUrl: string, from: Person, conversationId: string) {
    const sent = await send(sendingUrl, from, conversationId, "hello");
    const messageId = sent.body.data.sendMessage.id as string;
    const row = (await harness.db.outboxEvent.findMany({ where: { type: "message.created" } })).find(
      (candidate) => (candidate.payload as { messageId: string }).messageId === messageId,
    );
    expect(row).toBeDefined();
    await eventually(
      async () =>
        (await harness.db.outboxEvent.findUniqueOrThrow({ where: { id: row!.id } })).publishedAt !== null,
      "marked published",
    );
    const job = await pushQueue.getJob(row!.id);
    return {
      stored: row!.payload as EventPayload<"message.created">,
      pushed: job ? (job.data.payload as EventPayload<"message.created">) : undefined,
    };
  }

  it("should enqueue no push job when every recipient's feed received the message", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    await liveFeed(b, group);
    const { stored, pushed } = await relayed(url, a, group);
    expect(stored.recipients.map((r) => r.userId)).toEqual([b.userId]);
    expect(pushed).toBeUndefined();
  });

  it("should push to recipients without a live feed only, and to everyone again once the feed closed", async () => {
    const [a, b, c] = [await harness.person(), await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b, c]);
    const feed = await liveFeed(b, group);
    const first = await relayed(url, a, group);
    expect(first.stored.recipients.map((r) => r.userId).sort()).toEqual([b.userId, c.userId].sort());
    expect(first.pushed?.recipients.map((r) => r.userId)).toEqual([c.userId]);

    await feed.dispose();
    const redis = new Redis(String(harness.env.REDIS_URL ?? "redis://127.0.0.1:6379"));
    try {
      await eventually(async () => {
        const counts = (await redis.pubsub(
          "NUMSUB",
          `${String(harness.env.EVENTS_PREFIX)}:chat:user:${b.userId}`,
        )) as unknown[];
        return counts[1] === 0;
      }, "b's feed closed");
    } finally {
      redis.disconnect();
    }
    const second = await relayed(url, a, group);
    expect(second.pushed?.recipients.map((r) => r.userId).sort()).toEqual([b.userId, c.userId].sort());
  });

  it("should push to live recipients too where CHAT_PUSH_SKIP_LIVE is false (the default)", async () => {
    const other = await harness.startInstance({ CHAT_PUSH_SKIP_LIVE: "false" });
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    await liveFeed(b, group);
    const { pushed } = await relayed(other.url, a, group);
    expect(pushed?.recipients.map((r) => r.userId)).toEqual([b.userId]);
  });
});

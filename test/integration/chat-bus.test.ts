import { randomBytes, randomUUID } from "node:crypto";
import net from "node:net";
import { createRedis } from "@hv/kit";
import { loadChatConfig } from "@hv/chat/src/config";
import { createChatBus, type ChatBus, type ChatEventPayload } from "@hv/chat/src/modules/bus";
import type { ChatServices } from "@hv/chat/src/modules/context";
import { SendAdmission } from "@hv/chat/src/modules/send-admission";
import { capturingLogger } from "../support/log-capture";
import Redis from "ioredis";
import { freePort } from "../support/ports";
import { waitFor } from "../support/wait";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

const event = (conversationId: string, seq: number): ChatEventPayload => ({
  kind: "TYPING",
  conversationId,
  seq,
  message: null,
  actorId: null,
  occurredAt: new Date().toISOString(),
});

/** The first `count` events of a subscription, in order. */
async function take(stream: AsyncIterator<ChatEventPayload>, count: number): Promise<ChatEventPayload[]> {
  const events: ChatEventPayload[] = [];
  while (events.length < count) {
    const next = await stream.next();
    if (next.done) break;
    events.push(next.value);
  }
  return events;
}

describe("chat bus publishing", () => {
  let bus: ChatBus | undefined;
  const redis = new Redis(REDIS_URL);
  afterAll(() => redis.quit());
  afterEach(() => bus?.close());

  it("should send the publishes of one event-loop turn in one write, each reaching its recipients in order and naming the live ones", async () => {
    const prefix = `hvtest-bus-${randomBytes(4).toString("hex")}`;
    bus = createChatBus(REDIS_URL, prefix, capturingLogger("bus-test").logger);
    const [alice, bob, carol] = [randomUUID(), randomUUID(), randomUUID()];
    const conversationId = randomUUID();
    const received = Promise.all([take(bus.subscribe(alice), 3), take(bus.subscribe(bob), 2)]);
    await waitFor("both subscribed", async () => {
      const counts = (await redis.pubsub(
        "NUMSUB",
        ...[alice, bob].map((id) => `${prefix}:chat:user:${id}`),
      )) as unknown[];
      return counts[1] === 1 && counts[3] === 1;
    });
    // Until the publisher is ready (a publish before that fails fast and reaches nobody), which also
    // loads the script into Redis (EVALSHA, then EVAL when not there yet): one seq 0 arrives.
    await waitFor(
      "the publisher ready",
      async () => (await bus!.publish([alice, bob], event(conversationId, 0))).size === 2,
    );

    // Node's socket writes from here on (a corked socket's writes leave together through _writev).
    const write = jest.spyOn(net.Socket.prototype, "_write");
    const writev = jest.spyOn(net.Socket.prototype, "_writev");
    try {
      const live = await Promise.all([
        bus.publish([alice, bob, carol], event(conversationId, 1)),
        bus.publish([alice], event(conversationId, 2)),
        bus.publish([carol], event(conversationId, 3)),
      ]);
      expect(write.mock.calls.length + writev.mock.calls.length).toBe(1);
      // Each publish answers who had a live subscription: carol has none.
      expect(live.map((set) => [...set].sort())).toEqual([[alice, bob].sort(), [alice], []]);
    } finally {
      write.mockRestore();
      writev.mockRestore();
    }
    const [aliceEvents, bobEvents] = await received;
    expect(aliceEvents.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(bobEvents.map((e) => e.seq)).toEqual([0, 1]);
  });

  it.each(["publisher", "subscriber"])(
    "should open a gap when its %s connection drops and close it once both are back, then publish live again",
    async (role) => {
      const prefix = `hvtest-bus-${randomBytes(4).toString("hex")}`;
      bus = createChatBus(REDIS_URL, prefix, capturingLogger("bus-test").logger);
      let gaps = 0;
      bus.onGap(() => (gaps += 1));
      const alice = randomUUID();
      const stream = bus.subscribe(alice);
      const channel = `${prefix}:chat:user:${alice}`;
      const subscribed = async () => ((await redis.pubsub("NUMSUB", channel)) as unknown[])[1] === 1;
      const first = take(stream, 1); // the iterator subscribes on its first read
      await waitFor("subscribed", subscribed);
      // Until the publisher is ready: a publish before that fails fast and reaches nobody.
      await waitFor("the publisher ready", async () =>
        (await bus!.publish([alice], event(randomUUID(), 1))).has(alice),
      );
      await first;

      const list = (await redis.client("LIST")) as string;
      const line = list.split("\n").find((entry) => entry.includes(` name=${prefix}:chat-fanout-${role} `));
      const id = /^id=(\d+) /.exec(line ?? "")?.[1];
      expect(id).toBeDefined();
      await redis.client("KILL", "ID", id as string);
      await waitFor("the gap opened and closed", async () => gaps === 2);
      await waitFor("subscribed again", subscribed);

      const conversationId = randomUUID();
      const after = take(stream, 1);
      expect(await bus.publish([alice], event(conversationId, 2))).toEqual(new Set([alice]));
      expect((await after)[0]).toMatchObject({ conversationId, seq: 2 });
    },
  );

  it("should not fail a publish while Redis is unreachable (the change is stored; clients catch up)", async () => {
    const log = capturingLogger("bus-test");
    bus = createChatBus(`redis://127.0.0.1:${await freePort()}`, "hvtest-bus-down", log.logger);
    await expect(bus.publish([randomUUID()], event(randomUUID(), 1))).resolves.toEqual(new Set());
    expect(log.lines.some((line) => line.msg.includes("publish failed"))).toBe(true);
  });
});

describe("send admission", () => {
  it("should send the admissions of one event-loop turn in one write, each with its own verdict", async () => {
    const config = loadChatConfig(process.env);
    const redis = createRedis(REDIS_URL, capturingLogger("admission-test").logger);
    try {
      const name = `hvtest-admit-${randomBytes(4).toString("hex")}`;
      const admission = new SendAdmission(redis, {
        burst: { name: `${name}-burst`, points: 2, durationSeconds: 10 },
        sustained: { name: `${name}-sustained`, points: 100, durationSeconds: 3600 },
      });
      const services = { config, redis, sendAdmission: admission } as unknown as ChatServices;
      const viewer = (userId: string) => ({ userId, sessionId: randomUUID(), role: "USER" as const });
      const [alice, bob] = [viewer(randomUUID()), viewer(randomUUID())];
      await redis.ping(); // connected

      const write = jest.spyOn(net.Socket.prototype, "_write");
      const writev = jest.spyOn(net.Socket.prototype, "_writev");
      let verdicts: Array<PromiseSettledResult<boolean>>;
      try {
        // Alice's third send within 10 s is over the burst budget of 2; Bob's first is not.
        verdicts = await Promise.allSettled(
          [alice, alice, alice, bob].map((who, i) =>
            admission.admit(services, who, randomUUID(), `text ${i} ${randomUUID()}`),
          ),
        );
        expect(write.mock.calls.length + writev.mock.calls.length).toBe(1);
      } finally {
        write.mockRestore();
        writev.mockRestore();
      }
      expect(verdicts.map((verdict) => verdict.status)).toEqual([
        "fulfilled",
        "fulfilled",
        "rejected",
        "fulfilled",
      ]);
      const refused = verdicts[2] as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({
        extensions: { code: "RATE_LIMITED", limit: `${name}-burst` },
      });
    } finally {
      await redis.quit();
    }
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { freePort } from "../../support/ports";
import {
  createGroup,
  eventually,
  gql,
  MESSAGES,
  SEND,
  send,
  startChatHarness,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Person,
  type Subscriber,
} from "./harness";

const ROOT = path.join(__dirname, "..", "..", "..");

/**
 * What a phone keeps: messages by seq. Events come from the subscription; after every (re)connect
 * it runs the catch-up query `messages(after: <highest seq held>)`. Returns what arrived how.
 */
function phone(
  harness: ChatHarness,
  who: Person,
  conversationId: string,
  urls: () => { ws: string; http: string },
) {
  const held = new Map<number, string>();
  const viaSubscription: string[] = [];
  const viaCatchUp: string[] = [];
  let catchUps = 0;
  let catchingUp: Promise<void> = Promise.resolve();
  const catchUp = () => {
    catchingUp = catchingUp.then(async () => {
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const after = Math.max(0, ...held.keys());
        const response = await gql(urls().http, MESSAGES, { conversationId, after, first: 100 }, who).catch(
          () => null,
        );
        if (!response || response.body.errors) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        for (const message of response.body.data.messages.messages as Array<{ id: string; seq: number }>) {
          if (!held.has(message.seq)) {
            held.set(message.seq, message.id);
            viaCatchUp.push(message.id);
          }
        }
        catchUps += 1;
        return;
      }
    });
  };
  const sub: Subscriber = subscriber(() => urls().ws, who, undefined, { onConnected: catchUp });
  const seen = () => {
    for (const event of sub.events.splice(0)) {
      if (event.kind !== "MESSAGE_ADDED" || !event.message) continue;
      viaSubscription.push(event.message.id);
      if (!held.has(event.message.seq)) held.set(event.message.seq, event.message.id);
    }
  };
  void harness;
  return {
    sub,
    held: () => {
      seen();
      return held;
    },
    viaSubscription: () => {
      seen();
      return viaSubscription;
    },
    viaCatchUp,
    catchUps: () => catchUps,
    settled: () => catchingUp,
  };
}

describe("chat delivery across instances, restarts and Redis outages", () => {
  let harness: ChatHarness;

  beforeAll(async () => {
    // Generous send budgets: these tests send bursts on purpose (rate limits: safety.test.ts).
    harness = await startChatHarness({ CHAT_SEND_BURST: "1000" });
    await harness.startInstance();
  });
  afterAll(async () => harness?.stop());

  it("should deliver a message sent through one instance to a subscriber on the other", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const [one, two] = harness.instances as [
      NonNullable<(typeof harness.instances)[0]>,
      NonNullable<(typeof harness.instances)[0]>,
    ];
    const conversationId = await createGroup(one.url, a, [b]);
    const onTwo = subscriber(() => wsUrl(two), b);
    const conversationStream = subscriber(
      () => wsUrl(two),
      b,
      `subscription($c: ID!) { conversationEvents(conversationId: $c) { kind conversationId seq actor { id } message { id text sender { id } } } }`,
      { variables: { c: conversationId } },
    );
    await untilLive(two.url, b, onTwo, conversationId);
    await untilLive(two.url, b, conversationStream, conversationId);
    const sent = await send(one.url, a, conversationId, "across instances");
    const id = sent.body.data.sendMessage.id;
    await eventually(
      () => onTwo.events.some((event) => event.message?.id === id),
      "message on the other instance",
    );
    await eventually(
      () => conversationStream.events.some((event) => event.message?.id === id),
      "message on the conversation stream",
    );
    const event = onTwo.events.find((candidate) => candidate.message?.id === id);
    expect(event).toMatchObject({
      kind: "MESSAGE_ADDED",
      conversationId,
      seq: 1,
      message: { seq: 1, text: "across instances", sender: { id: a.userId } },
    });
    await Promise.all([onTwo.dispose(), conversationStream.dispose()]);
  });

  it("should give each member their own reactedByMe while members with the same selection share an event", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const two = harness.instances[1]!;
    const conversationId = await createGroup(two.url, a, [b]);
    // Everyone on one instance: one Redis body per recipient arrives there, parsed once.
    const full = [a, b].map((who) => subscriber(() => wsUrl(two), who));
    const shared = `subscription { myChatEvents { kind conversationId seq actor { id } message { id seq text sender { id } createdAt } } }`;
    const lean = [a, b].map((who) => subscriber(() => wsUrl(two), who, shared));
    for (const [index, who] of [a, b].entries()) {
      await untilLive(two.url, who, full[index]!, conversationId);
      await untilLive(two.url, who, lean[index]!, conversationId);
    }
    const sent = await send(two.url, a, conversationId, "shared");
    const id = sent.body.data.sendMessage.id as string;
    const reacted = await gql(
      two.url,
      `mutation($m: ID!) { reactToMessage(messageId: $m, emoji: "👍") { id } }`,
      { m: id },
      a,
    );
    expect(reacted.body.errors).toBeUndefined();
    const reaction = (sub: Subscriber) =>
      sub.events.find((event) => event.kind === "REACTION_CHANGED" && event.message?.id === id) as
        { message: { reactions: Array<{ emoji: string; count: number; reactedByMe: boolean }> } } | undefined;
    await eventually(() => full.every((sub) => reaction(sub) !== undefined), "the reaction on both feeds");
    expect(reaction(full[0]!)?.message.reactions).toEqual([{ emoji: "👍", count: 1, reactedByMe: true }]);
    expect(reaction(full[1]!)?.message.reactions).toEqual([{ emoji: "👍", count: 1, reactedByMe: false }]);
    const added = (sub: Subscriber) =>
      sub.events.find((event) => event.kind === "MESSAGE_ADDED" && event.message?.id === id);
    await eventually(() => lean.every((sub) => added(sub) !== undefined), "the message on both lean feeds");
    expect(added(lean[1]!)).toEqual(added(lean[0]!));
    expect(added(lean[0]!)).toMatchObject({
      kind: "MESSAGE_ADDED",
      actor: { id: a.userId },
      message: { id, text: "shared", sender: { id: a.userId } },
    });
    await Promise.all([...full, ...lean].map((sub) => sub.dispose()));
  });

  it("should lose and duplicate nothing when the subscriber's instance is killed mid-stream", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const survivor = harness.instances[0]!;
    // The instance B subscribes to runs in its own process, so it can be killed outright.
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "subgraphs/chat/src/index.ts")],
      {
        cwd: ROOT,
        env: { ...harness.env, CHAT_PORT: String(port), LOG_LEVEL: "warn" } as NodeJS.ProcessEnv,
        stdio: "ignore",
      },
    );
    const doomed = { ws: `ws://127.0.0.1:${port}/graphql`, http: `http://127.0.0.1:${port}/graphql` };
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200,
        "child instance ready",
        1200,
      );
      const conversationId = await createGroup(survivor.url, a, [b]);
      let target = doomed;
      const b1 = phone(harness, b, conversationId, () => target);
      await untilLive(doomed.http, b, b1.sub, conversationId);
      const texts = Array.from({ length: 30 }, (_, index) => `m${index + 1}`);
      const sentIds: string[] = [];
      for (const [index, text] of texts.entries()) {
        if (index === 10) {
          await eventually(() => b1.held().size === 10, "first ten delivered live");
          target = { ws: wsUrl(survivor), http: survivor.url };
          child.kill("SIGKILL");
        }
        const response = await send(survivor.url, a, conversationId, text);
        sentIds.push(response.body.data.sendMessage.id);
      }
      await eventually(() => b1.held().size === 30, "all thirty held after reconnecting");
      await b1.settled();
      expect([...b1.held().keys()].sort((x, y) => x - y)).toEqual(
        Array.from({ length: 30 }, (_, index) => index + 1),
      );
      expect(new Set(b1.held().values())).toEqual(new Set(sentIds));
      // The stream itself never repeated a message, and the reconnect was a real one.
      const streamed = b1.viaSubscription();
      expect(new Set(streamed).size).toBe(streamed.length);
      expect(b1.sub.connections()).toBeGreaterThanOrEqual(2);
      expect(b1.sub.closes.length).toBeGreaterThanOrEqual(1);
      await b1.sub.dispose();
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("should lose and duplicate nothing when the fan-out's Redis restarts", async () => {
    // A private Redis for the fan-out (CHAT_PUBSUB_REDIS_URL) that the test can kill and restart;
    // queues, rate limits and presence stay on the shared one.
    const port = await freePort();
    const startRedis = () =>
      spawn(
        "redis-server",
        ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        { stdio: "ignore" },
      );
    let redis = startRedis();
    const private_ = await startChatHarness({
      CHAT_PUBSUB_REDIS_URL: `redis://127.0.0.1:${port}`,
      CHAT_SEND_BURST: "1000",
    });
    try {
      const instance = private_.instances[0]!;
      const [a, b] = [await private_.person(), await private_.person()];
      const conversationId = await createGroup(instance.url, a, [b]);
      const b1 = phone(private_, b, conversationId, () => ({ ws: wsUrl(instance), http: instance.url }));
      await untilLive(instance.url, b, b1.sub, conversationId);
      const sentIds: string[] = [];
      const sendOne = async (text: string) => {
        const response = await send(instance.url, a, conversationId, text);
        if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
        sentIds.push(response.body.data.sendMessage.id);
      };
      for (let index = 1; index <= 5; index += 1) await sendOne(`before ${index}`);
      await eventually(() => b1.held().size === 5, "five before the outage");
      const connectionsBefore = b1.sub.connections();
      redis.kill("SIGKILL");
      await new Promise((resolve) => redis.once("exit", resolve));
      // Write first: while the fan-out is down, sends are stored (and cannot be published).
      for (let index = 1; index <= 5; index += 1) await sendOne(`during ${index}`);
      redis = startRedis();
      // The instance asks clients to reconnect when its subscription comes back.
      await eventually(
        () => b1.sub.closes.filter((code) => code === 1012).length >= 2,
        "reconnect asked after Redis came back",
        800,
      );
      // The fan-out is back both ways (the publisher reconnects on its own, maybe later) and the
      // phone's new subscription is live; its catch-up on that reconnect is done.
      await untilLive(instance.url, b, b1.sub, conversationId);
      await b1.settled();
      for (let index = 1; index <= 5; index += 1) await sendOne(`after ${index}`);
      await eventually(() => b1.held().size === sentIds.length, "everything held after Redis came back", 800);
      await b1.settled();
      expect(new Set(b1.held().values())).toEqual(new Set(sentIds));
      expect([...b1.held().keys()].sort((x, y) => x - y)).toEqual(sentIds.map((_, index) => index + 1));
      const streamed = b1.viaSubscription();
      expect(new Set(streamed).size).toBe(streamed.length);
      expect(b1.viaCatchUp.length).toBeGreaterThan(0);
      expect(b1.sub.connections()).toBeGreaterThan(connectionsBefore);
      await b1.sub.dispose();
    } finally {
      await private_.stop();
      redis.kill("SIGKILL");
    }
  });

  it("should return the original message for a retried send, sequentially and concurrently", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const [one, two] = [harness.instances[0]!, harness.instances[1]!];
    const conversationId = await createGroup(one.url, a, [b]);
    const input = { conversationId, clientMessageId: randomUUID(), text: "only once" };
    const first = await gql(one.url, SEND, { input }, a);
    const retried = await gql(two.url, SEND, { input: { ...input, text: "a different body is ignored" } }, a);
    expect(retried.body.data.sendMessage).toEqual(first.body.data.sendMessage);
    const racing = { conversationId, clientMessageId: randomUUID(), text: "raced" };
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, index) => gql((index % 2 ? one : two).url, SEND, { input: racing }, a)),
    );
    const ids = new Set(results.map((result) => result.body.data?.sendMessage?.id));
    expect(ids.size).toBe(1);
    expect(await harness.db.message.count({ where: { conversationId } })).toBe(2);
    // The same clientMessageId from someone else is their own message.
    const fromB = await gql(one.url, SEND, { input }, b);
    expect(fromB.body.data.sendMessage.id).not.toBe(first.body.data.sendMessage.id);
  });

  it("should give concurrent senders contiguous seqs and page history both ways", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const [one, two] = [harness.instances[0]!, harness.instances[1]!];
    const conversationId = await createGroup(one.url, a, [b]);
    const sends = Array.from({ length: 16 }, (_, index) =>
      send((index % 2 ? one : two).url, index % 3 ? a : b, conversationId, `n${index}`),
    );
    const results = await Promise.all(sends);
    const seqs = results.map((result) => result.body.data.sendMessage.seq as number).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 16 }, (_, index) => index + 1));
    const latest = await gql(one.url, MESSAGES, { conversationId, first: 5 }, b);
    expect(latest.body.data.messages.messages.map((message: { seq: number }) => message.seq)).toEqual([
      12, 13, 14, 15, 16,
    ]);
    expect(latest.body.data.messages.hasMore).toBe(true);
    const older = await gql(one.url, MESSAGES, { conversationId, before: 12, first: 5 }, b);
    expect(older.body.data.messages.messages.map((message: { seq: number }) => message.seq)).toEqual([
      7, 8, 9, 10, 11,
    ]);
    const newer = await gql(one.url, MESSAGES, { conversationId, after: 14, first: 5 }, b);
    expect(newer.body.data.messages).toEqual({ hasMore: false, messages: expect.any(Array) });
    expect(newer.body.data.messages.messages.map((message: { seq: number }) => message.seq)).toEqual([
      15, 16,
    ]);
  });
});

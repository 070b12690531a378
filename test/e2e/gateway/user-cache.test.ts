import { randomUUID } from "node:crypto";
import { loadGatewayConfig, redisOptions, Redis } from "@hv/kit";
import { USER_CHANGES_CONNECTION_NAME } from "@hv/gateway/src/subscriptions/user-changes";
import { testEnv } from "../../support/system";
import {
  eventually,
  phone,
  startHarness,
  Subscription,
  type Harness,
  type Phone,
  type TestChatEvent,
} from "./harness";
import type { SignedIn } from "../../support/users-client";

const MY_EVENTS = `subscription Mine { myChatEvents { kind conversationId seq message { id seq text sender { id displayName } } } }`;

interface EventData {
  myChatEvents: { seq: number; message: { sender: { id: string; displayName: string } } | null };
}

function messageEvent(conversationId: string, seq: number, senderId: string): TestChatEvent {
  return {
    kind: "MESSAGE_ADDED",
    conversationId,
    seq,
    message: {
      id: randomUUID(),
      seq,
      text: `hello ${seq}`,
      clientMessageId: randomUUID(),
      createdAt: new Date().toISOString(),
      sender: { id: senderId },
    },
  };
}

const entityFetches = (h: Harness) => h.usersRequests.filter((body) => body.includes("_entities")).length;

/**
 * The gateway keeps users' public fields fetched for subscription events until Users says the
 * user changed (USER_CHANGED_CHANNEL). Answers are otherwise shared for 0 ms here, so every
 * fetch not sent is the cache's doing.
 */
describe("users' public fields kept at the gateway until the user changes", () => {
  let h: Harness;
  const phones: Phone[] = [];
  const subscribe = (token: string) => {
    const p = phone(h.wsUrl, { authorization: `Bearer ${token}` });
    phones.push(p);
    return new Subscription<EventData>(p.client, MY_EVENTS);
  };
  const person = (displayName: string): Promise<SignedIn> => h.client.signUp({ displayName });

  beforeAll(async () => {
    h = await startHarness({ subscriptions: { fetchShareMs: 0, warmSubscribers: false } });
    await eventually(
      () => h.gateway.subscriptionStats().userChangesLive,
      "the gateway to listen to user changes",
    );
  });
  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.dispose()));
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** Publishes one event to every member and returns each member's result and the fetches it cost. */
  async function deliver(
    members: Array<{ user: SignedIn; sub: Subscription<EventData> }>,
    conversationId: string,
    seq: number,
    sender: SignedIn,
  ) {
    const before = entityFetches(h);
    h.chat.publish(
      members.map((m) => m.user.userId),
      messageEvent(conversationId, seq, sender.userId),
    );
    const results = [];
    for (const member of members) results.push(await member.sub.nextResult());
    return { results, fetches: entityFetches(h) - before };
  }

  it("should fetch a sender once whatever the number of subscribers, then not again until they change", async () => {
    const bob = await person("Bob");
    const others = await Promise.all(Array.from({ length: 10 }, (_, i) => person(`Member ${i}`)));
    const all = [bob, ...others].map((user) => ({ user, sub: subscribe(user.accessToken) }));
    await eventually(() => h.chat.activeSubscriptions() === all.length, "11 upstream subscriptions");
    // Two members, the sender's own echo among them: one fetch, sent as nobody, for both (Bob's
    // profile is visible, so what everyone sees of it is what he sees).
    const pair = await deliver(all.slice(0, 2), "pair", 1, bob);
    expect(pair.results.map((r) => r.data?.myChatEvents.message?.sender.displayName)).toEqual(["Bob", "Bob"]);
    expect(pair.fetches).toBe(1);
    expect(
      h.usersReceived.filter((r) => r.body.includes("_entities")).at(-1)?.headers.authorization,
    ).toBeUndefined();
    // A new sender to eleven subscribers costs the same: fetches do not grow with subscribers.
    const carol = others[0]!;
    const group = await deliver(all, "group", 1, carol);
    expect(group.results.every((r) => r.data?.myChatEvents.message?.sender.displayName === "Member 0")).toBe(
      true,
    );
    expect(group.fetches).toBe(1);
    // Bob again, to everyone: nothing fetched, long after the 0 ms an answer is shared for.
    const again = await deliver(all, "group", 2, bob);
    expect(
      again.results.every(
        (r) => r.errors === undefined && r.data?.myChatEvents.message?.sender.displayName === "Bob",
      ),
    ).toBe(true);
    expect(again.fetches).toBe(0);
    const cachedCarol = await deliver(all, "group", 3, carol);
    expect(cachedCarol.fetches).toBe(0);
  });

  it("should show a new displayName on the very next event after the change", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const members = [ada, bob].map((user) => ({ user, sub: subscribe(user.accessToken) }));
    await eventually(() => h.chat.activeSubscriptions() === 2, "two upstream subscriptions");
    expect(
      (await deliver(members, "rename", 1, bob)).results.map(
        (r) => r.data?.myChatEvents.message?.sender.displayName,
      ),
    ).toEqual(["Bob", "Bob"]);
    expect((await deliver(members, "rename", 2, bob)).fetches).toBe(0);
    const rename = await h.client.request(
      `mutation { updateProfile(input: { displayName: "Robert" }) { id } }`,
      {},
      bob.accessToken,
    );
    expect(rename.body.errors).toBeUndefined();
    // No wait: Users published the change before it answered the mutation.
    const after = await deliver(members, "rename", 3, bob);
    expect(after.results.map((r) => r.data?.myChatEvents.message?.sender.displayName)).toEqual([
      "Robert",
      "Robert",
    ]);
    expect(after.fetches).toBe(1);
    expect((await deliver(members, "rename", 4, bob)).fetches).toBe(0);
  });

  it("should stop showing a sender who hides their profile to anyone but themselves at once", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const members = [ada, bob].map((user) => ({ user, sub: subscribe(user.accessToken) }));
    await eventually(() => h.chat.activeSubscriptions() === 2, "two upstream subscriptions");
    await deliver(members, "hide", 1, bob);
    const hide = await h.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      bob.accessToken,
    );
    expect(hide.body.errors).toBeUndefined();
    const { results, fetches } = await deliver(members, "hide", 2, bob);
    // The anonymous fetch finds no Bob; his own echo is fetched again with his token.
    expect(fetches).toBe(2);
    expect(h.usersReceived.filter((r) => r.body.includes("_entities")).at(-1)?.headers.authorization).toBe(
      `Bearer ${bob.accessToken}`,
    );
    expect(results[0]?.data?.myChatEvents.message).toBeNull();
    expect(results[0]?.errors?.[0]?.message).toBe(
      "Cannot return null for non-nullable field User.displayName.",
    );
    expect(results[1]?.data?.myChatEvents.message?.sender.displayName).toBe("Bob");
    // Visible again: back for everyone on the next event.
    const show = await h.client.request(
      `mutation { updateProfile(input: { visibility: VISIBLE }) { id } }`,
      {},
      bob.accessToken,
    );
    expect(show.body.errors).toBeUndefined();
    const shown = await deliver(members, "hide", 3, bob);
    expect(shown.results.map((r) => r.data?.myChatEvents.message?.sender.displayName)).toEqual([
      "Bob",
      "Bob",
    ]);
  });

  it("should keep no answer with errors: the next event asks Users again", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const members = [{ user: ada, sub: subscribe(ada.accessToken) }];
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    h.usersGate.current = async (body) =>
      body.includes("_entities")
        ? { data: { _entities: [null] }, errors: [{ message: "Users hiccuped", path: ["_entities", 0] }] }
        : undefined;
    try {
      const failed = await deliver(members, "errors", 1, bob);
      expect(failed.fetches).toBe(1);
      expect(failed.results[0]?.errors?.length).toBeGreaterThan(0);
    } finally {
      h.usersGate.current = undefined;
    }
    const next = await deliver(members, "errors", 2, bob);
    expect(next.fetches).toBe(1);
    expect(next.results[0]?.data?.myChatEvents.message?.sender.displayName).toBe("Bob");
    expect((await deliver(members, "errors", 3, bob)).fetches).toBe(0);
  });

  it("should stop resolving a sender whose account was deleted at once", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const members = [{ user: ada, sub: subscribe(ada.accessToken) }];
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    expect(
      (await deliver(members, "gone", 1, bob)).results[0]?.data?.myChatEvents.message?.sender.displayName,
    ).toBe("Bob");
    expect((await deliver(members, "gone", 2, bob)).fetches).toBe(0);
    const deleted = await h.client.request(
      `mutation($p: String!) { deleteAccount(password: $p) }`,
      { p: bob.password },
      bob.accessToken,
    );
    expect(deleted.body.errors).toBeUndefined();
    const after = await deliver(members, "gone", 3, bob);
    expect(after.fetches).toBe(1);
    // As for any sender Users does not resolve: the message is null, with the field error.
    expect(after.results[0]?.data?.myChatEvents.message).toBeNull();
    expect(after.results[0]?.errors?.[0]?.message).toBe(
      "Cannot return null for non-nullable field User.displayName.",
    );
  });

  it("should drop everything it kept when the change channel's connection is lost, and keep again once it is back", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const members = [{ user: ada, sub: subscribe(ada.accessToken) }];
    await eventually(() => h.chat.activeSubscriptions() === 1, "the upstream subscription");
    await deliver(members, "lost", 1, bob);
    expect((await deliver(members, "lost", 2, bob)).fetches).toBe(0);
    // Cut the gateway's listening connection (as a Redis restart or a network blip would).
    const admin = new Redis({ ...redisOptions(loadGatewayConfig(testEnv()).redis), lazyConnect: false });
    try {
      const clients = String(await admin.client("LIST")).split("\n");
      const ids = clients
        .filter((line) => line.includes(`name=${USER_CHANGES_CONNECTION_NAME} `))
        .map((line) => /\bid=(\d+)/.exec(line)?.[1]);
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) await admin.client("KILL", "ID", id!);
    } finally {
      admin.disconnect();
    }
    // A change published while it was away could not be seen: nothing kept survives the loss.
    await eventually(() => h.gateway.subscriptionStats().fetchesHeld === 0, "the kept answers to be dropped");
    await eventually(
      () => h.gateway.subscriptionStats().userChangesLive,
      "the channel to be subscribed again",
    );
    expect((await deliver(members, "lost", 3, bob)).fetches).toBe(1);
    expect((await deliver(members, "lost", 4, bob)).fetches).toBe(0);
  });
});

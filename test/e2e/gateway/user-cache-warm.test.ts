import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { loadGatewayConfig } from "@hv/kit";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import { subgraphUrlEnv, testEnv } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { countingProxy, createGroup, eventually, phone, Subscription, type Phone } from "./harness";

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq sender { id displayName } } }`;
const MY_EVENTS = `subscription { myChatEvents { kind conversationId seq message { text sender { id displayName } } } }`;

interface EventData {
  myChatEvents: {
    kind: string;
    conversationId: string;
    message: { text: string; sender: { id: string; displayName: string } } | null;
  } | null;
}

/** A port nothing listens on (Users stopped). */
async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/graphql`;
}

/**
 * The gateway fetches a subscriber's own public fields when their feed opens (gateway/src/
 * public-user-cache.ts `hold`), so their sends' answers and their partners' events need no Users
 * fetch; with the real subgraphs, Users behind a recording proxy.
 */
describe("a subscriber's public fields warmed at the gateway", () => {
  const fixture = useSystem({ CHAT_SEND_BURST: "1000" });
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let gateway: RunningGateway;
  let client: UsersClient;
  const phones: Phone[] = [];

  const gatewayWith = (usersUrl: string, logger = capturingLogger("gateway", "warn").logger) => {
    const { system } = fixture;
    return startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        ...subgraphUrlEnv(system.subgraphs),
        USERS_URL: usersUrl,
      }),
      logger,
    );
  };

  beforeAll(async () => {
    proxy = await countingProxy(fixture.system.subgraphs.users.url);
    gateway = await gatewayWith(proxy.url);
    client = new UsersClient(gateway.url);
    await eventually(
      () => gateway.subscriptionStats().userChangesLive,
      "the gateway to listen to user changes",
    );
  });
  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.dispose()));
  });
  afterAll(async () => {
    await gateway?.stop();
    await proxy?.close();
  });

  const entityFetches = () => proxy.received.filter((r) => r.body.includes("_entities"));
  const warmFetches = () => entityFetches().filter((r) => r.body.includes("WarmPublicUsers"));
  const person = (displayName: string) => fixture.client.signUp({ displayName });
  const subscribe = (via: RunningGateway, who: SignedIn) => {
    const p = phone(via.url.replace(/^http/, "ws"), { authorization: `Bearer ${who.accessToken}` });
    phones.push(p);
    return new Subscription<EventData>(p.client, MY_EVENTS);
  };
  /** Waits until every warming fetch asked for so far has answered. */
  const warmed = (users: SignedIn[]) =>
    eventually(() => {
      const asked = warmFetches().map((r) => r.body);
      return users.every((u) => asked.some((body) => body.includes(u.userId))) && !hasWarmInFlight();
    }, "the warming fetches");
  const hasWarmInFlight = () => {
    const stats = gateway.userCacheStats();
    return stats.warmSettled < stats.warmFetches;
  };

  /** Ada sends through the gateway; the answer, Bob's event and the Users entity fetches in between. */
  async function send(from: SignedIn, conversationId: string, text: string, to: Subscription<EventData>) {
    const before = entityFetches().length;
    const response = await client.request<{ sendMessage: { sender: { displayName: string } } }>(
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text } },
      from.accessToken,
    );
    let event;
    do event = await to.nextResult();
    while (event.data?.myChatEvents?.message?.text !== text);
    return { response: response.body, event, fetches: entityFetches().slice(before) };
  }

  it("should answer a send and the partner's event with no Users fetch, and show a change on the next event", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "warm");
    const before = gateway.userCacheStats();
    subscribe(gateway, ada);
    const bobs = subscribe(gateway, bob);
    await warmed([ada, bob]);
    // Both subscribers in one fetch, as nobody.
    const fetched = warmFetches();
    expect(fetched.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(gateway.userCacheStats().warmFetches - before.warmFetches).toBeLessThanOrEqual(2);
    expect(gateway.userCacheStats().warmed - before.warmed).toBe(2);

    const first = await send(ada, conversationId, "one", bobs);
    expect(first.response.errors).toBeUndefined();
    expect(first.response.data?.sendMessage.sender.displayName).toBe("Ada");
    expect(first.event.data?.myChatEvents?.message?.sender).toEqual({ id: ada.userId, displayName: "Ada" });
    expect(first.fetches).toHaveLength(0);

    const renamed = await fixture.client.request(
      `mutation { updateProfile(input: { displayName: "Adeline" }) { id } }`,
      {},
      ada.accessToken,
    );
    expect(renamed.body.errors).toBeUndefined();
    // No wait: Users published the change before it answered, and the kept entity went with it.
    const second = await send(ada, conversationId, "two", bobs);
    expect(second.response.data?.sendMessage.sender.displayName).toBe("Adeline");
    expect(second.event.data?.myChatEvents?.message?.sender.displayName).toBe("Adeline");
    // Fetched again for her while she is subscribed: the next send needs nothing.
    await eventually(
      () => warmFetches().filter((r) => r.body.includes(ada.userId)).length >= 2,
      "Ada warmed again after her change",
    );
    await warmed([ada]);
    const third = await send(ada, conversationId, "three", bobs);
    expect(third.event.data?.myChatEvents?.message?.sender.displayName).toBe("Adeline");
    expect(third.fetches).toHaveLength(0);
  });

  it("should neither keep nor serve a hidden subscriber's fields", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "hidden");
    const hide = await fixture.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      ada.accessToken,
    );
    expect(hide.body.errors).toBeUndefined();
    subscribe(gateway, ada);
    const bobs = subscribe(gateway, bob);
    await eventually(() => warmFetches().some((r) => r.body.includes(ada.userId)), "a warming fetch for Ada");
    await warmed([bob]);
    // Null to nobody: never kept. Her own answer comes with her token; Bob's event does not show her.
    const sent = await send(ada, conversationId, "hidden", bobs);
    expect(sent.response.data?.sendMessage.sender.displayName).toBe("Ada");
    expect(sent.fetches.some((r) => r.headers.authorization === `Bearer ${ada.accessToken}`)).toBe(true);
    expect(JSON.stringify(sent.event)).not.toContain('"displayName":"Ada"');
    expect(sent.event.errors?.length).toBeGreaterThan(0);
  });

  it("should stop keeping a subscriber who hides after being warmed", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "later");
    subscribe(gateway, ada);
    const bobs = subscribe(gateway, bob);
    await warmed([ada, bob]);
    const hide = await fixture.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      ada.accessToken,
    );
    expect(hide.body.errors).toBeUndefined();
    await eventually(
      () => warmFetches().filter((r) => r.body.includes(ada.userId)).length >= 2,
      "Ada asked again after her change",
    );
    const sent = await send(ada, conversationId, "gone", bobs);
    expect(JSON.stringify(sent.event)).not.toContain('"displayName":"Ada"');
    expect(sent.event.errors?.length).toBeGreaterThan(0);
  });

  it("should accept subscriptions as before when Users is stopped, and tell the failure once", async () => {
    const log = capturingLogger("gateway", "warn");
    const away = await gatewayWith(await deadUrl(), log.logger);
    try {
      await eventually(
        () => away.subscriptionStats().userChangesLive,
        "the gateway to listen to user changes",
      );
      const [ada, bob, dan] = [await person("Ada"), await person("Bob"), await person("Dan")];
      const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob, dan], "away");
      const bobs = subscribe(away, bob);
      await eventually(() => away.userCacheStats().warmFailures >= 1, "a failed warming fetch");
      const dans = subscribe(away, dan);
      await eventually(() => away.userCacheStats().warmFailures >= 2, "a second failed warming fetch");
      expect(
        log.lines.filter((line) => String(line.msg).startsWith("could not warm users' public fields")),
      ).toHaveLength(1);
      // The feeds run: a message (sent through the gateway with Users) reaches both, its sender
      // unresolved as by any gateway that cannot reach Users.
      const sent = await fixture.client.request(
        SEND,
        { input: { conversationId, clientMessageId: randomUUID(), text: "through" } },
        ada.accessToken,
      );
      expect(sent.body.errors).toBeUndefined();
      for (const sub of [bobs, dans]) {
        const event = await sub.nextResult();
        expect(sub.ended).toBe(false);
        expect(event.errors?.length).toBeGreaterThan(0);
      }
    } finally {
      await away.stop();
    }
  });
});

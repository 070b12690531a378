import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Supergraph } from "@apollo/federation-internals";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import { start as startGateway, SUPERGRAPH_PATH, type RunningGateway } from "@hv/gateway";
import { PublicUserCache } from "@hv/gateway/src/public-user-cache";
import { SubgraphDataSource, type GatewayContext } from "@hv/gateway/src/subgraph-data-source";
import { createSubgraphFetcher } from "@hv/gateway/src/subgraph-fetcher";
import { listenToUserChanges } from "@hv/gateway/src/subscriptions/user-changes";
import { loadGatewayConfig } from "@hv/kit";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import { subgraphUrlEnv, testEnv } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { createGroup, eventually } from "./harness";

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq sender { id displayName } } }`;
const MESSAGES = `query($id: ID!) { messages(conversationId: $id, first: 50) { messages { seq text sender { id displayName } } } }`;

interface Proxied {
  body: string;
  authorization: string | undefined;
}

/** A reverse proxy in front of Users that records every request reaching it. */
async function recordingProxy(target: string) {
  const received: Proxied[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (req.method === "POST") received.push({ body, authorization: req.headers.authorization });
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === "string" && !["host", "content-length", "connection"].includes(name))
          headers[name] = value;
      void fetch(new URL(req.url ?? "/", target), {
        method: req.method ?? "GET",
        headers,
        ...(req.method === "POST" ? { body } : {}),
      }).then(
        async (response) => {
          res.statusCode = response.status;
          const cacheControl = response.headers.get("cache-control");
          if (cacheControl) res.setHeader("cache-control", cacheControl);
          res.setHeader("content-type", response.headers.get("content-type") ?? "application/json");
          res.end(Buffer.from(await response.arrayBuffer()));
        },
        () => {
          res.statusCode = 502;
          res.end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The gateway's user cache on the query and mutation path (gateway/src/public-user-cache.ts), with
 * the real subgraphs: `cached` reaches Users through a recording proxy; `reference` is a gateway
 * with the cache off (userCacheMs 0), which answers exactly as the gateway did before it.
 */
describe("users' public fields kept at the gateway for queries and mutations", () => {
  const fixture = useSystem({ CHAT_SEND_BURST: "1000" });
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let cached: RunningGateway;
  let reference: RunningGateway;
  let viaCached: UsersClient;
  let viaReference: UsersClient;

  const gatewayWith = (usersUrl: string, userCacheMs?: number) => {
    const { system } = fixture;
    return startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        ...subgraphUrlEnv(system.subgraphs),
        USERS_URL: usersUrl,
      }),
      capturingLogger("gateway", "warn").logger,
      userCacheMs === undefined ? {} : { subscriptions: { userCacheMs } },
    );
  };

  beforeAll(async () => {
    proxy = await recordingProxy(fixture.system.subgraphs.users.url);
    cached = await gatewayWith(proxy.url);
    reference = await gatewayWith(fixture.system.subgraphs.users.url, 0);
    viaCached = new UsersClient(cached.url);
    viaReference = new UsersClient(reference.url);
    await eventually(
      () => cached.subscriptionStats().userChangesLive,
      "the gateway to listen to user changes",
    );
  });
  afterAll(async () => {
    await cached?.stop();
    await reference?.stop();
    await proxy?.close();
  });

  const entityFetches = () => proxy.received.filter((r) => r.body.includes("_entities"));
  const person = (displayName: string) => fixture.client.signUp({ displayName });

  /** A group of `owner` and `members`, each member invited and accepting. */
  const group = (owner: SignedIn, members: SignedIn[]) =>
    createGroup(fixture.client, fixture.dbs, owner, members, "cache");

  /** Sends through the cached gateway: the answer and the Users entity fetches it cost. */
  async function send(who: SignedIn, conversationId: string, text: string) {
    const before = entityFetches().length;
    const response = await viaCached.request<{
      sendMessage: { seq: number; sender: { displayName: string } };
    }>(SEND, { input: { conversationId, clientMessageId: randomUUID(), text } }, who.accessToken);
    return { response, fetches: entityFetches().slice(before) };
  }

  /** `messages` as `who` through both gateways: the cached one's answer, the reference's, the fetches. */
  async function messagesBoth(who: SignedIn, conversationId: string) {
    const before = entityFetches().length;
    const mine = await viaCached.request(MESSAGES, { id: conversationId }, who.accessToken);
    const fetches = entityFetches().slice(before);
    const theirs = await viaReference.request(MESSAGES, { id: conversationId }, who.accessToken);
    return { mine: mine.body, theirs: theirs.body, fetches };
  }

  it("should answer a send's sender from the cache once it is kept, and show a new displayName at once", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await group(ada, [bob]);
    const first = await send(ada, conversationId, "one");
    expect(first.response.body.errors).toBeUndefined();
    expect(first.response.body.data?.sendMessage.sender).toEqual({ id: ada.userId, displayName: "Ada" });
    // A miss is fetched as nobody, and kept.
    expect(first.fetches.map((f) => f.authorization)).toEqual([undefined]);
    const second = await send(ada, conversationId, "two");
    expect(second.response.body.data?.sendMessage.sender.displayName).toBe("Ada");
    expect(second.fetches).toHaveLength(0);
    const hits = cached.userCacheStats().hits;
    expect(hits).toBeGreaterThan(0);
    const metrics = await (await fetch(cached.metricsUrl)).text();
    expect(metrics).toMatch(/hv_gateway_user_cache_entities_total\{outcome="hit",service="gateway"\} [1-9]/);

    const renamed = await fixture.client.request(
      `mutation { updateProfile(input: { displayName: "Adeline" }) { id } }`,
      {},
      ada.accessToken,
    );
    expect(renamed.body.errors).toBeUndefined();
    // No wait: Users published the change before it answered the mutation.
    const third = await send(ada, conversationId, "three");
    expect(third.response.body.data?.sendMessage.sender.displayName).toBe("Adeline");
    expect(third.fetches).toHaveLength(1);
    const page = await messagesBoth(bob, conversationId);
    expect(page.mine).toEqual(page.theirs);
    expect(page.fetches).toHaveLength(0);
  });

  it("should send only the missing users of a page, and answer it as before", async () => {
    const [ada, bob, dan] = [await person("Ada"), await person("Bob"), await person("Dan")];
    const conversationId = await group(ada, [bob, dan]);
    for (const who of [ada, bob, dan])
      expect((await send(who, conversationId, "hi")).fetches).toHaveLength(1);
    // Bob's and Dan's kept entries go (a change each); Ada's stays.
    for (const [who, bio] of [
      [bob, "b"],
      [dan, "d"],
    ] as const) {
      const changed = await fixture.client.request(
        `mutation($b: String) { updateProfile(input: { bio: $b }) { id } }`,
        { b: bio },
        who.accessToken,
      );
      expect(changed.body.errors).toBeUndefined();
    }
    const page = await messagesBoth(ada, conversationId);
    expect(page.mine).toEqual(page.theirs);
    expect(page.fetches).toHaveLength(1);
    const sent = JSON.parse(page.fetches[0]!.body) as {
      variables: { representations: Array<{ id: string }> };
    };
    expect(sent.variables.representations.map((r) => r.id).sort()).toEqual([bob.userId, dan.userId].sort());
    expect(page.fetches[0]!.authorization).toBeUndefined();
    const again = await messagesBoth(ada, conversationId);
    expect(again.mine).toEqual(page.mine);
    expect(again.fetches).toHaveLength(0);
  });

  it("should hide a hidden sender at once, with the same error as before, and still show them their own profile", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await group(ada, [bob]);
    await send(bob, conversationId, "from Bob");
    expect((await send(bob, conversationId, "again")).fetches).toHaveLength(0);
    const hide = await fixture.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      bob.accessToken,
    );
    expect(hide.body.errors).toBeUndefined();
    const page = await messagesBoth(ada, conversationId);
    expect(page.mine).toEqual(page.theirs);
    expect(JSON.stringify(page.mine)).toContain(
      "Cannot return null for non-nullable field User.displayName.",
    );
    // Bob's own send: null to nobody, so the fetch goes again with his token, and he sees himself.
    const own = await send(bob, conversationId, "still me");
    expect(own.response.body.data?.sendMessage.sender.displayName).toBe("Bob");
    expect(own.fetches.map((f) => f.authorization)).toEqual([undefined, `Bearer ${bob.accessToken}`]);
    // Never kept: the next one asks again.
    expect((await send(bob, conversationId, "and again")).fetches).toHaveLength(2);
  });

  it("should stop resolving a banned sender at once, with the same error as before", async () => {
    const [ada, bob, mod] = [await person("Ada"), await person("Bob"), await person("Mod")];
    const conversationId = await group(ada, [bob]);
    await send(bob, conversationId, "from Bob");
    const warm = await messagesBoth(ada, conversationId);
    expect(warm.fetches).toHaveLength(0);
    await fixture.dbs.users.user.update({ where: { id: mod.userId }, data: { role: "MODERATOR" } });
    const session = (await fixture.client.logIn(mod.email, mod.password)).body.data?.logIn;
    const banned = await fixture.client.request(
      `mutation($id: ID!) { banUser(userId: $id) }`,
      { id: bob.userId },
      session?.accessToken,
    );
    expect(banned.body.errors).toBeUndefined();
    const page = await messagesBoth(ada, conversationId);
    expect(page.mine).toEqual(page.theirs);
    expect(page.fetches).toHaveLength(1);
    expect(JSON.stringify(page.mine)).toContain(
      "Cannot return null for non-nullable field User.displayName.",
    );
  });

  it("should stop resolving a deleted sender at once, with the same error as before", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await group(ada, [bob]);
    await send(bob, conversationId, "from Bob");
    expect((await messagesBoth(ada, conversationId)).fetches).toHaveLength(0);
    const deleted = await fixture.client.request(
      `mutation($p: String!) { deleteAccount(password: $p) }`,
      { p: bob.password },
      bob.accessToken,
    );
    expect(deleted.body.errors).toBeUndefined();
    // Chat drops a deleted account's messages when it hears of it (user.deleted), so the two
    // gateways' answers may differ by when they asked; neither shows Bob.
    const page = await messagesBoth(ada, conversationId);
    expect(JSON.stringify(page.mine)).not.toContain('"Bob"');
    expect(page.fetches.length).toBeLessThanOrEqual(1);
  });

  it("should send a fetch with a field that is not public to Users with the viewer's token, every time", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    const conversationId = await group(ada, [bob]);
    await send(bob, conversationId, "from Bob");
    const query = `query($id: ID!) { messages(conversationId: $id, first: 50) { messages { sender { displayName email } } } }`;
    for (const round of [1, 2]) {
      const before = entityFetches().length;
      const mine = await viaCached.request(query, { id: conversationId }, ada.accessToken);
      const theirs = await viaReference.request(query, { id: conversationId }, ada.accessToken);
      expect(mine.body).toEqual(theirs.body);
      const fetches = entityFetches().slice(before);
      expect([round, fetches.map((f) => f.authorization)]).toEqual([round, [`Bearer ${ada.accessToken}`]]);
    }
  });
});

/**
 * Misses of fetches made in one turn of the event loop go to Users in one fetch as nobody
 * (gateway/src/public-user-cache.ts): each caller still gets what it got alone. The cache is
 * driven directly (the executor's calls, made in one turn, are what a burst of requests and events
 * makes), in front of the real Users through a recording proxy; `reference` is the same data
 * source without the cache.
 */
describe("misses of one turn of the loop sent to Users together", () => {
  const fixture = useSystem();
  const TEXT = (name: string) =>
    `query ${name}($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;
  const { logger } = capturingLogger("gateway", "warn");
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let fetcher: ReturnType<typeof createSubgraphFetcher>;
  let userChanges: ReturnType<typeof listenToUserChanges>;
  let reference: SubgraphDataSource;
  let cache: PublicUserCache;
  let cached: ReturnType<PublicUserCache["wrap"]>;

  beforeAll(async () => {
    proxy = await recordingProxy(fixture.system.subgraphs.users.url);
    fetcher = createSubgraphFetcher(10_000);
    userChanges = listenToUserChanges(loadGatewayConfig(testEnv()).redis, logger);
    reference = new SubgraphDataSource({
      subgraphName: "users",
      url: fixture.system.subgraphs.users.url,
      fetcher: fetcher.fetch,
    });
    cache = new PublicUserCache({ keepMs: 60_000, maxUsers: 1_000, userChanges });
    const schema = Supergraph.build(readFileSync(SUPERGRAPH_PATH, "utf8")).apiSchema().toGraphQLJSSchema();
    cache.setSupergraph({ version: "test", schema });
    cached = cache.wrap(
      new SubgraphDataSource({ subgraphName: "users", url: proxy.url, fetcher: fetcher.fetch }),
    );
    await eventually(() => userChanges.live, "the cache to listen to user changes");
  });
  afterAll(async () => {
    await userChanges?.stop();
    await fetcher?.close();
    await proxy?.close();
  });

  const entityFetches = () => proxy.received.filter((r) => r.body.includes("_entities"));
  const contextOf = (who: SignedIn | null): GatewayContext => ({
    requestId: randomUUID(),
    logger,
    viewer: who ? { userId: who.userId, sessionId: randomUUID(), role: "USER" } : null,
    clientIp: "127.0.0.1",
    authorization: who ? `Bearer ${who.accessToken}` : null,
  });
  /** The executor's call for `ids` as `who` (null: an event's fetch as nobody). */
  const fetchOf = (name: string, who: SignedIn | null, ids: string[]) => () =>
    ({
      kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
      request: {
        query: TEXT(name),
        variables: { representations: ids.map((id) => ({ __typename: "User", id })) },
      },
      context: contextOf(who),
      incomingRequestContext: {},
    }) as unknown as Parameters<SubgraphDataSource["process"]>[0];

  it("should send every caller's misses in one fetch and answer each as alone, a hidden owner with their token", async () => {
    const [ada, bob, carl, dan] = await Promise.all(
      ["Ada", "Bob", "Carl", "Dan"].map((displayName) => fixture.client.signUp({ displayName })),
    );
    const hidden = await fixture.client.request(
      `mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`,
      {},
      bob!.accessToken,
    );
    expect(hidden.body.errors).toBeUndefined();
    const calls = [
      fetchOf("A__users__1", ada!, [bob!.userId, carl!.userId]), // Bob is null to Ada
      fetchOf("B__users__2", bob!, [bob!.userId, dan!.userId]), // Bob's own hidden profile: his token
      fetchOf("C__users__1", null, [carl!.userId, dan!.userId, ada!.userId]), // an event, as nobody
    ];
    const before = entityFetches().length;
    const fetchesBefore = cache.stats.fetches;
    const answers = await Promise.all(calls.map((call) => cached.process(call())));
    const sent = entityFetches().slice(before);
    const expected = await Promise.all(calls.map((call) => reference.process(call())));
    expect(answers.map((a) => ({ data: a.data, errors: a.errors }))).toEqual(
      expected.map((a) => ({ data: a.data, errors: a.errors })),
    );
    expect((answers[1]!.data as { _entities: unknown[] })._entities[0]).toEqual({ displayName: "Bob" });
    expect((answers[0]!.data as { _entities: unknown[] })._entities[0]).toBeNull();
    // One fetch as nobody for the four users, then Bob's own fetch again with his token.
    expect(cache.stats.fetches - fetchesBefore).toBe(1);
    expect(sent.map((f) => f.authorization)).toEqual([undefined, `Bearer ${bob!.accessToken}`]);
    const batch = JSON.parse(sent[0]!.body) as { variables: { representations: Array<{ id: string }> } };
    expect(batch.variables.representations.map((r) => r.id)).toEqual([
      bob!.userId,
      carl!.userId,
      dan!.userId,
      ada!.userId,
    ]);
    // Kept: the same calls again cost Users only Bob's own fetch (null to nobody is never kept).
    const again = entityFetches().length;
    const second = await Promise.all(calls.map((call) => cached.process(call())));
    expect(second.map((a) => a.data)).toEqual(answers.map((a) => a.data));
    expect(
      entityFetches()
        .slice(again)
        .map((f) => f.authorization),
    ).toEqual([undefined, `Bearer ${bob!.accessToken}`]);
  });

  it("should fail every caller of a batch that cannot reach Users, and keep nothing", async () => {
    const dead = http.createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/graphql`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const unreachable = new PublicUserCache({ keepMs: 60_000, maxUsers: 1_000, userChanges });
    const schema = Supergraph.build(readFileSync(SUPERGRAPH_PATH, "utf8")).apiSchema().toGraphQLJSSchema();
    unreachable.setSupergraph({ version: "test", schema });
    const source = unreachable.wrap(
      new SubgraphDataSource({ subgraphName: "users", url, fetcher: fetcher.fetch }),
    );
    const [ada, bob] = await Promise.all(
      ["Ada", "Bob"].map((displayName) => fixture.client.signUp({ displayName })),
    );
    const outcomes = await Promise.allSettled([
      source.process(fetchOf("A__users__1", ada!, [bob!.userId])()),
      source.process(fetchOf("C__users__1", null, [ada!.userId])()),
    ]);
    expect(unreachable.stats.fetches).toBe(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      const reason = (outcome as PromiseRejectedResult).reason as { extensions?: { code?: unknown } };
      expect(reason.extensions?.code).toBe("UPSTREAM_UNAVAILABLE");
    }
    expect(unreachable.size()).toBe(0);
  });
});

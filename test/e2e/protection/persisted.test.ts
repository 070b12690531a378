import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { buildManifest, MANIFEST_PATH, renderManifest, sha256Hex } from "@hv/gateway/src/protection";
import { eventually, phone, startHarness, Subscription, type Harness } from "../gateway/harness";
import { codes, post, randomIpv6, startLightGateway, type LightGateway } from "./support";

const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

describe("automatic persisted queries, shared by every replica through Redis", () => {
  let one: LightGateway;
  let two: LightGateway;
  beforeAll(async () => {
    one = await startLightGateway();
    two = await startLightGateway({}, { subgraph: one.subgraph, keyPrefix: one.keyPrefix });
  });
  afterAll(async () => {
    await two?.stop();
    await one?.stop();
  });

  it("should ask for the text once, then run the hash alone on any replica", async () => {
    const query = `query Echo($t: String) { echo(text: $t) } # ${randomUUID()}`;
    const hash = sha256Hex(query);
    const unknown = await post(one.url, { extensions: persisted(hash), variables: { t: "a" } });
    expect(codes(unknown)).toEqual(["PERSISTED_QUERY_NOT_FOUND"]);
    const registered = await post(one.url, { query, extensions: persisted(hash), variables: { t: "b" } });
    expect(registered.body).toEqual({ data: { echo: "b" } });
    // Apollo stores it after the response; the other replica finds it in Redis.
    await eventually(
      async () =>
        (await post(two.url, { extensions: persisted(hash), variables: { t: "c" } })).body.data?.echo === "c",
      "replica two to run the hash",
    );
    // GET with the hash alone (what CDNs cache), with the CSRF header a native app always sends.
    const url = `${two.url}?extensions=${encodeURIComponent(JSON.stringify(persisted(hash)))}&variables=${encodeURIComponent('{"t":"d"}')}`;
    const get = await fetch(url, { headers: { "apollo-require-preflight": "true" } });
    expect(await get.json()).toEqual({ data: { echo: "d" } });
  });

  it("should refuse a text whose hash is not the one sent", async () => {
    const reply = await post(one.url, {
      query: '{ echo(text: "x") }',
      extensions: persisted("0".repeat(64)),
    });
    expect(reply.status).toBe(400);
    expect(reply.body.errors?.[0]?.message).toMatch(/does not match/);
  });
});

describe("safelist mode (GATEWAY_OPERATIONS=safelist)", () => {
  const ops = `
    query Echo($t: String) { echo(text: $t) }
    mutation Like($id: ID) { like(userId: $id) }
  `;
  let dir: string;
  let g: LightGateway;
  let echo: { id: string; body: string };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "hv-safelist-"));
    writeFileSync(path.join(dir, "app.graphql"), ops);
    const manifest = buildManifest(dir);
    const found = manifest.operations.find((o) => o.name === "Echo");
    if (!found) throw new Error("no Echo in the test manifest");
    echo = found;
    g = await startLightGateway({ GATEWAY_OPERATIONS: "safelist" }, { safelistManifest: manifest });
  });
  afterAll(async () => {
    await g?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("should run a listed operation by its hash alone, over POST and GET", async () => {
    expect((await post(g.url, { extensions: persisted(echo.id), variables: { t: "hi" } })).body).toEqual({
      data: { echo: "hi" },
    });
    const url = `${g.url}?extensions=${encodeURIComponent(JSON.stringify(persisted(echo.id)))}&variables=${encodeURIComponent('{"t":"g"}')}`;
    const get = await fetch(url, { headers: { "apollo-require-preflight": "true" } });
    expect(await get.json()).toEqual({ data: { echo: "g" } });
  });

  it("should run a listed operation sent as its exact text", async () => {
    expect((await post(g.url, { query: echo.body, variables: { t: "x" } })).body).toEqual({
      data: { echo: "x" },
    });
  });

  it("should refuse anything else with PERSISTED_QUERY_NOT_ALLOWED, before it reaches a subgraph", async () => {
    const before = g.subgraph.requests.length;
    const attempts = [
      { query: '{ echo(text: "not listed") }' },
      // A listed operation reformatted is a different document.
      { query: echo.body.replace(/\n\s*/g, " ") },
      // APQ registration of a new operation is not possible either.
      { query: "{ thing { id } }", extensions: persisted(sha256Hex("{ thing { id } }")) },
      { extensions: persisted("f".repeat(64)) },
      // The hash of one operation with the text of another.
      { query: "{ thing { id } }", extensions: persisted(echo.id) },
      { extensions: "not an object" },
      {},
    ];
    for (const body of attempts) {
      const reply = await post(g.url, body, { "x-forwarded-for": randomIpv6() });
      expect({ body, status: reply.status, codes: codes(reply) }).toEqual({
        body,
        status: 400,
        codes: ["PERSISTED_QUERY_NOT_ALLOWED"],
      });
    }
    const get = await fetch(`${g.url}?query=${encodeURIComponent("{ thing { id } }")}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(get.status).toBe(400);
    expect(
      ((await get.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code,
    ).toBe("PERSISTED_QUERY_NOT_ALLOWED");
    expect(g.subgraph.requests.length).toBe(before);
  });
});

describe("the committed manifest", () => {
  it("should be up to date with operations/ (run `pnpm run operations:manifest`)", () => {
    expect(readFileSync(MANIFEST_PATH, "utf8")).toBe(renderManifest(buildManifest()));
  });

  it("should hold every named operation once, its id the SHA-256 of its body", () => {
    const manifest = buildManifest();
    expect(new Set(manifest.operations.map((o) => o.name)).size).toBe(manifest.operations.length);
    for (const operation of manifest.operations) expect(sha256Hex(operation.body)).toBe(operation.id);
    // Fragments travel with the operations that use them.
    const send = manifest.operations.find((o) => o.name === "ChatSendMessage");
    expect(send?.body).toMatch(/fragment ChatMessageFields on Message/);
    expect(manifest.operations.find((o) => o.name === "ChatMarkRead")?.body).not.toMatch(/fragment/);
  });
});

describe("subscriptions over WebSocket in safelist mode, and their budget (test chat subgraph)", () => {
  const MINE = `subscription Mine { myChatEvents { kind conversationId seq } }`;
  let h: Harness;
  const saved = { ...process.env };
  beforeAll(async () => {
    process.env.GATEWAY_OPERATIONS = "safelist";
    process.env.GATEWAY_RATE_LIMIT_SUBSCRIBE = "3/1m";
    const manifest = {
      format: "apollo-persisted-query-manifest" as const,
      version: 1 as const,
      operations: [{ id: sha256Hex(MINE), name: "Mine", type: "subscription" as const, body: MINE }],
    };
    h = await startHarness({
      safelistManifest: manifest,
      protectionKeyPrefix: `hvtest:protection:${randomUUID()}`,
    });
  });
  afterAll(async () => {
    process.env = saved;
    await h?.stop();
  });

  it("should run a listed subscription by hash, refuse others, and count subscribes per user", async () => {
    // Signing up is not on this safelist: a token from the same keys as Users.
    const { token } = await h.accessTokens.issue({
      userId: randomUUID(),
      sessionId: randomUUID(),
      role: "USER",
    });
    const p = phone(h.wsUrl, { authorization: `Bearer ${token}` });
    try {
      // graphql-ws needs a query string: the app sends an empty one and the hash in extensions.
      const client = p.client;
      const listed = await new Promise<{ ok: boolean; error?: unknown }>((resolve) => {
        const dispose = client.subscribe(
          { query: "", extensions: persisted(sha256Hex(MINE)) },
          {
            next: () => undefined,
            error: (error) => resolve({ ok: false, error }),
            complete: () => resolve({ ok: true }),
          },
        );
        void eventually(() => h.chat.activeSubscriptions() >= 1, "the upstream subscription").then(
          () => {
            dispose();
            resolve({ ok: true });
          },
          (error: unknown) => resolve({ ok: false, error }),
        );
      });
      expect(listed).toEqual({ ok: true });
      const other = new Subscription(p.client, `subscription { myChatEvents { kind } }`);
      const refused = (await other.ending()) as Array<{ extensions?: Record<string, unknown> }>;
      expect(refused[0]?.extensions?.code).toBe("PERSISTED_QUERY_NOT_ALLOWED");
      // Budget 3 per minute: the listed one counted, the refused one did not (refused first). Two
      // more pass, the next is RATE_LIMITED.
      const second = new Subscription(p.client, MINE);
      const third = new Subscription(p.client, MINE);
      // Identical subscriptions share one upstream subscription.
      await eventually(
        () => h.chat.activeSubscriptions() >= 1 || second.ended || third.ended,
        "two more subscriptions",
      );
      const fourth = new Subscription(p.client, MINE);
      const limited = (await fourth.ending()) as Array<{ extensions?: Record<string, unknown> }>;
      expect(limited[0]?.extensions?.code).toBe("RATE_LIMITED");
      expect(limited[0]?.extensions?.retryAfterSeconds).toBeGreaterThan(0);
      expect([second.error, third.error]).toEqual([undefined, undefined]);
      second.dispose();
      third.dispose();
    } finally {
      await p.dispose();
    }
  });
});

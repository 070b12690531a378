import {
  codes,
  post,
  randomIpv4,
  randomIpv6,
  startLightGateway,
  startTokenAuthority,
  type LightGateway,
  type Reply,
} from "./support";

function expectLimited(reply: Reply, limit: string) {
  expect({
    status: reply.status,
    codes: codes(reply),
    limit: reply.body.errors?.[0]?.extensions?.limit,
  }).toEqual({
    status: 429,
    codes: ["RATE_LIMITED"],
    limit,
  });
  const retryAfter = Number(reply.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(0);
  expect(reply.body.errors?.[0]?.extensions?.retryAfterSeconds).toBe(retryAfter);
}

describe("rate limits at the edge (real gateway, budgets in Redis)", () => {
  let g: LightGateway;
  let authority: Awaited<ReturnType<typeof startTokenAuthority>>;
  beforeAll(async () => {
    authority = await startTokenAuthority();
    g = await startLightGateway({
      AUTH_JWKS_URL: authority.jwksUrl,
      GATEWAY_RATE_LIMIT_IP: "8/1m",
      GATEWAY_RATE_LIMIT_USER: "6/1m",
      GATEWAY_RATE_LIMIT_LOGIN: "3/15m",
      GATEWAY_RATE_LIMIT_SIGNUP: "2/1h",
      GATEWAY_RATE_LIMIT_SWIPE: "4/1h",
      GATEWAY_RATE_LIMIT_SEND_MESSAGE: "3/1m",
      GATEWAY_RATE_LIMIT_CREATE_UPLOAD: "2/1h",
      GATEWAY_RATE_LIMIT_SUBSCRIBE: "2/1m",
    });
  });
  afterAll(async () => {
    await g?.stop();
    await authority?.close();
  });
  const from = (ip: string, token?: string) => ({
    "x-forwarded-for": ip,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  });

  it("should count every aliased logIn, and refuse the whole request over budget before any subgraph sees it", async () => {
    const ip = randomIpv4();
    const before = g.subgraph.requests.length;
    const fourLogIns = `mutation { a: logIn(email: "a") b: logIn(email: "b") c: logIn(email: "c") d: logIn(email: "d") }`;
    expectLimited(await post(g.url, { query: fourLogIns }, from(ip)), "edge-login");
    expect(g.subgraph.requests.length).toBe(before);
    // Those four points were spent: one more logIn from the address is over the budget of 3 too.
    expectLimited(await post(g.url, { query: `mutation { logIn(email: "x") }` }, from(ip)), "edge-login");
    // Another address has its own budget.
    const elsewhere = await post(g.url, { query: `mutation { logIn(email: "x") }` }, from(randomIpv4()));
    expect(elsewhere.body).toEqual({ data: { logIn: true } });
  });

  it("should count logIn reached through fragments and inline fragments", async () => {
    const ip = randomIpv6();
    const viaFragments = `mutation { ...A ... on Mutation { logIn(email: "b") } } fragment A on Mutation { x: logIn(email: "a") y: logIn(email: "c") }`;
    const first = await post(g.url, { query: viaFragments }, from(ip));
    expect(first.body).toEqual({ data: { x: true, y: true, logIn: true } });
    expectLimited(await post(g.url, { query: `mutation { logIn(email: "x") }` }, from(ip)), "edge-login");
  });

  it("should count an IPv6 /64 as one address", async () => {
    const prefix = randomIpv6().split(":").slice(0, 4).join(":");
    await post(
      g.url,
      { query: `mutation { a: signUp(email: "a") b: signUp(email: "b") }` },
      from(`${prefix}::1`),
    );
    expectLimited(
      await post(g.url, { query: `mutation { signUp(email: "c") }` }, from(`${prefix}:ffff:1:2:3`)),
      "edge-signup",
    );
  });

  it("should give like and superLike one budget per user, whatever address they come from", async () => {
    const token = await authority.token();
    const ok = await post(
      g.url,
      { query: `mutation { a: like(userId: "1") b: superLike(userId: "2") c: like(userId: "3") }` },
      from(randomIpv4(), token),
    );
    expect(ok.body.errors).toBeUndefined();
    expectLimited(
      await post(
        g.url,
        { query: `mutation { a: superLike(userId: "4") b: like(userId: "5") }` },
        from(randomIpv4(), token),
      ),
      "edge-swipe",
    );
    // pass has no edge budget of its own; another user has their own.
    expect(
      (await post(g.url, { query: `mutation { pass(userId: "6") }` }, from(randomIpv4(), token))).body,
    ).toEqual({ data: { pass: true } });
    expect(
      (
        await post(
          g.url,
          { query: `mutation { like(userId: "7") }` },
          from(randomIpv4(), await authority.token()),
        )
      ).body,
    ).toEqual({ data: { like: true } });
  });

  it("should budget sendMessage and createUpload per user", async () => {
    const token = await authority.token();
    expectLimited(
      await post(
        g.url,
        {
          query: `mutation { a: sendMessage(text: "1") b: sendMessage(text: "2") c: sendMessage(text: "3") d: sendMessage(text: "4") }`,
        },
        from(randomIpv4(), token),
      ),
      "edge-send-message",
    );
    expect(
      (
        await post(
          g.url,
          { query: `mutation { a: createUpload(kind: "p") b: createUpload(kind: "p") }` },
          from(randomIpv4(), token),
        )
      ).body.errors,
    ).toBeUndefined();
    expectLimited(
      await post(g.url, { query: `mutation { createUpload(kind: "p") }` }, from(randomIpv4(), token)),
      "edge-create-upload",
    );
  });

  it("should budget every operation of a signed-in user (GATEWAY_RATE_LIMIT_USER)", async () => {
    const token = await authority.token();
    for (let i = 0; i < 6; i += 1) {
      expect((await post(g.url, { query: `{ echo(text: "${i}") }` }, from(randomIpv4(), token))).status).toBe(
        200,
      );
    }
    expectLimited(
      await post(g.url, { query: `{ echo(text: "7") }` }, from(randomIpv4(), token)),
      "edge-user",
    );
  });

  it("should budget every HTTP request from an address, even ones that do not parse (GATEWAY_RATE_LIMIT_IP)", async () => {
    const ip = randomIpv6();
    for (let i = 0; i < 8; i += 1) await post(g.url, { query: "{ broken" }, from(ip));
    const limited = await post(g.url, { query: `{ echo(text: "x") }` }, from(ip));
    expectLimited(limited, "edge-address");
    expect((await post(g.url, { query: `{ echo(text: "x") }` }, from(randomIpv6()))).status).toBe(200);
  });
});

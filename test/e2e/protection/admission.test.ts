import http from "node:http";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { addressBudgetKey, SessionRevocations } from "@hv/kit";
import { EdgeAdmission } from "@hv/gateway/src/protection/admission";
import {
  codes,
  post,
  randomIpv6,
  startLightGateway,
  startTokenAuthority,
  type LightGateway,
} from "./support";
import { startRedisServer, type RedisServer } from "../../support/redis-server";

// A redis-server of this file's own: MONITOR counts every client's commands, and another suite's
// traffic on a shared server would be counted (and can break ioredis's monitor mode).
let privateRedis: RedisServer;
let REDIS_URL: string;

beforeAll(async () => {
  privateRedis = await startRedisServer();
  REDIS_URL = `redis://127.0.0.1:${privateRedis.port}`;
});

afterAll(() => privateRedis?.stop());

type TokenAuthority = Awaited<ReturnType<typeof startTokenAuthority>>;

/** A light gateway with these address and user budgets, its token authority and a Redis client. */
async function startAdmissionParts(
  ipLimit: string,
  userLimit: string,
): Promise<{ g: LightGateway; authority: TokenAuthority; redis: Redis }> {
  const authority = await startTokenAuthority();
  const g = await startLightGateway({
    REDIS_URL,
    AUTH_JWKS_URL: authority.jwksUrl,
    GATEWAY_RATE_LIMIT_IP: ipLimit,
    GATEWAY_RATE_LIMIT_USER: userLimit,
  });
  return { g, authority, redis: new Redis(REDIS_URL) };
}

async function stopAdmissionParts(
  g: LightGateway | undefined,
  authority: TokenAuthority | undefined,
  redis: Redis | undefined,
): Promise<void> {
  await g?.stop();
  await authority?.close();
  await redis?.quit();
}

/** Headers of a request from `ip`, signed in when `authorization` is given. */
const from = (ip: string, authorization?: string) => ({
  "x-forwarded-for": ip,
  ...(authorization ? { authorization } : {}),
});

function get(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (response) => {
        response.resume();
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
      })
      .on("error", reject);
  });
}

function claims(token: string): { sub: string; sid: string } {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as {
    sub: string;
    sid: string;
  };
}

/**
 * The commands Redis runs while `act` runs that name any of `needles` (MONITOR sees every client's
 * commands in the order Redis runs them; a marker command after `act` closes the window).
 */
async function commandsDuring(needles: string[], act: () => Promise<void>): Promise<string[][]> {
  const marker = `admission-marker-${randomUUID()}`;
  // monitor() opens a connection of its own: the one it is called on is closed below too.
  const origin = new Redis(REDIS_URL);
  const monitor = await origin.monitor();
  const seen: string[][] = [];
  const markerSeen = new Promise<void>((resolve) => {
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      // Commands a script runs show with source "lua": the round trips are the clients' commands.
      if (source === "lua") return;
      if (args.includes(marker)) resolve();
      else if (args.some((arg) => needles.some((needle) => arg.includes(needle)))) seen.push(args);
    });
  });
  const client = new Redis(REDIS_URL);
  try {
    await act();
    await client.echo(marker);
    await markerSeen;
  } finally {
    client.disconnect();
    monitor.disconnect();
    origin.disconnect();
  }
  return seen;
}

describe("admission at the edge: concurrent requests", () => {
  it("should send an admission at once when none is in flight, and the others of its turn in one write, each with its own verdict", async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const prefix = `hvtest:turn:${randomUUID()}`;
      const admission = new EdgeAdmission(
        redis,
        { keyPrefix: `${prefix}:ip`, name: "edge-ip", points: 100, durationSeconds: 60 },
        { keyPrefix: `${prefix}:user`, name: "edge-user", points: 2, durationSeconds: 60 },
      );
      const caller = (userId: string) => ({
        viewer: { userId, sessionId: randomUUID(), role: "USER" as const },
        issuedAt: Math.floor(Date.now() / 1000),
      });
      const [alice, bob] = [caller(randomUUID()), caller(randomUUID())];
      await admission.admit(randomIpv6(), null); // connected, the script loaded
      // Node's socket writes from here on (a corked socket's writes leave together through _writev).
      const write = jest.spyOn(net.Socket.prototype, "_write");
      const writev = jest.spyOn(net.Socket.prototype, "_writev");
      try {
        const first = admission.admit(randomIpv6(), alice);
        // Redis runs it while the request runs on: it left before the turn ended.
        expect(write.mock.calls.length + writev.mock.calls.length).toBe(1);
        const verdicts = await Promise.all([
          first,
          admission.admit(randomIpv6(), alice),
          admission.admit(randomIpv6(), alice),
          admission.admit(randomIpv6(), bob),
        ]);
        expect(write.mock.calls.length + writev.mock.calls.length).toBe(2);
        expect(verdicts.map((verdict) => verdict.kind)).toEqual([
          "admitted",
          "admitted",
          "over-budget",
          "admitted",
        ]);
      } finally {
        write.mockRestore();
        writev.mockRestore();
      }
    } finally {
      await redis.quit();
    }
  });
});

describe("admission at the edge: address budget, revocation and user budget in one Redis round trip", () => {
  let g: LightGateway;
  let authority: TokenAuthority;
  let redis: Redis;
  beforeAll(async () => ({ g, authority, redis } = await startAdmissionParts("3/1m", "4/1m")));
  afterAll(() => stopAdmissionParts(g, authority, redis));

  it("should run one Redis command for a signed-in query, naming the address, the session and the user", async () => {
    const token = await authority.token();
    const { sub, sid } = claims(token);
    const ip = randomIpv6();
    let status = 0;
    const commands = await commandsDuring(
      [sub, sid, `${g.keyPrefix}:rl:edge-address:${addressBudgetKey(ip)}`],
      async () => {
        status = (await post(g.url, { query: `{ echo(text: "one trip") }` }, from(ip, `Bearer ${token}`)))
          .status;
      },
    );
    expect(status).toBe(200);
    expect(commands).toHaveLength(1);
    const [command] = commands;
    expect(command?.[0]?.toLowerCase()).toMatch(/^eval(sha)?$/);
    expect(command?.join(" ")).toEqual(expect.stringContaining(sid));
    expect(command?.join(" ")).toEqual(expect.stringContaining(`edge-user:${sub}`));
    expect(command?.join(" ")).toEqual(expect.stringContaining(`edge-address:${addressBudgetKey(ip)}`));
  });

  it("should refuse a revoked session's token (401 revoked) without spending its user budget", async () => {
    const token = await authority.token();
    const { sub, sid } = claims(token);
    await new SessionRevocations(redis).revokeSession(sid);
    for (let i = 0; i < 5; i += 1) {
      const reply = await post(
        g.url,
        { query: `{ echo(text: "x") }` },
        from(randomIpv6(), `Bearer ${token}`),
      );
      expect({
        status: reply.status,
        codes: codes(reply),
        reason: reply.body.errors?.[0]?.extensions?.reason,
      }).toEqual({
        status: 401,
        codes: ["UNAUTHENTICATED"],
        reason: "revoked",
      });
    }
    expect(await redis.exists(`${g.keyPrefix}:rl:edge-user:${sub}`)).toBe(0);
  });

  it("should refuse every token of a user issued up to the user's revocation", async () => {
    const userId = randomUUID();
    const before = await authority.token(userId);
    await new SessionRevocations(redis).revokeUser(userId);
    const reply = await post(g.url, { query: `{ echo(text: "x") }` }, from(randomIpv6(), `Bearer ${before}`));
    expect({ status: reply.status, reason: reply.body.errors?.[0]?.extensions?.reason }).toEqual({
      status: 401,
      reason: "revoked",
    });
  });

  it("should spend the address budget on requests whose token is refused, then answer 429 before the token", async () => {
    const ip = randomIpv6();
    const forged = `${(await authority.token()).slice(0, -4)}AAAA`;
    const refusals = [];
    for (let i = 0; i < 3; i += 1) {
      refusals.push(
        (
          await post(
            g.url,
            { query: `{ echo(text: "x") }` },
            from(ip, i === 0 ? "Basic x" : `Bearer ${forged}`),
          )
        ).status,
      );
    }
    expect(refusals).toEqual([401, 401, 401]);
    const limited = await post(g.url, { query: `{ echo(text: "x") }` }, from(ip, `Bearer ${forged}`));
    expect({
      status: limited.status,
      codes: codes(limited),
      limit: limited.body.errors?.[0]?.extensions?.limit,
    }).toEqual({
      status: 429,
      codes: ["RATE_LIMITED"],
      limit: "edge-address",
    });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("should answer 429 edge-user past the user's budget, from any address", async () => {
    const token = await authority.token();
    const statuses = [];
    for (let i = 0; i < 5; i += 1) {
      statuses.push(
        (await post(g.url, { query: `{ echo(text: "${i}") }` }, from(randomIpv6(), `Bearer ${token}`)))
          .status,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
  });

  it("should not hash a POST answer for an ETag, and keep the ETag (and 304) of a GET", async () => {
    const reply = await post(g.url, { query: `{ echo(text: "etag") }` }, from(randomIpv6()));
    expect(reply.status).toBe(200);
    expect(reply.headers.get("etag")).toBeNull();
    const url = `${g.url}?query=${encodeURIComponent(`{ echo(text: "etag") }`)}`;
    const headers = { ...from(randomIpv6()), "apollo-require-preflight": "true" };
    // node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request.
    const first = await get(url, headers);
    const etag = first.headers.etag;
    expect({ status: first.status, etag: typeof etag }).toEqual({ status: 200, etag: "string" });
    expect((await get(url, { ...headers, "if-none-match": etag ?? "" })).status).toBe(304);
  });
});

describe("admission at the edge: queries run while it is asked, when the caller is far from its budgets", () => {
  let g: LightGateway;
  let authority: TokenAuthority;
  let redis: Redis;
  beforeAll(async () => ({ g, authority, redis } = await startAdmissionParts("10/1m", "10/1m")));
  afterAll(() => stopAdmissionParts(g, authority, redis));
  const reached = (text: string) =>
    g.subgraph.requests.filter((request) => request.query.includes(text)).length;

  it("should run early only while at least half the budget is left, and never let a request over it reach a subgraph", async () => {
    const ip = randomIpv6();
    const tag = randomUUID();
    const before = g.gateway.admissionStats();
    const replies = [];
    for (let i = 0; i < 12; i += 1) {
      const reply = await post(g.url, { query: `{ echo(text: "${tag}-${i}.") }` }, from(ip));
      replies.push({
        status: reply.status,
        echo: reply.body.data?.echo ?? null,
        reached: reached(`${tag}-${i}.`),
      });
    }
    const after = g.gateway.admissionStats();
    // The first is unknown; the 2nd to 5th find 9, 8, 7 and 6 of 10 points left (at least 5 once taken).
    expect(after.early - before.early).toBe(4);
    expect(after.earlyRefused - before.earlyRefused).toBe(0);
    expect(replies).toEqual([
      ...Array.from({ length: 10 }, (_, i) => ({ status: 200, echo: `${tag}-${i}.`, reached: 1 })),
      { status: 429, echo: null, reached: 0 },
      { status: 429, echo: null, reached: 0 },
    ]);
  });

  it("should withhold an early query's answer when the budget was spent elsewhere: 429, as without it", async () => {
    const ip = randomIpv6();
    const tag = randomUUID();
    expect((await post(g.url, { query: `{ echo(text: "${tag}-first") }` }, from(ip))).status).toBe(200);
    // Another replica spent the rest of the window: this one still believes 9 points are left.
    await redis.set(`${g.keyPrefix}:rl:edge-address:${addressBudgetKey(ip)}`, "10", "KEEPTTL");
    const before = g.gateway.admissionStats();
    const query = await post(g.url, { query: `{ echo(text: "${tag}-early") }` }, from(ip));
    const mutation = await post(g.url, { query: `mutation { pass(userId: "${tag}-mutation") }` }, from(ip));
    const after = g.gateway.admissionStats();
    expect({
      query: [query.status, codes(query), query.body.errors?.[0]?.extensions?.limit, query.body.data],
      retryAfter: Number(query.headers.get("retry-after")) > 0,
      mutation: [mutation.status, codes(mutation)],
      early: after.early - before.early,
      refused: after.earlyRefused - before.earlyRefused,
    }).toEqual({
      query: [429, ["RATE_LIMITED"], "edge-address", undefined],
      retryAfter: true,
      mutation: [429, ["RATE_LIMITED"]],
      early: 1,
      refused: 1,
    });
    // The early query may have reached the subgraph (its answer was dropped); nothing after did.
    expect(reached(`${tag}-early`)).toBeLessThanOrEqual(1);
    expect(reached(`${tag}-mutation`)).toBe(0);
  });

  it("should answer 401 revoked to an early request of a session revoked meanwhile, and hold its mutation back", async () => {
    const ip = randomIpv6();
    const tag = randomUUID();
    const token = await authority.token();
    const { sid } = claims(token);
    expect(
      (await post(g.url, { query: `{ echo(text: "${tag}") }` }, from(ip, `Bearer ${token}`))).status,
    ).toBe(200);
    await new SessionRevocations(redis).revokeSession(sid);
    const before = g.gateway.admissionStats();
    const mutation = await post(
      g.url,
      { query: `mutation { pass(userId: "${tag}-mutation") }` },
      from(ip, `Bearer ${token}`),
    );
    const after = g.gateway.admissionStats();
    expect({
      status: mutation.status,
      codes: codes(mutation),
      reason: mutation.body.errors?.[0]?.extensions?.reason,
      challenge: mutation.headers.get("www-authenticate"),
      early: after.early - before.early,
      reached: reached(`${tag}-mutation`),
    }).toEqual({
      status: 401,
      codes: ["UNAUTHENTICATED"],
      reason: "revoked",
      challenge: 'Bearer error="invalid_token"',
      early: 1,
      reached: 0,
    });
    // Revoked: its next request waits for the admission again.
    const query = await post(g.url, { query: `{ echo(text: "${tag}-later") }` }, from(ip, `Bearer ${token}`));
    expect({ status: query.status, reason: query.body.errors?.[0]?.extensions?.reason }).toEqual({
      status: 401,
      reason: "revoked",
    });
    expect(g.gateway.admissionStats().early - after.early).toBe(0);
    expect(reached(`${tag}-later`)).toBe(0);
  });
});

describe("admission at the edge: a known send's sendMessage budget in the same round trip", () => {
  let g: LightGateway;
  let authority: TokenAuthority;
  let redis: Redis;
  beforeAll(async () => {
    authority = await startTokenAuthority();
    g = await startLightGateway({
      REDIS_URL,
      AUTH_JWKS_URL: authority.jwksUrl,
      GATEWAY_RATE_LIMIT_IP: "100/1m",
      GATEWAY_RATE_LIMIT_USER: "100/1m",
      GATEWAY_RATE_LIMIT_SEND_MESSAGE: "3/1m",
    });
    redis = new Redis(REDIS_URL);
  });
  afterAll(() => stopAdmissionParts(g, authority, redis));
  const send = { query: `mutation Send($text: String) { sendMessage(text: $text) }`, operationName: "Send" };

  it("should run one Redis command per send once the operation is known, and refuse past the budget as before", async () => {
    const token = await authority.token();
    const { sub } = claims(token);
    const sendKey = `${g.keyPrefix}:rl:edge-send-message:user:${sub}`;
    const replies = [];
    const trips = [];
    for (let i = 0; i < 5; i += 1) {
      let reply: Awaited<ReturnType<typeof post>> | undefined;
      // Every send comes from a new address: the user's budget alone decides whether it runs early.
      const commands = await commandsDuring([sub], async () => {
        reply = await post(
          g.url,
          { ...send, variables: { text: `${i}` } },
          from(randomIpv6(), `Bearer ${token}`),
        );
      });
      trips.push(commands.length);
      replies.push({
        status: reply?.status,
        codes: reply ? codes(reply) : [],
        limit: reply?.body.errors?.[0]?.extensions?.limit,
        retryAfter: Number(reply?.headers.get("retry-after") ?? 0) > 0,
      });
    }
    // The first send of this replica's life teaches it the operation: its budget is a trip of its own.
    expect(trips).toEqual([2, 1, 1, 1, 1]);
    const ok = { status: 200, codes: [], limit: undefined, retryAfter: false };
    const limited = { status: 429, codes: ["RATE_LIMITED"], limit: "edge-send-message", retryAfter: true };
    expect(replies).toEqual([ok, ok, ok, limited, limited]);
    expect(await redis.get(sendKey)).toBe("5");
    expect(await redis.get(`${g.keyPrefix}:rl:edge-user:${sub}`)).toBe("5");
  });

  it("should not spend the sendMessage budget of a revoked session's send", async () => {
    const token = await authority.token();
    const { sub, sid } = claims(token);
    expect(
      (await post(g.url, { ...send, variables: { text: "a" } }, from(randomIpv6(), `Bearer ${token}`)))
        .status,
    ).toBe(200);
    await new SessionRevocations(redis).revokeSession(sid);
    const reply = await post(
      g.url,
      { ...send, variables: { text: "b" } },
      from(randomIpv6(), `Bearer ${token}`),
    );
    expect({ status: reply.status, reason: reply.body.errors?.[0]?.extensions?.reason }).toEqual({
      status: 401,
      reason: "revoked",
    });
    expect(await redis.get(`${g.keyPrefix}:rl:edge-send-message:user:${sub}`)).toBe("1");
  });
});

import http from "node:http";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { addressBudgetKey, SessionRevocations } from "@hv/kit";
import {
  codes,
  post,
  randomIpv6,
  startLightGateway,
  startTokenAuthority,
  type LightGateway,
} from "./support";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

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

describe("admission at the edge: address budget, revocation and user budget in one Redis round trip", () => {
  let g: LightGateway;
  let authority: Awaited<ReturnType<typeof startTokenAuthority>>;
  let redis: Redis;
  beforeAll(async () => {
    authority = await startTokenAuthority();
    g = await startLightGateway({
      AUTH_JWKS_URL: authority.jwksUrl,
      GATEWAY_RATE_LIMIT_IP: "3/1m",
      GATEWAY_RATE_LIMIT_USER: "4/1m",
    });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await g?.stop();
    await authority?.close();
    await redis?.quit();
  });
  const from = (ip: string, authorization?: string) => ({
    "x-forwarded-for": ip,
    ...(authorization ? { authorization } : {}),
  });

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

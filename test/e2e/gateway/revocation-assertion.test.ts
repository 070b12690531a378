import { randomUUID } from "node:crypto";
import {
  accessTokenDigest,
  REVOCATION_ASSERTION_HEADER,
  REVOCATION_ASSERTION_MAX_AGE_MS,
  revocationAssertions,
  SessionRevocations,
} from "@hv/kit";
import type Redis from "ioredis";
import { startRedisServer, type RedisServer } from "../../support/redis-server";
import { startSystem, graphqlRequest, type RunningSystem } from "../../support/system";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { UsersClient, type SignedIn } from "../../support/users-client";

const SECRET = "revocation-assertion-test-secret-0123456789";
const MY_CONVERSATIONS = "{ conversations(first: 5) { edges { node { id } } } }";

/**
 * The gateway vouches for the revocation check its admission made (kit/src/auth/revocation-assertions.ts):
 * a subgraph that verifies the assertion skips its own revocation MGET; any other assertion gets
 * the full check. The system runs on a Redis of its own, whose MONITOR feed is counted.
 */
describe("revocation vouched for by the gateway", () => {
  let redis: RedisServer;
  let system: RunningSystem;
  let dbs: TestDatabases;
  let client: UsersClient;
  /** Every command the system's Redis ran, as MONITOR reports it. */
  const commands: string[][] = [];
  let monitor: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    monitor = await redis.client().duplicate().monitor();
    monitor.on("monitor", (_time: string, args: string[]) => commands.push(args));
    dbs = testDatabases();
    system = await startSystem({
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      AUTH_REVOCATION_ASSERTION_SECRET: SECRET,
    });
    client = new UsersClient(system.gatewayUrl);
  });
  afterAll(async () => {
    await system?.stop();
    await dbs?.close();
    monitor?.disconnect();
    await redis?.stop();
  });

  /** Revocation lookups (MGETs of `hv:auth:revoked:` keys) while `run` runs. */
  async function revocationLookups(run: () => Promise<void>): Promise<number> {
    const from = commands.length;
    await run();
    // MONITOR reports in order: once this marker is seen, every command before it has been.
    const marker = `marker-${randomUUID()}`;
    await redis.client().echo(marker);
    const deadline = Date.now() + 10_000;
    while (!commands.slice(from).some((args) => args[0] === "echo" && args[1] === marker)) {
      if (Date.now() > deadline) throw new Error("the MONITOR feed did not show the marker");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return commands
      .slice(from)
      .filter(
        (args) => args[0]?.toLowerCase() === "mget" && args.some((key) => key.includes(":auth:revoked:")),
      ).length;
  }

  const direct = (token: string, assertion?: string) =>
    graphqlRequest(
      system.subgraphs.chat.url,
      MY_CONVERSATIONS,
      {},
      {
        authorization: `Bearer ${token}`,
        ...(assertion === undefined ? {} : { [REVOCATION_ASSERTION_HEADER]: assertion }),
      },
    );

  async function revokedToken(person: SignedIn): Promise<string> {
    const sessionId = randomUUID();
    const { token } = await system.accessTokens.issue({ userId: person.userId, sessionId, role: "USER" });
    await new SessionRevocations(redis.client()).revokeSession(sessionId);
    return token;
  }

  it("should skip a subgraph's revocation lookup for a valid assertion, and only then", async () => {
    const person = await client.signUp();
    const token = person.accessToken;
    const signed = revocationAssertions(SECRET);
    const now = Date.now();
    const cases: Record<string, string | undefined> = {
      none: undefined,
      valid: signed.sign(accessTokenDigest(token), now),
      forged: revocationAssertions("some-other-secret-0123456789-0123456789").sign(
        accessTokenDigest(token),
        now,
      ),
      expired: signed.sign(accessTokenDigest(token), now - REVOCATION_ASSERTION_MAX_AGE_MS - 5_000),
      otherToken: signed.sign(accessTokenDigest(`${token}x`), now),
      garbage: "r1.not-an-assertion",
    };
    const seen: Record<string, { status: number; lookups: number }> = {};
    for (const [name, assertion] of Object.entries(cases)) {
      let status = 0;
      const lookups = await revocationLookups(async () => {
        status = (await direct(token, assertion)).status;
      });
      seen[name] = { status, lookups };
    }
    expect(seen).toEqual({
      none: { status: 200, lookups: 1 },
      valid: { status: 200, lookups: 0 },
      forged: { status: 200, lookups: 1 },
      expired: { status: 200, lookups: 1 },
      otherToken: { status: 200, lookups: 1 },
      garbage: { status: 200, lookups: 1 },
    });
  });

  it("should still refuse a revoked token whose assertion does not hold", async () => {
    const person = await client.signUp();
    const token = await revokedToken(person);
    const signed = revocationAssertions(SECRET);
    const now = Date.now();
    const assertions = [
      undefined,
      revocationAssertions("some-other-secret-0123456789-0123456789").sign(accessTokenDigest(token), now),
      signed.sign(accessTokenDigest(token), now - REVOCATION_ASSERTION_MAX_AGE_MS - 5_000),
      signed.sign(accessTokenDigest(person.accessToken), now),
    ];
    for (const assertion of assertions) {
      const response = await direct(token, assertion);
      expect({ status: response.status, reason: response.body.errors?.[0]?.extensions?.reason }).toEqual({
        status: 401,
        reason: "revoked",
      });
    }
  });

  it("should send the subgraphs no revocation lookup for a request the gateway admitted, and refuse a revoked one", async () => {
    const person = await client.signUp();
    // Warm: the subgraphs' verified-token memory and the gateway's plans (lookups are counted either way).
    expect((await client.request(MY_CONVERSATIONS, {}, person.accessToken)).status).toBe(200);
    let status = 0;
    const lookups = await revocationLookups(async () => {
      for (let i = 0; i < 3; i += 1)
        status = (await client.request(MY_CONVERSATIONS, {}, person.accessToken)).status;
    });
    expect({ status, lookups }).toEqual({ status: 200, lookups: 0 });

    const revoked = await client.request(MY_CONVERSATIONS, {}, await revokedToken(person));
    expect({ status: revoked.status, reason: revoked.body.errors?.[0]?.extensions?.reason }).toEqual({
      status: 401,
      reason: "revoked",
    });
  });
});

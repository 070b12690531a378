import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { loadGatewayConfig } from "@hv/kit";
import WebSocket from "ws";
import { capturingLogger } from "../../support/log-capture";
import { startRedisServer, type RedisServer } from "../../support/redis-server";
import { graphqlRequest, startSystem, testEnv, type RunningSystem } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { eventually, phone, Subscription } from "../gateway/harness";

const FEED = `subscription { myChatEvents { kind seq } }`;

/**
 * A gateway whose own Redis (budgets, blocklist, revocations, persisted queries) is a private
 * redis-server that the test kills and starts again; the subgraphs keep the run's Redis.
 */
describe("the gateway while its Redis is down", () => {
  let system: RunningSystem;
  let redis: RedisServer;
  let gateway: RunningGateway;
  let ada: SignedIn;
  let redisPort: number;

  beforeAll(async () => {
    system = await startSystem();
    redis = await startRedisServer();
    redisPort = redis.port;
    gateway = await startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        GATEWAY_RATE_LIMIT_IP: "1000/1m",
        USERS_URL: system.subgraphs.users.url,
        DISCOVERY_URL: system.subgraphs.discovery.url,
        CHAT_URL: system.subgraphs.chat.url,
        MEDIA_URL: system.subgraphs.media.url,
      }),
      capturingLogger("gateway-own-redis").logger,
    );
    ada = await new UsersClient(system.gatewayUrl).signUp({ displayName: "Ada" });
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    await redis?.stop();
    await system?.stop();
  });

  it("should answer JSON 503 SERVICE_UNAVAILABLE, keep open sockets open, refuse new upgrades with 503, and recover", async () => {
    const wsUrl = gateway.url.replace(/^http/, "ws");
    const base = gateway.url.replace(/\/graphql$/, "");
    const open = phone(wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    const before = new Subscription(open.client, FEED);
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, "the gateway to be ready");
    expect((await graphqlRequest(gateway.url, "{ __typename }")).status).toBe(200);
    await eventually(
      () => gateway.subscriptionStats().clientSubscriptions === 1,
      "the first subscription to run",
    );

    await redis.stop();

    // HTTP: JSON, 503, a catalogued retryable code and Retry-After; no HTML page.
    for (const headers of [{}, { authorization: `Bearer ${ada.accessToken}` }]) {
      const response = await fetch(gateway.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("content-type")).toMatch(/application\/json/);
      expect(response.headers.get("retry-after")).toBe("5");
      const body = (await response.json()) as {
        errors: Array<{ extensions: { code: string; retryAfterSeconds: number } }>;
      };
      expect(body.errors[0]?.extensions).toEqual({ code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 5 });
    }

    // /readyz: a 503 with a short reason, read from the connection's state (no command waited for).
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    const report = (await ready.json()) as { checks: Record<string, string> };
    expect(report.checks.redis).toMatch(/^failed: not connected \((connecting|reconnecting|close|end)\)$/);

    // WebSocket: a subscribe on an open socket is refused alone; the socket stays open.
    const during = new Subscription(open.client, FEED);
    const refused = (await during.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(refused[0]?.extensions).toEqual({ code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 5 });
    expect(open.closes).toEqual([]);
    expect(before.ended).toBe(false);

    // A new connection cannot be counted against its address budget: its upgrade is refused with
    // HTTP 503; once Redis is back a new connection subscribes.
    const upgradeStatus = await new Promise<number>((resolve, reject) => {
      const raw = new WebSocket(wsUrl, "graphql-transport-ws");
      raw.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      raw.once("open", () => reject(new Error("the upgrade was accepted while Redis is down")));
      raw.once("error", () => undefined);
    });
    expect(upgradeStatus).toBe(503);
    redis = await startRedisServer({ port: redisPort });
    await eventually(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      "the gateway to be ready again",
    );
    expect((await graphqlRequest(gateway.url, "{ __typename }")).status).toBe(200);
    const again = phone(wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    try {
      const after = new Subscription(again.client, FEED);
      await eventually(
        () => gateway.subscriptionStats().clientSubscriptions === 2,
        "a new connection's subscription to run",
      );
      expect(after.ended).toBe(false);
      expect(before.ended).toBe(false);
      after.dispose();
    } finally {
      before.dispose();
      await again.dispose();
      await open.dispose();
    }
  });
});

import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { loadGatewayConfig } from "@hv/kit";
import { createClient } from "graphql-ws";
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
  });
  afterAll(async () => {
    await gateway?.stop();
    await redis?.stop();
    await system?.stop();
  });

  it("should answer JSON 503 SERVICE_UNAVAILABLE, keep open sockets and close new ones with a retried code, and recover", async () => {
    const wsUrl = gateway.url.replace(/^http/, "ws");
    const base = gateway.url.replace(/\/graphql$/, "");
    const open = phone(wsUrl, { authorization: `Bearer ${ada.accessToken}` });
    const before = new Subscription(open.client, FEED);
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, "the gateway to be ready");
    expect((await graphqlRequest(gateway.url, "{ __typename }")).status).toBe(200);
    await eventually(() => gateway.subscriptionStats().clientSubscriptions === 1, "the first subscription to run");

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
      const body = (await response.json()) as { errors: Array<{ extensions: { code: string; retryAfterSeconds: number } }> };
      expect(body.errors[0]?.extensions).toEqual({ code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 5 });
    }

    // /readyz: a quick 503 with a short reason (the probe's timeout is 3 s).
    const probeStarted = Date.now();
    const ready = await fetch(`${base}/readyz`);
    const probeMs = Date.now() - probeStarted;
    expect(ready.status).toBe(503);
    const report = (await ready.json()) as { checks: Record<string, string> };
    expect(report.checks.redis).toMatch(/^failed: not connected \((connecting|reconnecting|close|end)\)$/);
    expect(probeMs).toBeLessThan(3_000);

    // WebSocket: a subscribe on an open socket is refused alone; the socket stays open.
    const during = new Subscription(open.client, FEED);
    const refused = (await during.ending()) as Array<{ extensions?: Record<string, unknown> }>;
    expect(refused[0]?.extensions).toEqual({ code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 5 });
    expect(open.closes).toEqual([]);
    expect(before.ended).toBe(false);

    // A new connection whose token cannot be checked is closed with 1013, which the stock client
    // retries: once Redis is back it connects and subscribes.
    const closes: number[] = [];
    let connected = 0;
    const retrying = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${ada.accessToken}` },
      lazy: false,
      retryAttempts: 1_000,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 200)),
      onNonLazyError: () => undefined,
      on: {
        closed: (event) => closes.push((event as { code: number }).code),
        connected: () => (connected += 1),
      },
    });
    try {
      await eventually(() => closes.length >= 2, "the new connection to be closed (twice)");
      expect(new Set(closes)).toEqual(new Set([1013]));
      expect(connected).toBe(0);

      redis = await startRedisServer({ port: redisPort });
      await eventually(() => connected === 1, "the retrying client to connect once Redis is back", 1_000);
      const after = new Subscription(retrying, FEED);
      await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, "the gateway to be ready again");
      expect((await graphqlRequest(gateway.url, "{ __typename }")).status).toBe(200);
      expect(after.ended).toBe(false);
      after.dispose();
    } finally {
      await retrying.dispose();
      before.dispose();
      await open.dispose();
    }
  });
});

import { randomUUID } from "node:crypto";
import type { RunningGateway } from "@hv/gateway";
import type { RunningService } from "@hv/kit";
import { loadPushConfig } from "@hv/users/src/push/config";
import { startPushWorker } from "@hv/users/src/push/worker";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { capturingLogger } from "../../support/log-capture";
import { graphqlRequest, startSystem, testEnv, type RunningSystem } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    samples.push({ name: match[1] ?? "", labels: labels as Record<string, string>, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  expect({ url, status: response.status, type: response.headers.get("content-type") }).toEqual({
    url,
    status: 200,
    type: expect.stringContaining("text/plain"),
  });
  return parseExposition(await response.text());
}

/** The value of the one series with these labels (0 when it does not exist yet). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return found.reduce((sum, sample) => sum + sample.value, 0);
}

function has(samples: Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return samples.some(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("Prometheus /metrics on every process", () => {
  let system: RunningSystem;
  let pushWorker: RunningService;
  let client: UsersClient;
  const prefix = `obs${randomUUID().slice(0, 8)}`;
  const sockets: Client[] = [];
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    // Own event queues: other test files' consumers must not take this file's events.
    system = await startSystem({ EVENTS_PREFIX: prefix });
    pushWorker = await startPushWorker(
      loadPushConfig(testEnv({ EVENTS_PREFIX: prefix, PUSH_WORKER_PORT: "0", SUBGRAPH_HOST: "127.0.0.1" })),
      capturingLogger("push-worker").logger,
    );
    client = new UsersClient(system.gatewayUrl);
    urls.gateway = (system.gateway as RunningGateway).metricsUrl;
    for (const [name, subgraph] of Object.entries(system.subgraphs))
      urls[name] = subgraph.url.replace(/\/graphql$/, "/metrics");
    urls["media-worker"] = system.mediaWorker.url.replace(/\/healthz$/, "/metrics");
    urls["push-worker"] = pushWorker.url.replace(/\/healthz$/, "/metrics");
  }, 120_000);

  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await pushWorker?.stop();
    await system?.stop();
  });

  it("should serve every process's series with its service label, default Node metrics, Redis status and pools", async () => {
    expect(Object.keys(urls).sort()).toEqual([
      "chat",
      "discovery",
      "gateway",
      "media",
      "media-worker",
      "push-worker",
      "users",
    ]);
    for (const [service, url] of Object.entries(urls)) {
      const samples = await scrape(url);
      expect({ service, cpu: has(samples, "process_cpu_user_seconds_total", { service }) }).toEqual({
        service,
        cpu: true,
      });
      expect({ service, heap: has(samples, "nodejs_heap_size_used_bytes", { service }) }).toEqual({
        service,
        heap: true,
      });
      // A process's Redis client may still be connecting right after start (a busy machine): ask
      // again a bounded number of times; a Redis that never comes up still fails.
      let redisUp = valueOf(samples, "hv_redis_up", { role: "main" });
      for (let attempt = 0; attempt < 50 && redisUp !== 1; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        redisUp = valueOf(await scrape(url), "hv_redis_up", { role: "main" });
      }
      expect({ service, redisUp }).toEqual({
        service,
        redisUp: 1,
      });
      if (service !== "gateway") {
        // Pools are created lazily by Prisma's adapter, but the series exist from the start.
        expect({
          service,
          pool: has(samples, "hv_db_pool_connections", { pool: "prisma", state: "max" }),
        }).toEqual({ service, pool: true });
      }
    }
    const discovery = await scrape(urls.discovery ?? "");
    expect(has(discovery, "hv_db_pool_connections", { pool: "search", state: "total" })).toBe(true);
  });

  it("should keep /metrics off the gateway's public port", async () => {
    const response = await fetch(system.gatewayUrl.replace(/\/graphql$/, "/metrics"));
    expect(response.status).toBe(404);
    expect(urls.gateway).not.toContain(`:${new URL(system.gatewayUrl).port}/`);
  });

  it("should count a request per operation in the gateway and the subgraph it reached, with the subgraph fetch", async () => {
    const [gatewayBefore, usersBefore] = await Promise.all([
      scrape(urls.gateway ?? ""),
      scrape(urls.users ?? ""),
    ]);
    const response = await graphqlRequest(
      system.gatewayUrl,
      "query ObservedUser($id: ID!) { user(id: $id) { displayName } }",
      { id: randomUUID() },
    );
    expect(response.body).toEqual({ data: { user: null } });
    const [gatewayAfter, usersAfter] = await Promise.all([
      scrape(urls.gateway ?? ""),
      scrape(urls.users ?? ""),
    ]);

    const op = { operation: "ObservedUser", type: "query" };
    expect(
      valueOf(gatewayAfter, "hv_graphql_requests_total", op) -
        valueOf(gatewayBefore, "hv_graphql_requests_total", op),
    ).toBe(1);
    expect(
      valueOf(gatewayAfter, "hv_graphql_request_duration_seconds_count", op) -
        valueOf(gatewayBefore, "hv_graphql_request_duration_seconds_count", op),
    ).toBe(1);
    const fetches = { subgraph: "users", outcome: "ok" };
    expect(
      valueOf(gatewayAfter, "hv_gateway_subgraph_fetches_total", fetches) -
        valueOf(gatewayBefore, "hv_gateway_subgraph_fetches_total", fetches),
    ).toBeGreaterThanOrEqual(1);
    expect(
      has(gatewayAfter, "hv_gateway_subgraph_fetch_duration_seconds_bucket", {
        subgraph: "users",
        le: "+Inf",
      }),
    ).toBe(true);
    // The gateway names its fetch ObservedUser__users__0: the subgraph counts it under the client's name.
    expect(
      valueOf(usersAfter, "hv_graphql_requests_total", op) -
        valueOf(usersBefore, "hv_graphql_requests_total", op),
    ).toBe(1);
  });

  it("should count errors by catalogued code and keep client-chosen names bounded", async () => {
    const before = await scrape(urls.gateway ?? "");
    await graphqlRequest(system.gatewayUrl, "query BrokenOne { noSuchField }");
    await graphqlRequest(system.gatewayUrl, "{ __typename }");
    const hostileName = `x${"y".repeat(150)}`;
    await graphqlRequest(system.gatewayUrl, `query ${hostileName} { __typename }`);
    const after = await scrape(urls.gateway ?? "");
    const broken = { operation: "BrokenOne", code: "GRAPHQL_VALIDATION_FAILED" };
    expect(
      valueOf(after, "hv_graphql_request_errors_total", broken) -
        valueOf(before, "hv_graphql_request_errors_total", broken),
    ).toBe(1);
    const anonymous = { operation: "anonymous", type: "query" };
    expect(
      valueOf(after, "hv_graphql_requests_total", anonymous) -
        valueOf(before, "hv_graphql_requests_total", anonymous),
    ).toBe(1);
    expect(has(after, "hv_graphql_requests_total", { operation: hostileName })).toBe(false);
    expect(
      valueOf(after, "hv_graphql_requests_total", { operation: "other" }) -
        valueOf(before, "hv_graphql_requests_total", { operation: "other" }),
    ).toBe(1);
  });

  it("should count outbox events and the consumers' jobs, and read queue depths on scrape", async () => {
    const before = { users: await scrape(urls.users ?? ""), discovery: await scrape(urls.discovery ?? "") };
    await client.signUp(); // writes user.profile_changed: Discovery and Media consume it
    await eventually(async () => {
      const discovery = await scrape(urls.discovery ?? "");
      const completed = { queue: "events.discovery", outcome: "completed" };
      return (
        valueOf(discovery, "hv_jobs_total", completed) > valueOf(before.discovery, "hv_jobs_total", completed)
      );
    }, "Discovery to handle the sign-up's event");
    const users = await scrape(urls.users ?? "");
    expect(
      valueOf(users, "hv_outbox_events_published_total") -
        valueOf(before.users, "hv_outbox_events_published_total"),
    ).toBeGreaterThanOrEqual(1);
    const discovery = await scrape(urls.discovery ?? "");
    expect(
      has(discovery, "hv_job_duration_seconds_count", { queue: "events.discovery", outcome: "completed" }),
    ).toBe(true);
    for (const state of ["waiting", "active", "delayed", "failed"]) {
      expect({
        state,
        discovery: has(discovery, "hv_queue_jobs", { queue: "events.discovery", state }),
      }).toEqual({ state, discovery: true });
    }
    expect(
      has(await scrape(urls["push-worker"] ?? ""), "hv_queue_jobs", {
        queue: "push.deliveries",
        state: "waiting",
      }),
    ).toBe(true);
    expect(
      has(await scrape(urls["push-worker"] ?? ""), "hv_queue_jobs", {
        queue: "events.push",
        state: "waiting",
      }),
    ).toBe(true);
    const mediaWorker = await scrape(urls["media-worker"] ?? "");
    expect(
      mediaWorker
        .filter((s) => s.name === "hv_queue_jobs" && s.labels.state === "waiting")
        .map((s) => s.labels.queue).length,
    ).toBe(2);
  });

  it("should show open subscriptions in the gateway (client and upstream) and in the subgraph serving them", async () => {
    const person: SignedIn = await client.signUp();
    const socket = createClient({
      url: system.gatewayUrl.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${person.accessToken}` },
    });
    sockets.push(socket);
    const errors: unknown[] = [];
    const unsubscribe = socket.subscribe(
      { query: "subscription { myMediaUpdates { id status } }" },
      { next: () => undefined, error: (error) => errors.push(error), complete: () => undefined },
    );
    await eventually(async () => {
      const [gateway, media] = await Promise.all([scrape(urls.gateway ?? ""), scrape(urls.media ?? "")]);
      return (
        valueOf(gateway, "hv_subscriptions_open", { kind: "client" }) >= 1 &&
        valueOf(gateway, "hv_subscriptions_open", { kind: "upstream" }) >= 1 &&
        valueOf(gateway, "hv_websocket_connections_open", { kind: "client" }) >= 1 &&
        valueOf(media, "hv_subscriptions_open", { kind: "operations" }) >= 1
      );
    }, "the subscription to show in the gateway's and media's gauges");
    expect(errors).toEqual([]);
    unsubscribe();
    await eventually(
      async () =>
        valueOf(await scrape(urls.media ?? ""), "hv_subscriptions_open", { kind: "operations" }) === 0,
      "media's gauge to drop back",
    );
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { freePort } from "../../support/ports";
import { graphqlRequest, testEnv } from "../../support/system";

const ROOT = path.join(__dirname, "..", "..", "..");

/**
 * The real entry points (their tracing.ts is what must load first), as separate processes, export
 * over OTLP/HTTP JSON with the real exporter to this test's collector: spans are kept in memory here.
 */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
}

interface CollectedSpan extends OtlpSpan {
  service: string;
}

const SERVER = 2;
const CLIENT = 3;

function startCollector(): Promise<{ spans: CollectedSpan[]; url: string; close(): Promise<void> }> {
  const spans: CollectedSpan[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.url !== "/v1/traces" || req.headers["content-type"] !== "application/json") {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: OtlpSpan[] }>;
        }>;
      };
      for (const resourceSpans of body.resourceSpans) {
        const service =
          resourceSpans.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
        for (const scope of resourceSpans.scopeSpans)
          for (const span of scope.spans) spans.push({ ...span, service });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        spans,
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function attribute(span: OtlpSpan, key: string): string | undefined {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : String(value.intValue));
}

async function eventually<T>(
  read: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("OpenTelemetry traces across processes", () => {
  const children: ChildProcess[] = [];
  const output = { users: "", gateway: "" };
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let gatewayUrl: string;
  let usersGraphqlUrl: string;

  function launch(name: "users" | "gateway", entry: string, env: NodeJS.ProcessEnv): void {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, entry)], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk: Buffer) => (output[name] += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output[name] += chunk.toString()));
    children.push(child);
  }

  async function ready(url: string): Promise<void> {
    await eventually(
      async () => ((await fetch(url).catch(() => null))?.ok ? true : undefined),
      `${url} to be ready`,
      60_000,
    );
  }

  beforeAll(async () => {
    collector = await startCollector();
    const [usersPort, gatewayPort, metricsPort, unused] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const env = {
      ...testEnv(),
      NODE_ENV: "development",
      LOG_LEVEL: "info",
      EVENTS_PREFIX: `trace${randomUUID().slice(0, 8)}`,
      USERS_PORT: String(usersPort),
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_METRICS_PORT: String(metricsPort),
      AUTH_JWKS_URL: `http://127.0.0.1:${usersPort}/.well-known/jwks.json`,
      USERS_URL: `http://127.0.0.1:${usersPort}/graphql`,
      DISCOVERY_URL: `http://127.0.0.1:${unused}/graphql`,
      CHAT_URL: `http://127.0.0.1:${unused}/graphql`,
      MEDIA_URL: `http://127.0.0.1:${unused}/graphql`,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    } as NodeJS.ProcessEnv;
    launch("users", "subgraphs/users/src/index.ts", env);
    await ready(`http://127.0.0.1:${usersPort}/readyz`);
    launch("gateway", "gateway/src/index.ts", env);
    await ready(`http://127.0.0.1:${gatewayPort}/readyz`);
    gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;
    usersGraphqlUrl = `http://127.0.0.1:${usersPort}/graphql`;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
      ),
    );
    await collector?.close();
  });

  it("should carry one trace id from the gateway through the subgraph into its SQL, and into the subgraph's log line", async () => {
    const response = await graphqlRequest(
      gatewayUrl,
      "query TracedUser($id: ID!) { user(id: $id) { displayName } }",
      { id: randomUUID() },
    );
    expect(response.body).toEqual({ data: { user: null } });

    // The gateway's server span for this request is the root of the trace.
    const root = await eventually(
      () =>
        collector.spans.find(
          (span) =>
            span.service === "gateway" &&
            span.kind === SERVER &&
            !span.parentSpanId &&
            attribute(span, "http.route") !== "/healthz" &&
            /POST/.test(span.name),
        ),
      "the gateway's request span",
    );
    const traceId = root.traceId;
    const inTrace = () => collector.spans.filter((span) => span.traceId === traceId);
    const sql = await eventually(
      () =>
        inTrace().find(
          (span) =>
            span.service === "users" &&
            (attribute(span, "db.system") === "postgresql" ||
              attribute(span, "db.system.name") === "postgresql"),
        ),
      "a PostgreSQL span of the users subgraph in the gateway's trace",
    );
    expect(sql.traceId).toBe(traceId);

    // Propagation: the users subgraph's server span is the child of the gateway's fetch (traceparent).
    // (Redis commands are CLIENT spans too: the fetch is the one to the users subgraph's URL.)
    const fetchSpan = inTrace().find(
      (span) =>
        span.service === "gateway" && span.kind === CLIENT && attribute(span, "url.full") === usersGraphqlUrl,
    );
    const usersServer = inTrace().find((span) => span.service === "users" && span.kind === SERVER);
    expect(fetchSpan).toBeDefined();
    expect(usersServer?.parentSpanId).toBe(fetchSpan?.spanId);
    // GraphQL execution was traced in the subgraph too.
    expect(inTrace().some((span) => span.service === "users" && span.name.startsWith("graphql."))).toBe(true);

    // The subgraph's request log line carries the same trace id.
    const line = await eventually(
      () =>
        output.users
          .split("\n")
          .filter((text) => text.startsWith("{"))
          .map(
            (text) =>
              JSON.parse(text) as { msg?: string; operationName?: string; traceId?: string; spanId?: string },
          )
          .find((entry) => entry.msg === "graphql request" && entry.operationName?.startsWith("TracedUser")),
      "the users subgraph's log line of the request",
    );
    expect(line.traceId).toBe(traceId);
    expect(line.spanId).toMatch(/^[0-9a-f]{16}$/);
  });
});

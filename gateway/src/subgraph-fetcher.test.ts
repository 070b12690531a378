import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  silentLogger,
  ErrorCode,
  SERVICE_KEEP_ALIVE_MS,
  startService,
  type RequestContextBase,
} from "@hv/kit";
import { buildSchema, type GraphQLError } from "graphql";
import { createSubgraphFetcher, UPSTREAM_IDLE_MS } from "./subgraph-fetcher";

describe("the gateway's subgraph fetcher against a subgraph's HTTP front", () => {
  it("should close an idle pooled connection before the subgraph would", async () => {
    const schema = buildSchema("type Query { ok: Boolean }");
    const service = await startService<RequestContextBase>({
      name: "keep-alive",
      logger: silentLogger("keep-alive"),
      host: "127.0.0.1",
      port: 0,
      isProduction: true,
      graphql: { schema },
      trustProxy: false,
      maxBodyBytes: 1024,
      readiness: [],
      authenticate: async () => null,
      context: async (base) => base,
    });
    const fetcher = createSubgraphFetcher(5_000);
    try {
      const answer = await fetcher.fetch(service.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ ok }" }),
      });
      expect(answer.status).toBe(200);
      // What the subgraph advertises is what undici would otherwise wait for; the pool's own limit is lower.
      const advertised = /timeout=(\d+)/.exec(answer.headers.get("keep-alive") ?? "")?.[1];
      expect(Number(advertised) * 1000).toBe(SERVICE_KEEP_ALIVE_MS);
      expect(UPSTREAM_IDLE_MS).toBeLessThan(SERVICE_KEEP_ALIVE_MS);
    } finally {
      await fetcher.close();
      await service.stop();
    }
  });
});

describe("the gateway's subgraph fetcher's answers", () => {
  /** A plain HTTP server on a free port; `answer` serves every request. */
  const serve = async (answer: http.RequestListener) => {
    const server = http.createServer(answer);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/graphql?x=1`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      server,
    };
  };

  it("should hand over status, headers and the whole body, and send method, path, headers and body", async () => {
    const seen: Array<{ method: string | undefined; url: string | undefined; header: string; body: string }> =
      [];
    const target = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        seen.push({
          method: req.method,
          url: req.url,
          header: req.headers["x-request-id"] as string,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        res.statusCode = 400;
        res.setHeader("cache-control", "private, max-age=5");
        res.setHeader("set-cookie", ["a=1", "b=2"]);
        // Two writes: the body arrives as more than one chunk.
        res.write('{"errors":[{"message":"');
        setImmediate(() => res.end(`${"x".repeat(70_000)}"}]}`));
      });
    });
    const fetcher = createSubgraphFetcher(5_000);
    try {
      const answer = await fetcher.fetch(target.url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "r-1" },
        body: '{"query":"{ ok }"}',
      });
      expect({ status: answer.status, ok: answer.ok, statusText: answer.statusText }).toEqual({
        status: 400,
        ok: false,
        statusText: "Bad Request",
      });
      expect(answer.headers.get("cache-control")).toBe("private, max-age=5");
      expect(answer.headers.get("set-cookie")).toBe("a=1, b=2");
      const body = (await answer.json()) as { errors: Array<{ message: string }> };
      expect(body.errors[0]!.message).toHaveLength(70_000);
      expect(seen).toEqual([
        { method: "POST", url: "/graphql?x=1", header: "r-1", body: '{"query":"{ ok }"}' },
      ]);
    } finally {
      await fetcher.close();
      await target.close();
    }
  });

  it("should answer UPSTREAM_TIMEOUT for a subgraph that does not answer within the deadline", async () => {
    const held: http.ServerResponse[] = [];
    const target = await serve((_req, res) => held.push(res));
    const fetcher = createSubgraphFetcher(50);
    try {
      const failure = await fetcher.fetch(target.url, { method: "POST", headers: {}, body: "{}" }).then(
        () => undefined,
        (error: unknown) => error as GraphQLError,
      );
      expect(failure?.extensions.code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    } finally {
      for (const res of held) res.destroy();
      await fetcher.close();
      await target.close();
    }
  });

  it("should reject with the connection's error when no subgraph listens", async () => {
    const target = await serve(() => undefined);
    await target.close();
    const fetcher = createSubgraphFetcher(5_000);
    try {
      const failure = await fetcher.fetch(target.url, { method: "POST", headers: {}, body: "{}" }).then(
        () => undefined,
        (error: unknown) => error as Error & { code?: string },
      );
      expect(failure?.code).toBe("ECONNREFUSED");
    } finally {
      await fetcher.close();
    }
  });
});

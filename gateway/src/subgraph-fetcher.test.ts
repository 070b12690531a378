import { Writable } from "node:stream";
import { createLogger, SERVICE_KEEP_ALIVE_MS, startService, type RequestContextBase } from "@hv/kit";
import { buildSchema } from "graphql";
import { createSubgraphFetcher, UPSTREAM_IDLE_MS } from "./subgraph-fetcher";

describe("the gateway's subgraph fetcher against a subgraph's HTTP front", () => {
  it("should close an idle pooled connection before the subgraph would", async () => {
    const schema = buildSchema("type Query { ok: Boolean }");
    const service = await startService<RequestContextBase>({
      name: "keep-alive",
      logger: createLogger({
        service: "keep-alive",
        level: "silent",
        destination: new Writable({ write: (_c, _e, done) => done() }),
      }),
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

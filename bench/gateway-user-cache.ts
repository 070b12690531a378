/**
 * The gateway's cost of one Users entity fetch with and without the user cache
 * (gateway/src/public-user-cache.ts), in one process, in interleaved rounds; CPU µs per fetch
 * from `process.cpuUsage()`. "fetch" is the real SubgraphDataSource sending the fetch over HTTP
 * (undici, keep-alive) to a local server that answers canned JSON at once (its CPU is counted
 * too: it is this process); "cache" is the same data source behind the cache, every entity kept.
 *
 *   pnpm exec tsx bench/gateway-user-cache.ts [--rounds 6] [--requests 2000]
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import { createLogger } from "@hv/kit";
import { PublicUserCache } from "@hv/gateway/src/public-user-cache";
import { SubgraphDataSource, type GatewayContext } from "@hv/gateway/src/subgraph-data-source";
import { createSubgraphFetcher } from "@hv/gateway/src/subgraph-fetcher";
import type { UserChanges } from "@hv/gateway/src/subscriptions/user-changes";
import { buildSchema } from "graphql";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const rounds = flag("rounds", 6);
const requests = flag("requests", 2000);

const schema = buildSchema(`
  scalar _Any
  union _Entity = User
  type User { id: ID! displayName: String! }
  type Query { _entities(representations: [_Any!]!): [_Entity]! }
`);
const QUERY = `query ChatSendMessage__users__1($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;

async function main() {
  printHeader("gateway-user-cache.ts");
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        variables: { representations: Array<{ id: string }> };
      };
      const entities = body.variables.representations.map((r) => ({ displayName: `Person ${r.id}` }));
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "max-age=30, public");
      res.end(JSON.stringify({ data: { _entities: entities } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const fetcher = createSubgraphFetcher(10_000);
  const source = new SubgraphDataSource({
    subgraphName: "users",
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    fetcher: fetcher.fetch,
  });
  const live: UserChanges = { live: true, onChange: () => undefined, stop: async () => undefined };
  const cache = new PublicUserCache({ keepMs: 3_600_000, maxUsers: 100_000, userChanges: live });
  cache.setSupergraph({ version: "1", schema });
  const cached = cache.wrap(source);
  const logger = createLogger({ service: "bench", level: "silent" });
  const context: GatewayContext = {
    requestId: "bench",
    logger,
    viewer: { userId: "viewer", sessionId: "s", role: "USER" } as GatewayContext["viewer"],
    clientIp: "127.0.0.1",
    authorization: "Bearer x",
  };
  const options = (size: number) => ({
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
    request: {
      query: QUERY,
      variables: {
        representations: Array.from({ length: size }, (_, i) => ({ __typename: "User", id: `u${i}` })),
      },
    },
    context,
  });
  const variants = { fetch: source, cache: cached } as const;
  for (const size of [1, 50]) {
    await cached.process(options(size) as never); // fills the cache
    const results: Record<string, number[]> = { fetch: [], cache: [] };
    for (let round = 0; round < rounds; round += 1) {
      const order = round % 2 === 0 ? (["fetch", "cache"] as const) : (["cache", "fetch"] as const);
      for (const name of order) {
        const started = process.cpuUsage();
        for (let i = 0; i < requests; i += 1) await variants[name].process(options(size) as never);
        const spent = process.cpuUsage(started);
        results[name]!.push((spent.user + spent.system) / requests);
      }
    }
    console.log(
      `${size} representation(s): CPU-µs per fetch, ${rounds} interleaved rounds of ${requests}: fetch ${results.fetch!.map((v) => v.toFixed(0)).join(" / ")}; cache ${results.cache!.map((v) => v.toFixed(0)).join(" / ")}`,
    );
  }
  console.log(`cache: ${JSON.stringify(cache.stats)}; load average ${loadAverage()}`);
  await fetcher.close();
  server.close();
}

void main();

/**
 * HTTP clients for the gateway's subgraph fetches, side by side in one process: CPU µs per POST
 * (`process.cpuUsage()`, the client's process only; the server is a child process answering a
 * user(id)-sized JSON body with a subgraph's headers), at `--concurrency` requests in flight, in
 * interleaved rounds (each started by another client, a full collection before each run). Clients: the gateway's fetcher (gateway/src/subgraph-fetcher.ts), undici's
 * `request` on an Agent, on a Pool, on a Pool with pipelining, node:http with a keep-alive Agent,
 * and the global `fetch`.
 *
 *   pnpm exec tsx bench/subgraph-fetch-clients.ts [--rounds 5] [--requests 3000] [--concurrency 16] [--baseline FILE] [--only-fetchers]
 *
 * `--baseline FILE` adds another version of gateway/src/subgraph-fetcher.ts (e.g. `git show
 * main:gateway/src/subgraph-fetcher.ts > gateway/src/baseline-fetcher.ts`, deleted after) as
 * "baseline fetcher"; `--only-fetchers` leaves out every client but the gateway's fetchers.
 */
import { fork, type ChildProcess } from "node:child_process";
import http from "node:http";
import { once } from "node:events";
import { createRequire } from "node:module";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createSubgraphFetcher } from "@hv/gateway/src/subgraph-fetcher";
import { argument, flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

/** The part of undici this bench calls (it is the gateway's dependency, resolved from gateway/). */
interface Dispatcher {
  close(): Promise<void>;
}
interface Undici {
  Agent: new (options: Record<string, unknown>) => Dispatcher;
  Pool: new (origin: string, options: Record<string, unknown>) => Dispatcher;
  request(
    url: string,
    options: { method: string; headers: Record<string, string>; body: string; dispatcher: Dispatcher },
  ): Promise<{ body: { text(): Promise<string> } }>;
}
const { Agent, Pool, request } = createRequire(path.resolve(__dirname, "../gateway/package.json"))(
  "undici",
) as Undici;

const rounds = flag("rounds", 5);
const requests = flag("requests", 3000);
const concurrency = flag("concurrency", 16);

const ANSWER = JSON.stringify({
  data: { user: { __typename: "User", id: "0b6b0e1c-2f3a-4c1e-9a57-3d1c2b4a5e6f", displayName: "Person 1" } },
});
const REQUEST_BODY = JSON.stringify({
  query: "query User__users__0($id:ID!){user(id:$id){__typename id displayName}}",
  variables: { id: "0b6b0e1c-2f3a-4c1e-9a57-3d1c2b4a5e6f" },
  operationName: "User__users__0",
});
const REQUEST_HEADERS: Record<string, string> = {
  "content-type": "application/json",
  authorization: `Bearer ${"x".repeat(480)}`,
  "x-request-id": "6f1c8a0e-0b1d-4c55-9d57-4f3a2b1c0d9e",
  "x-forwarded-for": "10.1.2.3",
};

/** The child: a node:http server answering every POST with ANSWER, as a subgraph would. */
function serve(): void {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, {
        "content-type": "application/graphql-response+json; charset=utf-8",
        "cache-control": "private, max-age=0",
        "x-request-id": req.headers["x-request-id"] ?? "",
        "content-length": Buffer.byteLength(ANSWER),
      });
      res.end(ANSWER);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send?.(typeof address === "object" && address ? address.port : 0);
  });
}

type Client = { name: string; post(url: string): Promise<string>; close(): Promise<void> };

function clients(origin: string): Client[] {
  const fetcher = createSubgraphFetcher(10_000);
  const baselineFile = argument("baseline");
  const baseline = baselineFile
    ? (
        createRequire(__filename)(path.resolve(baselineFile)) as {
          createSubgraphFetcher: typeof createSubgraphFetcher;
        }
      ).createSubgraphFetcher(10_000)
    : undefined;
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const pool = new Pool(origin, { keepAliveTimeout: 30_000, connections: 64 });
  const pipelined = new Pool(origin, { keepAliveTimeout: 30_000, connections: 16, pipelining: 4 });
  const nodeAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const viaUndici = (dispatcher: Dispatcher) => async (url: string) => {
    const response = await request(url, {
      method: "POST",
      headers: REQUEST_HEADERS,
      body: REQUEST_BODY,
      dispatcher,
    });
    return response.body.text();
  };
  return [
    {
      name: "gateway fetcher",
      post: async (url) =>
        (await fetcher.fetch(url, { method: "POST", headers: REQUEST_HEADERS, body: REQUEST_BODY })).text(),
      close: () => fetcher.close(),
    },
    ...(baseline
      ? [
          {
            name: "baseline fetcher",
            post: async (url: string) =>
              (
                await baseline.fetch(url, { method: "POST", headers: REQUEST_HEADERS, body: REQUEST_BODY })
              ).text(),
            close: () => baseline.close(),
          },
        ]
      : []),
    { name: "undici request, Agent", post: viaUndici(agent), close: () => agent.close() },
    { name: "undici request, Pool", post: viaUndici(pool), close: () => pool.close() },
    { name: "undici request, Pool pipelining 4", post: viaUndici(pipelined), close: () => pipelined.close() },
    {
      name: "node:http, keep-alive Agent",
      post: (url) =>
        new Promise<string>((resolve, reject) => {
          const req = http.request(
            url,
            { method: "POST", headers: REQUEST_HEADERS, agent: nodeAgent },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (chunk: Buffer) => chunks.push(chunk));
              res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
              res.on("error", reject);
            },
          );
          req.on("error", reject);
          req.end(REQUEST_BODY);
        }),
      close: async () => nodeAgent.destroy(),
    },
    {
      name: "global fetch",
      post: async (url) =>
        (await fetch(url, { method: "POST", headers: REQUEST_HEADERS, body: REQUEST_BODY })).text(),
      close: async () => undefined,
    },
  ];
}

/** A full collection, so that a client does not pay for the garbage of the one before it. */
const collect = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

async function run(client: Client, url: string, count: number): Promise<number> {
  collect();
  let next = 0;
  const started = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        const text = await client.post(url);
        if (text !== ANSWER) throw new Error(`${client.name} read another answer: ${text}`);
      }
    }),
  );
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

async function main(): Promise<void> {
  printHeader("subgraph-fetch-clients");
  const child: ChildProcess = fork(__filename, ["--serve"], { stdio: "inherit" });
  const [port] = (await once(child, "message")) as [number];
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/graphql`;
  const onlyFetchers = process.argv.includes("--only-fetchers");
  const all = clients(origin).filter((client) => !onlyFetchers || client.name.endsWith(" fetcher"));
  for (const client of all) await run(client, url, 300);
  const figures = new Map<string, number[]>(all.map((client) => [client.name, []]));
  // Each round starts with another client: the first of a round pays for the pause before it.
  for (let round = 0; round < rounds; round += 1) {
    for (let i = 0; i < all.length; i += 1) {
      const client = all[(round + i) % all.length]!;
      figures.get(client.name)!.push(await run(client, url, requests));
    }
  }
  console.log(
    `CPU µs per POST (client process), ${concurrency} in flight, median of ${rounds} interleaved rounds of ${requests}; load average ${loadAverage()}`,
  );
  for (const [name, values] of figures) {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `  ${name.padEnd(36)} ${median.toFixed(0).padStart(5)}  (rounds ${values.map((v) => v.toFixed(0)).join(" ")})`,
    );
  }
  for (const client of all) await client.close();
  child.kill();
}

if (process.argv.includes("--serve")) serve();
else
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });

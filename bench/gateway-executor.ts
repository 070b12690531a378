/**
 * The gateway's executor alone: Apollo Server (`executeOperation`, no HTTP) over `@apollo/gateway`,
 * with Apollo's own executor ("stock") and with ours (gateway/src/query-executor.ts), in one
 * process, in interleaved rounds; CPU µs per operation from `process.cpuUsage()`. The subgraphs
 * are two small in-process schemas whose answers are recorded on first use and replayed, so the
 * figure is the gateway's work (pipeline, plan, fetch bookkeeping, result shaping) only.
 *
 * With `--baseline FILE`, another commit's query-executor.ts runs too, in the same rounds: a
 * before/after of our executor in one process. FILE must sit in gateway/ (one graphql module):
 *
 *   git show main:gateway/src/query-executor.ts > gateway/baseline-executor.ts   # delete after
 *   pnpm exec tsx bench/gateway-executor.ts [--rounds 6] [--requests 2000] [--baseline gateway/baseline-executor.ts]
 */
import { composeServices } from "@apollo/composition";
import {
  ApolloGateway,
  LocalGraphQLDataSource,
  type GraphQLDataSource,
  type GraphQLDataSourceProcessOptions,
  type ServiceMap,
} from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import type { GatewayInterface } from "@hv/kit";
import { withQueryExecutor } from "@hv/gateway/src/query-executor";
import { parse } from "graphql";
import { resolve } from "node:path";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const rounds = flag("rounds", 6);
const requests = flag("requests", 2000);
const baselineIndex = process.argv.indexOf("--baseline");
const baselineFile = baselineIndex < 0 ? undefined : process.argv[baselineIndex + 1];

const people = Array.from({ length: 50 }, (_, i) => ({
  id: String(i),
  displayName: `Person ${i}`,
  age: 20 + (i % 30),
  bio: "Likes long walks and short benches.",
  interests: ["hiking", "coffee", "films"],
}));

const usersTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Query { user(id: ID!): User people(first: Int!): [User!]! }
  type User @key(fields: "id") { id: ID! displayName: String! age: Int bio: String interests: [String!]! }
`);
const photosTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires"])
  type User @key(fields: "id") {
    id: ID!
    age: Int @external
    photos: [Photo!]!
    ageBand: String @requires(fields: "age")
  }
  type Photo { id: ID! width: Int! height: Int! blurhash: String owner: User }
`);

const usersSchema = buildSubgraphSchema([
  {
    typeDefs: usersTypeDefs,
    resolvers: {
      Query: {
        user: (_: unknown, { id }: { id: string }) => people[Number(id)] ?? null,
        people: (_: unknown, { first }: { first: number }) => people.slice(0, first),
      },
      User: { __resolveReference: ({ id }: { id: string }) => people[Number(id)] },
    } as GraphQLResolverMap<unknown>,
  },
]);

const photosSchema = buildSubgraphSchema([
  {
    typeDefs: photosTypeDefs,
    resolvers: {
      User: {
        photos: ({ id }: { id: string }) =>
          [0, 1, 2].map((n) => ({
            id: `${id}-${n}`,
            width: 1080,
            height: 1350,
            blurhash: "LEHV6nWB2yk8",
            owner: { id },
          })),
        ageBand: ({ age }: { age: number | null }) => (age === null ? null : `${Math.floor(age / 10) * 10}s`),
      },
    } as GraphQLResolverMap<unknown>,
  },
]);

/** Answers each distinct fetch from the subgraph once, then replays it. */
class Replay implements GraphQLDataSource {
  private readonly answers = new Map<string, Awaited<ReturnType<GraphQLDataSource["process"]>>>();
  constructor(private readonly inner: GraphQLDataSource) {}
  async process(options: GraphQLDataSourceProcessOptions) {
    const key = JSON.stringify([options.request.query, options.request.variables]);
    let answer = this.answers.get(key);
    if (!answer) {
      answer = await this.inner.process(options);
      this.answers.set(key, answer);
    }
    return structuredClone(answer);
  }
}

const QUERIES: Record<string, { query: string; variables: Record<string, unknown> }> = {
  "user(id)": {
    query: `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`,
    variables: { id: "7" },
  },
  "50 people + photos (2 fetches)": {
    query: `query People($first: Int!) { people(first: $first) { id displayName age bio interests photos { id width height blurhash } } }`,
    variables: { first: 50 },
  },
  "50 people, @requires, photo owners (3 fetches)": {
    query: `query Band($first: Int!) { people(first: $first) { id ageBand ... on User { photos { id owner { displayName } } } } }`,
    variables: { first: 50 },
  },
};

function gateway(supergraphSdl: string, dataSources: ServiceMap): GatewayInterface {
  return new ApolloGateway({
    supergraphSdl,
    buildService: ({ name }: { name: string }) =>
      (dataSources[name] = new Replay(
        new LocalGraphQLDataSource(name === "users" ? usersSchema : photosSchema),
      )),
  }) as unknown as GatewayInterface;
}

async function main(): Promise<void> {
  printHeader("gateway-executor.ts");
  const supergraph = composeServices([
    { name: "users", url: "http://users", typeDefs: usersTypeDefs },
    { name: "photos", url: "http://photos", typeDefs: photosTypeDefs },
  ]);
  if (supergraph.errors) throw new Error(supergraph.errors.map((e) => e.message).join("\n"));
  const withExecutor = (wrap: typeof withQueryExecutor) => {
    const sources: ServiceMap = {};
    return new ApolloServer({ gateway: wrap(gateway(supergraph.supergraphSdl, sources), sources) });
  };
  const servers: Record<string, ApolloServer> = {
    stock: new ApolloServer({ gateway: gateway(supergraph.supergraphSdl, {}) }),
    ours: withExecutor(withQueryExecutor),
  };
  if (baselineFile) {
    const baseline = (await import(resolve(baselineFile))) as {
      withQueryExecutor: typeof withQueryExecutor;
    };
    servers.baseline = withExecutor(baseline.withQueryExecutor);
  }
  const names = Object.keys(servers);
  for (const server of Object.values(servers)) await server.start();
  const samples: Record<string, Record<string, number[]>> = {};
  for (const [queryName, request] of Object.entries(QUERIES)) {
    const expected = JSON.stringify((await servers.stock!.executeOperation(request)).body);
    for (const name of names) {
      if (JSON.stringify((await servers[name]!.executeOperation(request)).body) !== expected) {
        throw new Error(`${queryName}: ${name} and stock answer differently`);
      }
    }
    const perExecutor = Object.fromEntries(names.map((name) => [name, [] as number[]]));
    samples[queryName] = perExecutor;
    for (let round = 0; round < rounds; round += 1) {
      // Each executor first, middle and last in turn.
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const name of order) {
        const server = servers[name]!;
        for (let i = 0; i < 200; i += 1) await server.executeOperation(request); // warm
        const before = process.cpuUsage();
        for (let i = 0; i < requests; i += 1) await server.executeOperation(request);
        const used = process.cpuUsage(before);
        perExecutor[name]!.push((used.user + used.system) / requests);
      }
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    `CPU µs per operation, median of ${rounds} interleaved rounds of ${requests}; load average ${loadAverage()}:`,
  );
  for (const [queryName, perExecutor] of Object.entries(samples)) {
    const stock = median(perExecutor.stock!);
    const figures = names.map((name) => {
      const value = median(perExecutor[name]!);
      return name === "stock"
        ? `stock ${value.toFixed(0)}`
        : `${name} ${value.toFixed(0)} (${((value / stock - 1) * 100).toFixed(0)}%)`;
    });
    console.log(`  ${queryName}: ${figures.join(", ")}`);
  }
  for (const server of Object.values(servers)) await server.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

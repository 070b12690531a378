import { composeServices } from "@apollo/composition";
import {
  ApolloGateway,
  LocalGraphQLDataSource,
  RemoteGraphQLDataSource,
  type ServiceMap,
} from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import type { GatewayInterface } from "@hv/kit";
import { GraphQLError, parse } from "graphql";
import { withQueryExecutor } from "./query-executor";

const users = {
  name: "users",
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"])
    type Query {
      user(id: ID!): User
      strict(id: ID!): User!
      search: [Result!]!
      things: [Thing!]!
    }
    type Mutation { rename(id: ID!, name: String!): User }
    type User @key(fields: "id") { id: ID! name: String! nick: String secret: String role: Role! }
    type Post { title: String! }
    union Result = User | Post
    interface Thing { id: ID! }
    type Box implements Thing { id: ID! size: Int }
    enum Role { ADMIN MEMBER }
  `),
};

const reviews = {
  name: "reviews",
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
    type User @key(fields: "id") { id: ID! reviews: [Review!]! }
    type Review { body: String! }
  `),
};

const offline = {
  name: "offline",
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
    type Query { down: String }
  `),
};

type UserRow = { id: string; name: string | null; nick: string | null; role: string };
const PEOPLE: Record<string, UserRow> = {
  "1": { id: "1", name: "Ada", nick: "a", role: "ADMIN" },
  "2": { id: "2", name: "Bo", nick: null, role: "MEMBER" },
  // A subgraph that breaks its own contract: a non-null field null (the gateway nulls the parent).
  broken: { id: "broken", name: null, nick: null, role: "MEMBER" },
};

const usersSchema = buildSubgraphSchema([
  {
    typeDefs: users.typeDefs,
    resolvers: {
      Query: {
        user: (_: unknown, { id }: { id: string }) => PEOPLE[id] ?? null,
        strict: (_: unknown, { id }: { id: string }) => {
          if (!PEOPLE[id]) throw new GraphQLError("no such user", { extensions: { code: "NOT_FOUND" } });
          return PEOPLE[id];
        },
        search: () => [
          { __typename: "User", ...PEOPLE["1"] },
          { __typename: "Post", title: "hello" },
        ],
        things: () => [{ __typename: "Box", id: "b1", size: 3 }],
      },
      Mutation: {
        rename: (_: unknown, { id, name }: { id: string; name: string }) => ({ ...PEOPLE[id], id, name }),
      },
      Result: { __resolveType: (value: { __typename: string }) => value.__typename },
      Thing: { __resolveType: (value: { __typename: string }) => value.__typename },
      User: {
        __resolveReference: ({ id }: { id: string }) => PEOPLE[id],
        secret: ({ id }: { id: string }) => {
          if (id === "1") throw new GraphQLError("not yours", { extensions: { code: "FORBIDDEN" } });
          throw new Error("the secret store is down");
        },
      },
    } as GraphQLResolverMap<unknown>,
  },
]);

const reviewsSchema = buildSubgraphSchema([
  {
    typeDefs: reviews.typeDefs,
    resolvers: {
      User: { reviews: ({ id }: { id: string }) => [{ body: `about ${id}` }] },
    } as GraphQLResolverMap<unknown>,
  },
]);

/** A gateway over the subgraphs above, filling `dataSources` as it builds them (as gateway/src/server.ts does). */
function gatewayOver(supergraphSdl: string, dataSources: ServiceMap = {}): GatewayInterface {
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ name }) => {
      const source =
        name === "users"
          ? new LocalGraphQLDataSource(usersSchema)
          : name === "reviews"
            ? new LocalGraphQLDataSource(reviewsSchema)
            : // Nothing listens on port 1: the fetch fails as an unreachable subgraph's does.
              new RemoteGraphQLDataSource({ url: "http://127.0.0.1:1/graphql" });
      dataSources[name] = source;
      return source;
    },
  });
  return gateway as unknown as GatewayInterface;
}

const CASES: Array<{
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}> = [
  { name: "one field", query: `{ user(id: "1") { id name } }` },
  {
    name: "aliases and __typename",
    query: `{ a: user(id: "1") { __typename ident: id n: name } b: user(id: "2") { id nick } __typename }`,
  },
  {
    name: "@skip and @include on variables",
    query: `query Q($s: Boolean!) { user(id: "1") { id name @skip(if: $s) nick @include(if: $s) } }`,
    variables: { s: true },
  },
  {
    name: "@skip and @include, the other way",
    query: `query Q($s: Boolean!) { user(id: "1") { id name @skip(if: $s) nick @include(if: $s) } }`,
    variables: { s: false },
  },
  { name: "a missing user", query: `{ user(id: "nobody") { id name } }` },
  { name: "non-null violated inside a nullable field", query: `{ user(id: "broken") { id name } }` },
  { name: "non-null root field with an error", query: `{ strict(id: "nobody") { id } }` },
  { name: "a catalogued subgraph error with its path", query: `{ user(id: "1") { id secret } }` },
  { name: "an uncatalogued subgraph error", query: `{ user(id: "2") { id secret } }` },
  {
    name: "fragments, named and inline",
    query: `query Named { user(id: "1") { ...F ... on User { role } } } fragment F on User { id name }`,
    operationName: "Named",
  },
  {
    name: "one of several operations",
    query: `query A { user(id: "1") { id } } query B { user(id: "2") { name } }`,
    operationName: "B",
  },
  {
    name: "a union and an interface",
    query: `{ search { __typename ... on User { id name } ... on Post { title } } things { id ... on Box { size } } }`,
  },
  { name: "variables of the wrong type", query: `query Q($id: ID!) { user(id: $id) { id } }`, variables: {} },
  {
    name: "variables passed on",
    query: `query Q($id: ID!, $s: Boolean = false) { user(id: $id) { id name @skip(if: $s) } }`,
    variables: { id: "2", extra: 3 },
  },
  { name: "a mutation", query: `mutation { rename(id: "1", name: "Ann") { id name } }` },
  { name: "two subgraphs", query: `{ user(id: "1") { id name reviews { body } } }` },
  {
    name: "introspection beside a fetch",
    query: `{ __schema { queryType { name } } user(id: "1") { id } __type(name: "Role") { enumValues { name } } }`,
  },
  { name: "an unreachable subgraph", query: `{ down user(id: "1") { id } }` },
  { name: "only an unreachable subgraph", query: `{ down }` },
];

describe("the gateway's query executor", () => {
  const composed = composeServices([
    { ...users, url: "http://users" },
    { ...reviews, url: "http://reviews" },
    { ...offline, url: "http://offline" },
  ]);
  if (composed.errors) throw new Error(composed.errors.map((e) => e.message).join("\n"));
  const supergraphSdl = composed.supergraphSdl;
  const servers: ApolloServer[] = [];

  async function serverOf(gateway: GatewayInterface): Promise<ApolloServer> {
    const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
    servers.push(server);
    await server.start();
    return server;
  }

  afterAll(async () => {
    for (const server of servers) await server.stop();
  });

  it("should answer every case exactly as @apollo/gateway's own executor", async () => {
    const stock = await serverOf(gatewayOver(supergraphSdl));
    const dataSources: ServiceMap = {};
    const gateway = withQueryExecutor(gatewayOver(supergraphSdl, dataSources), dataSources);
    const wrapped = await serverOf(gateway);
    for (const { name, ...request } of CASES) {
      // Twice: the first request plans, the second reuses the plan.
      for (let round = 0; round < 2; round += 1) {
        const expected = await stock.executeOperation(request);
        const actual = await wrapped.executeOperation(request);
        expect({ name, round, answer: JSON.stringify(actual.body) }).toEqual({
          name,
          round,
          answer: JSON.stringify(expected.body),
        });
      }
    }
    // Each document planned once (the two @skip cases are one; wrong variables are refused before
    // planning); all run as one fetch but three: two subgraphs, introspection beside a fetch, and
    // the unreachable subgraph beside users (two parallel fetches).
    expect(gateway.executorStats()).toEqual({
      planned: CASES.length - 2,
      singleFetchRuns: 2 * 15,
      planRuns: 2 * 3,
    });
  });
});

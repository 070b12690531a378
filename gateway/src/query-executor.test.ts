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
      people(ids: [ID!]!): [User]!
    }
    type Mutation { rename(id: ID!, name: String!): User }
    type User @key(fields: "id") { id: ID! name: String! nick: String secret: String role: Role! }
    type Post { title: String! }
    union Result = User | Post
    interface Thing { id: ID! }
    type Box implements Thing @key(fields: "id") { id: ID! size: Int }
    enum Role { ADMIN MEMBER }
  `),
};

const reviews = {
  name: "reviews",
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires"])
    type User @key(fields: "id") {
      id: ID!
      name: String! @external
      reviews: [Review!]!
      greeting: String @requires(fields: "name")
      rating: Int!
    }
    type Review { body: String! author: User }
    type Box @key(fields: "id") { id: ID! label: String }
  `),
};

/** A subgraph answering every fetch with the same data, some of it of the wrong shape (see RAW). */
const raw = {
  name: "raw",
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
    type Query { raw: Raw rawList: [Raw!] }
    type Raw {
      id: ID!
      count: Int
      strictCount: Int!
      ratio: Float
      flag: Boolean
      color: Color
      nested: Raw
      list: [Int]
      other: Raw
    }
    enum Color { RED GREEN }
  `),
};

const RAW = {
  raw: {
    id: "r1",
    count: 1.5,
    strictCount: "many",
    ratio: 2,
    flag: "yes",
    color: "PURPLE",
    nested: "oops",
    list: "not a list",
    other: { __typename: "Nope", id: "x" },
  },
  rawList: [{ id: "r1" }, null],
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
        people: (_: unknown, { ids }: { ids: string[] }) => ids.map((id) => PEOPLE[id] ?? null),
      },
      Mutation: {
        rename: (_: unknown, { id, name }: { id: string; name: string }) => ({ ...PEOPLE[id], id, name }),
      },
      Result: { __resolveType: (value: { __typename: string }) => value.__typename },
      Thing: { __resolveType: (value: { __typename: string }) => value.__typename },
      Box: { __resolveReference: ({ id }: { id: string }) => ({ id, size: 3 }) },
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
      User: {
        reviews: ({ id }: { id: string }) => {
          if (id === "2") throw new GraphQLError("reviews are down", { extensions: { code: "UNAVAILABLE" } });
          return [{ body: `about ${id}`, author: { id: "2" } }];
        },
        greeting: ({ name }: { name: string }) => `Hello ${name}`,
        // A subgraph breaking its contract for one user: its own non-null field null.
        rating: ({ id }: { id: string }) => (id === "2" ? null : 5),
      },
      Box: {
        __resolveReference: ({ id }: { id: string }) => ({ id }),
        label: ({ id }: { id: string }) => `box ${id}`,
      },
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
            : name === "raw"
              ? { process: async () => ({ data: structuredClone(RAW) }) }
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
  /** Who runs it: refused before planning, Apollo's executeQueryPlan, or ours with computeResponse shaping it. */
  by?: "refused" | "apollo" | "apollo-shaping";
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
  {
    name: "variables of the wrong type",
    query: `query Q($id: ID!) { user(id: $id) { id } }`,
    variables: {},
    by: "refused",
  },
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
    by: "apollo",
  },
  { name: "an unreachable subgraph", query: `{ down user(id: "1") { id } }` },
  { name: "only an unreachable subgraph", query: `{ down }` },
  { name: "only __typename", query: `{ __typename t: __typename }` },
  {
    name: "entities of a list, with @requires",
    query: `{ people(ids: ["1", "nobody", "1"]) { id name greeting reviews { body author { id name } } } }`,
  },
  {
    name: "@requires without the required field selected",
    query: `{ people(ids: ["1"]) { greeting g: greeting } }`,
  },
  {
    name: "an entity fetch's error, its path into the list",
    query: `{ people(ids: ["1", "2"]) { id reviews { body } } }`,
  },
  {
    name: "a non-null field null in an entity fetch",
    query: `{ people(ids: ["1", "2"]) { id rating } user(id: "2") { id rating } }`,
  },
  { name: "a broken entity beside a requires", query: `{ people(ids: ["broken", "1"]) { id greeting } }` },
  {
    name: "a Condition node, included",
    query: `query Q($r: Boolean!) { user(id: "1") { id reviews @include(if: $r) { body } name @skip(if: $r) } }`,
    variables: { r: true },
  },
  {
    name: "a Condition node, not included",
    query: `query Q($r: Boolean!) { user(id: "1") { id reviews @include(if: $r) { body } name @skip(if: $r) } }`,
    variables: { r: false },
  },
  {
    name: "a defaulted condition variable",
    query: `query D($r: Boolean = true) { user(id: "1") { id ...R @include(if: $r) } } fragment R on User { reviews { body } }`,
  },
  {
    name: "a defaulted condition variable sent as null",
    query: `query D($r: Boolean = true) { user(id: "1") { id ...R @include(if: $r) } } fragment R on User { reviews { body } }`,
    variables: { r: null },
  },
  {
    name: "a defaulted condition variable sent as null, on a root __typename",
    query: `query E($r: Boolean = true) { user(id: "1") { id } t: __typename @include(if: $r) }`,
    variables: { r: null },
    by: "apollo-shaping",
  },
  {
    name: "constant conditions",
    query: `{ user(id: "1") { id a: name @include(if: false) b: name @skip(if: false) reviews @skip(if: true) { body } } }`,
  },
  {
    name: "entities behind a union and an interface",
    query: `query U { search { ...R } things { __typename id ... on Box { size label } } } fragment R on Result { ... on User { id reviews { body } } ... on Post { title } __typename }`,
  },
  {
    name: "the same field twice with different selections",
    query: `{ user(id: "1") { reviews { body } ... on User { reviews { author { id } } } } }`,
  },
  {
    name: "a mutation over two subgraphs",
    query: `mutation { rename(id: "1", name: "Ann") { id greeting reviews { body } } }`,
  },
  { name: "leaf values the types refuse", query: `{ raw { id count ratio flag color } }` },
  { name: "a non-null leaf the type refuses", query: `{ raw { id strictCount } }` },
  { name: "an unknown __typename", query: `{ raw { other { id } } }` },
  { name: "a non-null list element null", query: `{ rawList { id } }` },
  { name: "a string for an object", query: `{ raw { nested { id } } }`, by: "apollo-shaping" },
  { name: "a string for a list", query: `{ raw { id list } }`, by: "apollo-shaping" },
];

describe("the gateway's query executor", () => {
  const composed = composeServices([
    { ...users, url: "http://users" },
    { ...reviews, url: "http://reviews" },
    { ...offline, url: "http://offline" },
    { ...raw, url: "http://raw" },
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
    // Each document planned once (cases that differ by variables share it); introspection runs
    // through executeQueryPlan, the rest through our walker; answers of the wrong shape and a
    // condition variable that is not a boolean are shaped by computeResponse.
    const planned = new Set(
      CASES.filter((c) => c.by !== "refused").map((c) => `${c.query}\0${c.operationName ?? ""}`),
    );
    const count = (by: (typeof CASES)[number]["by"]) => 2 * CASES.filter((c) => c.by === by).length;
    expect(gateway.executorStats()).toEqual({
      planned: planned.size,
      compiledRuns: 2 * CASES.length - count("refused") - count("apollo"),
      apolloRuns: count("apollo"),
      apolloShapings: count("apollo-shaping"),
    });
  });
});

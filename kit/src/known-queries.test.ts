import { buildSubgraphSchema } from "@apollo/subgraph";
import { GraphQLError, parse, type GraphQLResolveInfo } from "graphql";
import { restrictCacheHint } from "./cache-control";
import { ErrorCode } from "./errors";
import { knownQueryAnswers } from "./known-queries";
import { silentLogger } from "./logger";
import { startService, type RequestContextBase, type RunningService } from "./service";

const TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  enum CacheControlScope { PUBLIC PRIVATE }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean)
    on FIELD_DEFINITION | OBJECT | INTERFACE | UNION

  type Query {
    person(id: ID!): Person @cacheControl(maxAge: 60)
    people: [Person!]!
    me: String
    fails: String @cacheControl(maxAge: 60)
    count(n: Int!): Int
  }
  type Mutation { rename(id: ID!): Person }
  type Person @key(fields: "id") @cacheControl(maxAge: 30) {
    id: ID!
    name: String!
    email: String @cacheControl(scope: PRIVATE)
    signed: String
  }
`);

const person = (id: string) => ({ id, name: id === "nameless" ? null : `Person ${id}` });

function schema() {
  return buildSubgraphSchema([
    {
      typeDefs: TYPE_DEFS,
      resolvers: {
        Query: {
          person: (_: unknown, args: { id: string }) => (args.id === "none" ? null : person(args.id)),
          people: () => [person("1"), person("2")],
          me: (_: unknown, __: unknown, context: RequestContextBase) => context.viewer?.userId ?? null,
          fails: () => {
            throw new GraphQLError("Not yours", { extensions: { code: "FORBIDDEN" } });
          },
          count: (_: unknown, args: { n: number }) => args.n,
        },
        Mutation: { rename: (_: unknown, args: { id: string }) => person(args.id) },
        Person: {
          __resolveReference: (reference: { id: string }) => person(reference.id),
          email: (parent: { id: string }) => `${parent.id}@example.test`,
          signed: (_: unknown, __: unknown, context: object, _info: GraphQLResolveInfo) => {
            restrictCacheHint(context, { maxAge: 12 });
            return "signed";
          },
        },
      } as never,
    },
  ]);
}

/** Each request: its body and its Authorization header. */
const REQUESTS: Array<[string, Record<string, unknown>, string | undefined]> = [
  ["a hinted field, anonymous", { query: 'query P { person(id: "1") { id name } }' }, undefined],
  ["a hinted field, signed in", { query: 'query P { person(id: "1") { id name } }' }, "Bearer u1"],
  ["a private field", { query: 'query { person(id: "1") { name email } }' }, undefined],
  ["a dynamic hint", { query: 'query { person(id: "2") { signed } }' }, undefined],
  ["no hint", { query: "{ people { id } }" }, undefined],
  ["the viewer", { query: "{ me }" }, "Bearer u1"],
  ["a refused token", { query: "{ me }" }, "Bearer bad"],
  ["a coded error beside data", { query: "{ fails people { id } }" }, undefined],
  ["a null bubbling from a non-null field", { query: '{ person(id: "nameless") { name } }' }, undefined],
  ["a variable", { query: "query C($n: Int!) { count(n: $n) }", variables: { n: 3 } }, undefined],
  ["a wrong variable", { query: "query C($n: Int!) { count(n: $n) }", variables: { n: "x" } }, undefined],
  [
    "entities",
    {
      query: "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
      variables: { r: [{ __typename: "Person", id: "7" }] },
    },
    "Bearer u1",
  ],
  [
    "a named operation of two",
    { query: "query A { people { id } } query B { me }", operationName: "B" },
    "Bearer u1",
  ],
  ["an unknown operation name", { query: "query A { me }", operationName: "Z" }, undefined],
  ["not valid", { query: "{ nope }" }, undefined],
  ["not parsable", { query: "{ people" }, undefined],
  ["introspection", { query: "{ __schema { queryType { name } } }" }, undefined],
  ["a mutation", { query: 'mutation { rename(id: "1") { name } }' }, undefined],
  [
    "persisted-query extensions",
    { query: "{ people { id } }", extensions: { persistedQuery: {} } },
    undefined,
  ],
];

describe("known queries: plain POSTed queries answered without Apollo Server's pipeline", () => {
  let known: RunningService;
  let apollo: RunningService;

  const start = (name: string, answerKnownQueries: boolean) =>
    startService<RequestContextBase>({
      name,
      logger: silentLogger(name),
      host: "127.0.0.1",
      port: 0,
      isProduction: true,
      graphql: { schema: schema() },
      trustProxy: false,
      readiness: [],
      authenticate: async (authorization) => {
        if (authorization === undefined) return null;
        if (authorization === "Bearer bad")
          throw new GraphQLError("bad token", {
            extensions: { code: ErrorCode.UNAUTHENTICATED, reason: "invalid" },
          });
        return { userId: authorization.slice("Bearer ".length), sessionId: "s", role: "USER" };
      },
      context: async (base) => base,
      answerKnownQueries,
    });

  beforeAll(async () => {
    known = await start("known", true);
    apollo = await start("apollo", false);
  });
  afterAll(async () => {
    await known.stop();
    await apollo.stop();
  });

  const ask = async (
    url: string,
    body: Record<string, unknown>,
    authorization: string | undefined,
    accept = "*/*",
  ) => {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept,
        "x-request-id": "request-0001",
        ...(authorization === undefined ? {} : { authorization }),
      },
      body: JSON.stringify(body),
    });
    const headers = Object.fromEntries(
      [...response.headers].filter(([name]) => name !== "date" && name !== "keep-alive"),
    );
    return { status: response.status, headers, text: await response.text() };
  };

  it.each(REQUESTS)("should answer %s as Apollo Server does", async (_what, body, authorization) => {
    const expected = await ask(apollo.url, body, authorization);
    expect(await ask(known.url, body, authorization)).toEqual(expected);
    // Again: now from the kept compilation.
    expect(await ask(known.url, body, authorization)).toEqual(expected);
  });

  it("should answer queries without errors itself, and leave the rest to Apollo Server", async () => {
    const answered = async (body: Record<string, unknown>, authorization?: string) => {
      const before = knownQueryAnswers();
      await ask(known.url, body, authorization);
      return knownQueryAnswers() - before;
    };
    expect(await answered({ query: 'query P { person(id: "1") { id name } }' })).toBe(1);
    expect(await answered({ query: "{ me }" }, "Bearer u1")).toBe(1);
    expect(await answered({ query: "{ me }" }, "Bearer bad")).toBe(0);
    expect(await answered({ query: "{ fails }" })).toBe(0);
    expect(await answered({ query: "query C($n: Int!) { count(n: $n) }", variables: { n: "x" } })).toBe(0);
    expect(await answered({ query: 'mutation { rename(id: "1") { name } }' })).toBe(0);
    expect(await answered({ query: "{ __schema { queryType { name } } }" })).toBe(0);
    const before = knownQueryAnswers();
    await ask(apollo.url, { query: "{ people { id } }" }, undefined);
    expect(knownQueryAnswers()).toBe(before);
  });

  it.each(["application/json", "application/graphql-response+json", "text/html"])(
    "should answer with Accept: %s as Apollo Server does",
    async (accept) => {
      const body = { query: "{ people { id } }" };
      expect(await ask(known.url, body, undefined, accept)).toEqual(
        await ask(apollo.url, body, undefined, accept),
      );
    },
  );
});

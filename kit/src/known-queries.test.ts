import { buildSubgraphSchema } from "@apollo/subgraph";
import { GraphQLError, parse, type GraphQLResolveInfo } from "graphql";
import { restrictCacheHint } from "./cache-control";
import { appError, ErrorCode, serviceUnavailable } from "./errors";
import { knownQueryAnswers } from "./known-queries";
import { silentLogger } from "./logger";
import { overBudget } from "./rate-limit";
import { startService, withHttpStatus, type RequestContextBase, type RunningService } from "./service";

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
  type Mutation {
    rename(id: ID!): Person
    note(text: String!): Int!
    refuse(field: String!): Int
    slowDown: Int
    unavailable: Int
    blank: Int!
    sign: String @cacheControl(maxAge: 60)
  }
  type Person @key(fields: "id") @cacheControl(maxAge: 30) {
    id: ID!
    name: String!
    email: String @cacheControl(scope: PRIVATE)
    signed: String
  }
`);

/** How many times a mutation's resolver has run (each must run once per request). */
let mutationRuns = 0;
const mutation =
  <A, R>(resolve: (args: A) => R) =>
  (_: unknown, args: A) => {
    mutationRuns += 1;
    return resolve(args);
  };

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
        Mutation: {
          rename: mutation((args: { id: string }) => person(args.id)),
          note: mutation((args: { text: string }) => args.text.length),
          refuse: mutation((args: { field: string }) => {
            throw appError(ErrorCode.BAD_USER_INPUT, "Too long", { field: args.field });
          }),
          slowDown: mutation(() => {
            throw overBudget({ name: "chat-send-burst" }, 4_200);
          }),
          unavailable: mutation(() => {
            throw withHttpStatus(serviceUnavailable(), 503);
          }),
          blank: mutation(() => null),
          sign: (_: unknown, __: unknown, context: object) => {
            restrictCacheHint(context, { maxAge: 12 });
            return "signed";
          },
        },
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
  ["a mutation, signed in", { query: 'mutation { rename(id: "1") { id name } }' }, "Bearer u1"],
  [
    "a named mutation with variables",
    {
      query: "mutation N($text: String!) { note(text: $text) }",
      variables: { text: "hi" },
      operationName: "N",
    },
    "Bearer u1",
  ],
  [
    "a mutation's wrong variable",
    { query: "mutation N($text: String!) { note(text: $text) }", variables: { text: 3 } },
    "Bearer u1",
  ],
  [
    "a mutation's input error with its field",
    { query: 'mutation { refuse(field: "input.text") }' },
    "Bearer u1",
  ],
  ["a mutation's rate limit", { query: "mutation { slowDown }" }, "Bearer u1"],
  ["a mutation's error with an HTTP status", { query: "mutation { unavailable }" }, "Bearer u1"],
  ["a mutation's null in a non-null field", { query: "mutation { blank }" }, undefined],
  ["a mutation's dynamic hint", { query: "mutation { sign }" }, undefined],
  ["a mutation with a refused token", { query: 'mutation { note(text: "x") }' }, "Bearer bad"],
  [
    "a mutation of three fields, the second failing",
    { query: 'mutation { a: note(text: "a") b: refuse(field: "b") c: note(text: "ccc") }' },
    "Bearer u1",
  ],
  [
    "persisted-query extensions",
    { query: "{ people { id } }", extensions: { persistedQuery: {} } },
    undefined,
  ],
];

describe("known queries: plain POSTed queries answered without Apollo Server's pipeline", () => {
  let known: RunningService;
  let apollo: RunningService;

  const start = (name: string, answerKnownQueries: boolean, parseOptions?: { maxTokens: number }) =>
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
      ...(parseOptions ? { parseOptions } : {}),
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
    expect(await answered({ query: 'mutation { rename(id: "1") { name } }' })).toBe(1);
    expect(await answered({ query: 'mutation { note(text: "x") }' }, "Bearer u1")).toBe(1);
    expect(await answered({ query: 'mutation { refuse(field: "x") }' }, "Bearer u1")).toBe(0);
    expect(await answered({ query: 'mutation { a: note(text: "a") b: note(text: "b") }' })).toBe(0);
    expect(await answered({ query: "{ __schema { queryType { name } } }" })).toBe(0);
    const before = knownQueryAnswers();
    await ask(apollo.url, { query: "{ people { id } }" }, undefined);
    expect(knownQueryAnswers()).toBe(before);
  });

  it.each([
    ['mutation { note(text: "x") }', "Bearer u1"],
    ['mutation { refuse(field: "x") }', "Bearer u1"],
    ["mutation { slowDown }", undefined],
    ["mutation { blank }", undefined],
    ['mutation { note(text: "x") }', "Bearer bad"],
  ])("should run %s as many times as Apollo Server does", async (query, authorization) => {
    const runs = async (url: string) => {
      const before = mutationRuns;
      await ask(url, { query }, authorization);
      return mutationRuns - before;
    };
    const expected = await runs(apollo.url);
    expect(await runs(known.url)).toBe(expected);
    expect(await runs(known.url)).toBe(expected);
  });

  it("should leave a service with parser limits to Apollo Server: a mutation past them is refused, not run", async () => {
    const limited = await start("limited", true, { maxTokens: 10 });
    try {
      const before = { runs: mutationRuns, answers: knownQueryAnswers() };
      const answer = await ask(
        limited.url,
        { query: "mutation N($text: String!) { note(text: $text) }", variables: { text: "x" } },
        "Bearer u1",
      );
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).errors[0].extensions.code).toBe("GRAPHQL_PARSE_FAILED");
      expect({ runs: mutationRuns, answers: knownQueryAnswers() }).toEqual(before);
    } finally {
      await limited.stop();
    }
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

import { buildSubgraphSchema } from "@apollo/subgraph";
import { GraphQLError, parse } from "graphql";
import { compiledOperations } from "./jit-executor";
import { silentLogger } from "./logger";
import { DateTimeScalar } from "./scalars";
import { startService, type RequestContextBase, type RunningService } from "./service";

/** A subgraph with what the compiled path must answer as graphql-js does. */
function subgraphSchema(log: string[]) {
  const typeDefs = parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
    scalar DateTime
    type Match @key(fields: "id") { id: ID! createdAt: DateTime! note: String conversation: Conversation }
    type Conversation @key(fields: "id") { id: ID! unread: Int! last: Message }
    type Message { id: ID! text: String! at: DateTime! }
    type Query {
      echo(n: Int!, at: DateTime): String!
      forbidden: Int
      broken: [Message!]
      badDate: DateTime
    }
    type Mutation { first: Int! second: Int! failing: Int! }
    type Subscription { ticks: Int }
  `);
  const at = new Date("2026-12-06T10:00:00.000Z");
  return buildSubgraphSchema([
    {
      typeDefs,
      resolvers: {
        DateTime: DateTimeScalar,
        Match: {
          __resolveReference: async (ref: { id: string }) => {
            if (ref.id === "gone") return null;
            if (ref.id === "hidden")
              throw new GraphQLError("Not yours", { extensions: { code: "FORBIDDEN" } });
            return { id: ref.id, createdAt: at };
          },
          note: (match: { id: string }) => (match.id === "m2" ? null : `note ${match.id}`),
          conversation: async (match: { id: string }) =>
            match.id === "m3" ? null : { id: `c-${match.id}`, unread: 2 },
        },
        Conversation: {
          __resolveReference: (ref: { id: string }) => ({ id: ref.id, unread: 0 }),
          // A message without text: null for a non-null field, the error bubbles to `last`.
          last: (conversation: { id: string }) => ({
            id: `${conversation.id}-last`,
            text: conversation.id === "c-m2" ? null : "hello",
            at,
          }),
        },
        Query: {
          echo: (_: unknown, args: { n: number; at?: Date }) => `${args.n} ${args.at?.toISOString() ?? "-"}`,
          forbidden: () => {
            throw new GraphQLError("No", { extensions: { code: "FORBIDDEN" } });
          },
          broken: () => [
            { id: "a", text: "ok", at },
            { id: "b", text: null, at },
          ],
          badDate: () => new Date(Number.NaN),
        },
        Mutation: {
          first: async () => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            log.push("first");
            return 1;
          },
          second: () => {
            log.push("second");
            return 2;
          },
          failing: () => {
            log.push("failing");
            throw new GraphQLError("Refused", { extensions: { code: "FORBIDDEN" } });
          },
        },
        Subscription: {
          ticks: { subscribe: async function* () {} },
        },
      },
    },
  ]);
}

const ENTITIES = `query Fetch($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Match { id createdAt note conversation { id unread last { id text at } } }
    ... on Conversation { id unread }
  }
}`;

/** Each request: the body sent, as the gateway or a client would. */
const REQUESTS: Array<[string, Record<string, unknown>]> = [
  [
    "entities of two types, a null one, a refused one, null bubbling",
    {
      query: ENTITIES,
      variables: {
        representations: [
          { __typename: "Match", id: "m1" },
          { __typename: "Match", id: "m2" },
          { __typename: "Match", id: "m3" },
          { __typename: "Conversation", id: "c9" },
          { __typename: "Match", id: "gone" },
          { __typename: "Match", id: "hidden" },
        ],
      },
    },
  ],
  [
    "an unknown entity type",
    { query: ENTITIES, variables: { representations: [{ __typename: "Nope", id: "1" }] } },
  ],
  ["a representation without __typename", { query: ENTITIES, variables: { representations: [{ id: "1" }] } }],
  [
    "variables and a custom scalar in",
    {
      query: "query Q($n: Int!, $at: DateTime) { echo(n: $n, at: $at) }",
      variables: { n: 3, at: "2026-01-02T03:04:05Z" },
    },
  ],
  ["a wrong Int variable", { query: "query Q($n: Int!) { echo(n: $n) }", variables: { n: "three" } }],
  ["a null for a non-null variable", { query: "query Q($n: Int!) { echo(n: $n) }", variables: { n: null } }],
  ["a missing variable", { query: "query Q($n: Int!) { echo(n: $n) }", variables: {} }],
  [
    "a bad custom scalar variable",
    {
      query: "query Q($n: Int!, $at: DateTime) { echo(n: $n, at: $at) }",
      variables: { n: 1, at: "someday" },
    },
  ],
  [
    "a literal argument, an alias, __typename and a fragment",
    { query: "query { a: echo(n: 1) __typename ...F } fragment F on Query { b: echo(n: 2) }" },
  ],
  [
    "@skip and @include",
    {
      query: "query Q($s: Boolean!) { a: echo(n: 1) @skip(if: $s) b: echo(n: 2) @include(if: $s) }",
      variables: { s: true },
    },
  ],
  ["a coded resolver error beside data", { query: "{ forbidden a: echo(n: 5) }" }],
  ["a null in a list of non-null", { query: "{ broken { id text } }" }],
  ["a scalar that cannot serialize", { query: "{ badDate }" }],
  [
    "two operations, one named",
    { query: "query A { echo(n: 1) } query B { echo(n: 2) }", operationName: "B" },
  ],
  [
    "two operations, an unknown name",
    { query: "query A { echo(n: 1) } query B { echo(n: 2) }", operationName: "C" },
  ],
  ["the subgraph's SDL", { query: "{ _service { sdl } }" }],
  ["a mutation's fields in order", { query: "mutation { first second }" }],
  ["a subscription over HTTP", { query: "subscription { ticks }" }],
];

describe("compiled execution (graphql-jit) in startService", () => {
  const logs = { compiled: [] as string[], plain: [] as string[] };
  let compiled: RunningService;
  let plain: RunningService;

  const start = (name: string, execution: "compiled" | "graphql-js", log: string[]) =>
    startService<RequestContextBase>({
      name,
      logger: silentLogger(name),
      host: "127.0.0.1",
      port: 0,
      isProduction: true,
      graphql: { schema: subgraphSchema(log), execution },
      trustProxy: false,
      readiness: [],
      context: async (base) => base,
    });

  beforeAll(async () => {
    compiled = await start("compiled", "compiled", logs.compiled);
    plain = await start("plain", "graphql-js", logs.plain);
  });
  afterAll(async () => {
    await compiled.stop();
    await plain.stop();
  });

  const ask = async (url: string, body: Record<string, unknown>) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as { data?: unknown; errors?: Array<{ path?: unknown[] }> };
    // The order of errors is not the specification's to fix: graphql-jit's may differ.
    answer.errors?.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    return { status: response.status, cacheControl: response.headers.get("cache-control"), body: answer };
  };

  it.each(REQUESTS)("should answer %s as graphql-js does", async (_what, body) => {
    const before = compiledOperations();
    const fromCompiled = await ask(compiled.url, body);
    const fromPlain = await ask(plain.url, body);
    expect(fromCompiled).toEqual(fromPlain);
    // Asked twice: the second answer comes from the kept compilation, the same again.
    expect(await ask(compiled.url, body)).toEqual(fromPlain);
    expect(compiledOperations() - before).toBeLessThanOrEqual(1);
  });

  it("should answer a document without the operation asked for as OPERATION_RESOLUTION_FAILURE", async () => {
    const query = "query A { echo(n: 1) } query B { echo(n: 2) }";
    for (const body of [{ query }, { query, operationName: "C" }]) {
      for (const url of [compiled.url, plain.url]) {
        const answer = await ask(url, body);
        expect({
          status: answer.status,
          codes: (answer.body.errors as Array<{ extensions?: { code?: unknown } }> | undefined)?.map(
            (error) => error.extensions?.code,
          ),
        }).toEqual({ status: 400, codes: ["OPERATION_RESOLUTION_FAILURE"] });
      }
    }
  });

  it("should compile each document once and run it compiled", async () => {
    const body = { query: "query Again($n: Int!) { echo(n: $n) }", variables: { n: 1 } };
    const before = compiledOperations();
    for (let n = 0; n < 3; n += 1) await ask(compiled.url, { ...body, variables: { n } });
    expect(compiledOperations() - before).toBe(1);
    await ask(plain.url, body);
    expect(compiledOperations() - before).toBe(1);
  });

  it("should run a mutation's fields one after the other", async () => {
    logs.compiled.length = 0;
    const answer = await ask(compiled.url, { query: "mutation { first second }" });
    expect(answer.body).toEqual({ data: { first: 1, second: 2 } });
    expect(logs.compiled).toEqual(["first", "second"]);
  });

  it("should stop a mutation at the first error that nulls it, as graphql-js does", async () => {
    logs.compiled.length = 0;
    logs.plain.length = 0;
    const body = { query: "mutation { failing second }" };
    const answer = await ask(compiled.url, body);
    expect(answer).toEqual(await ask(plain.url, body));
    expect(answer.body.data).toBeNull();
    expect(logs.compiled).toEqual(["failing"]);
    expect(logs.plain).toEqual(["failing"]);
  });

  it("should run a mutation of one root field compiled", async () => {
    const before = compiledOperations();
    const answer = await ask(compiled.url, { query: "mutation One { first }" });
    expect(answer.body).toEqual({ data: { first: 1 } });
    expect(compiledOperations() - before).toBe(1);
  });
});

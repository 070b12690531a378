import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse, type GraphQLResolveInfo, type GraphQLSchema } from "graphql";
import { cacheHintsPlugin, restrictCacheHint, type CacheHint } from "./cache-control";

const TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  enum CacheControlScope { PUBLIC PRIVATE }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean)
    on FIELD_DEFINITION | OBJECT | INTERFACE | UNION

  type Query {
    person(id: ID!): Person @cacheControl(maxAge: 60)
    people: [Person!]!
    hinted: [Person!]! @cacheControl(maxAge: 45)
    pets: [Pet!]! @cacheControl(maxAge: 50)
    plain: String
    nothingFound: Person @cacheControl(maxAge: 120)
    fails: String @cacheControl(maxAge: 60)
  }
  type Mutation { rename(id: ID!): Person }
  type Person @key(fields: "id") @cacheControl(maxAge: 30) {
    id: ID!
    name: String
    email: String @cacheControl(scope: PRIVATE)
    friends: [Person!]!
    settings: Settings @cacheControl(inheritMaxAge: true)
    signed: String @cacheControl(scope: PRIVATE)
    partner: Person @cacheControl(maxAge: 10)
    noFriends: [Person!]!
  }
  type Settings { theme: String }
  interface Pet @cacheControl(maxAge: 20) { name: String }
  type Cat implements Pet @key(fields: "id") { id: ID! name: String lives: Int @cacheControl(maxAge: 5) }
  type Dog implements Pet { name: String }
  type Secret @key(fields: "id") @cacheControl(maxAge: 40, scope: PRIVATE) { id: ID! code: String }
  type Plain @key(fields: "id") { id: ID! value: String }
`);

const person = (id: string) => ({ id, name: `Person ${id}`, email: `${id}@example.test` });

/** A dynamic hint set the way each plugin takes it: Apollo's on `info`, ours on the context. */
function dynamicHint(context: object, info: GraphQLResolveInfo, hint: CacheHint): void {
  const apollos = (info as { cacheControl?: { cacheHint: { restrict(hint: CacheHint): void } } })
    .cacheControl;
  apollos?.cacheHint.restrict(hint);
  restrictCacheHint(context, hint);
}

function schema(): GraphQLSchema {
  return buildSubgraphSchema([
    {
      typeDefs: TYPE_DEFS,
      resolvers: {
        Query: {
          person: (_: unknown, args: { id: string }) => (args.id === "none" ? null : person(args.id)),
          people: () => [person("1"), person("2")],
          hinted: () => [person("3")],
          pets: () => [
            { __typename: "Cat", id: "c", name: "Tom" },
            { __typename: "Dog", name: "Rex" },
          ],
          plain: () => "plain",
          nothingFound: () => null,
          fails: () => {
            throw new Error("no");
          },
        },
        Mutation: { rename: (_: unknown, args: { id: string }) => person(args.id) },
        Person: {
          __resolveReference: (reference: { id: string }) => person(reference.id),
          friends: (parent: { id: string }) => [person(`${parent.id}f`)],
          noFriends: () => [],
          settings: () => ({ theme: "dark" }),
          signed: (_: unknown, __: unknown, context: object, info: GraphQLResolveInfo) => {
            dynamicHint(context, info, { maxAge: 12, scope: "PRIVATE" });
            return "signed";
          },
          partner: (parent: { id: string }) => (parent.id === "1" ? person("9") : null),
        },
        Pet: { __resolveType: (pet: { __typename: string }) => pet.__typename },
      } as never,
    },
  ]);
}

const apollos = new ApolloServer<object>({ schema: schema() });
const oursSchema = schema();
const ours = new ApolloServer<object>({
  schema: oursSchema,
  plugins: [ApolloServerPluginCacheControlDisabled(), cacheHintsPlugin(oursSchema)],
});

async function cacheControl(server: ApolloServer<object>, query: string, variables = {}) {
  const response = await server.executeOperation({ query, variables }, { contextValue: {} });
  return response.http.headers.get("cache-control");
}

const QUERIES: Record<string, string> = {
  "a hinted root field and its scalars": `{ person(id: "1") { id name } }`,
  "a private scalar": `{ person(id: "1") { name email } }`,
  "a root field without a hint": `{ people { id } }`,
  "a root field without a hint, scalar": `{ plain }`,
  "a hinted list of objects with a nested list without a hint": `{ hinted { name friends { id } } }`,
  "a field inheriting its parent's max age": `{ hinted { settings { theme } } }`,
  "a dynamic hint": `{ hinted { signed } }`,
  "a null parent: its fields never resolve": `{ nothingFound { email friends { id } } }`,
  "a null field among resolved ones": `{ person(id: "2") { partner { email } } }`,
  "a resolved nested field with a lower max age": `{ person(id: "1") { partner { name } } }`,
  "an empty list: its items' fields never resolve": `{ hinted { noFriends { email friends { id } } } }`,
  "an interface's hint and a possible type's field": `{ pets { name ... on Cat { lives } } }`,
  "a root field that fails": `{ fails }`,
  "a mutation": `mutation { rename(id: "1") { name } }`,
  introspection: `{ __schema { queryType { name } } }`,
  "__typename only": `{ __typename }`,
  "entities of one hinted type": `query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }`,
  "entities of two hinted types": `query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } ... on Secret { code } } }`,
  "entities of a type without a hint": `query($r: [_Any!]!) { _entities(representations: $r) { ... on Plain { value } } }`,
  "no entities": `query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }`,
  "the subgraph's SDL": `{ _service { sdl } }`,
  "not valid": `{ nope }`,
};
const VARIABLES: Record<string, Record<string, unknown>> = {
  "entities of one hinted type": { r: [{ __typename: "Person", id: "1" }] },
  "entities of two hinted types": {
    r: [
      { __typename: "Person", id: "1" },
      { __typename: "Secret", id: "s" },
    ],
  },
  "entities of a type without a hint": { r: [{ __typename: "Plain", id: "p" }] },
  "no entities": { r: [] },
};

describe("cacheHintsPlugin", () => {
  beforeAll(async () => {
    await apollos.start();
    await ours.start();
  });
  afterAll(async () => {
    await apollos.stop();
    await ours.stop();
  });

  it.each(Object.keys(QUERIES))(
    "should give Apollo's cache-control plugin's Cache-Control for %s",
    async (name) => {
      const query = QUERIES[name]!;
      const expected = await cacheControl(apollos, query, VARIABLES[name]);
      expect(expected).toBeDefined();
      expect(await cacheControl(ours, query, VARIABLES[name])).toBe(expected);
    },
  );

  it("should read the hints as Apollo does: public, private, lowest max age, no-store", async () => {
    const headers = await Promise.all(
      [
        "a hinted root field and its scalars",
        "a private scalar",
        "a dynamic hint",
        "a root field without a hint, scalar",
      ].map((name) => cacheControl(ours, QUERIES[name]!)),
    );
    expect(headers).toEqual(["max-age=60, public", "max-age=60, private", "max-age=12, private", "no-store"]);
  });

  it("should not wrap a field that has no hint", () => {
    const fields = oursSchema.getType("Person") as unknown as {
      getFields(): Record<string, { resolve?: unknown }>;
    };
    expect(fields.getFields().name?.resolve).toBeUndefined();
    expect(fields.getFields().email?.resolve).toBeDefined();
  });
});

/**
 * A subgraph's execution alone, graphql-js against graphql-jit (kit/src/jit-executor.ts), in one
 * process: Apollo Server's whole request pipeline (`executeHTTPGraphQLRequest`, no sockets) on the
 * fetch the gateway sends Chat for the app's matches page (`_entities` of 20 Match representations,
 * each with its conversation and last message, as Chat's rows give them), interleaved rounds.
 *
 *   NODE_ENV=production pnpm exec tsx bench/subgraph-execution.ts [--rounds 7] [--requests 2000] [--matches 20]
 *
 * NODE_ENV=production as the services run (graphql-js checks `instanceof` more slowly otherwise).
 */
import { randomUUID } from "node:crypto";
import { ApolloServer, HeaderMap } from "@apollo/server";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
} from "@apollo/server/plugin/disabled";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";
import { DateTimeScalar } from "@hv/kit";
import { jitExecutor } from "@hv/kit/src/jit-executor";
import { flag } from "./support/args";
import { printHeader } from "./support/service";

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  scalar DateTime
  type Match @key(fields: "id") { id: ID! conversation: Conversation }
  type Conversation @key(fields: "id") { id: ID! closed: Boolean! unreadCount: Int! lastMessage: Message }
  type Message { id: ID! seq: Int! text: String createdAt: DateTime! }
  type Query { ping: Int }
`);

interface Row {
  id: string;
  closedAt: Date | null;
  lastSeq: number;
  lastReadSeq: number;
  lastMessage: { id: string; seq: number; text: string; createdAt: Date };
}
interface Context {
  /** Chat's loader, as one batch: every match's conversation row from one statement. */
  conversations: Promise<Map<string, Row>>;
}

const schema = buildSubgraphSchema([
  {
    typeDefs,
    resolvers: {
      DateTime: DateTimeScalar,
      Match: {
        __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
        conversation: async (match: { id: string }, _: unknown, context: Context) =>
          (await context.conversations).get(match.id),
      },
      Conversation: {
        closed: (row: Row) => row.closedAt !== null,
        unreadCount: (row: Row) => Math.max(0, row.lastSeq - row.lastReadSeq),
        lastMessage: (row: Row) => row.lastMessage,
      },
    },
  },
]);

const FETCH = `query Matches__chat__2($representations:[_Any!]!){_entities(representations:$representations){...on Match{conversation{id closed unreadCount lastMessage{id seq text createdAt}}}}}`;

async function main(): Promise<void> {
  const rounds = flag("rounds", 7);
  const requests = flag("requests", 2000);
  const matches = flag("matches", 20);
  printHeader("subgraph-execution.ts");
  const representations = Array.from({ length: matches }, () => ({ __typename: "Match", id: randomUUID() }));
  const context = async (): Promise<Context> => ({
    conversations: Promise.resolve(
      new Map(
        representations.map(({ id }, index) => [
          id,
          {
            id: randomUUID(),
            closedAt: null,
            lastSeq: 5,
            lastReadSeq: 3,
            lastMessage: { id: randomUUID(), seq: 5, text: `hello ${index}`, createdAt: new Date() },
          },
        ]),
      ),
    ),
  });
  const common = {
    plugins: [ApolloServerPluginCacheControlDisabled(), ApolloServerPluginInlineTraceDisabled()],
    stopOnTerminationSignals: false,
  };
  const servers = {
    "graphql-js": new ApolloServer<Context>({ ...common, schema }),
    "graphql-jit": new ApolloServer<Context>({ ...common, gateway: jitExecutor(schema) }),
  };
  const body = { query: FETCH, variables: { representations } };
  const ask = async (server: ApolloServer<Context>) => {
    const answer = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        method: "POST",
        headers: new HeaderMap([["content-type", "application/json"]]),
        search: "",
        body,
      },
      context,
    });
    if (answer.body.kind !== "complete") throw new Error("expected a complete answer");
    return answer.body.string;
  };
  const texts: string[] = [];
  for (const server of Object.values(servers)) {
    await server.start();
    texts.push((await ask(server)).replace(/"[0-9a-f-]{36}"|"\d{4}-[^"]+Z"/g, '"x"'));
  }
  if (texts[0] !== texts[1]) throw new Error(`different answers:\n${texts[0]}\n${texts[1]}`);
  const perRequest: Record<string, number[]> = { "graphql-js": [], "graphql-jit": [] };
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, server] of Object.entries(servers)) {
      const before = process.cpuUsage();
      for (let n = 0; n < requests; n += 1) await ask(server);
      const used = process.cpuUsage(before);
      perRequest[name]!.push((used.user + used.system) / requests);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    `answers identical; CPU-µs per request (Apollo pipeline + execution, ${matches} entities), median of ${rounds} rounds of ${requests}:`,
  );
  for (const [name, values] of Object.entries(perRequest))
    console.log(
      `  ${name}: ${median(values).toFixed(1)} (rounds: ${values.map((v) => v.toFixed(0)).join(" ")})`,
    );
  for (const server of Object.values(servers)) await server.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

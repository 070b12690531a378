/**
 * A subgraph's HTTP front on the fetch the gateway sends Chat for the app's matches page
 * (`_entities` of 20 Match representations, each with its conversation and last message, rows
 * given by the context as Chat's loader gives them): kit's startService with its known queries
 * (kit/src/known-queries.ts) against the same service with Apollo Server answering every request,
 * in one process over real HTTP (keep-alive, `--concurrency` requests in flight), interleaved
 * rounds. The process's CPU per request includes the client's, the same on both sides.
 * `--send`: the fetch the gateway sends Chat for the app's sendMessage instead (a one-field
 * mutation with an input object; the resolver answers a stored row without a database).
 *
 *   NODE_ENV=production pnpm exec tsx bench/known-queries.ts [--rounds 7] [--requests 2000] [--concurrency 8] [--matches 20] [--send]
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { Writable } from "node:stream";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";
import { createLogger, DateTimeScalar } from "@hv/kit";
import { startService, type RequestContextBase, type RunningService } from "@hv/kit/src/service";
import { flag } from "./support/args";
import { printHeader } from "./support/service";

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  scalar DateTime
  type Match @key(fields: "id") { id: ID! conversation: Conversation }
  type Conversation @key(fields: "id") { id: ID! closed: Boolean! unreadCount: Int! lastMessage: Message }
  type Message { id: ID! seq: Int! text: String createdAt: DateTime! }
  type Query { ping: Int }
  input SendMessageInput { conversationId: ID! clientMessageId: String! text: String }
  type Mutation { sendMessage(input: SendMessageInput!): Message! }
`);

interface Row {
  id: string;
  closedAt: Date | null;
  lastSeq: number;
  lastReadSeq: number;
  lastMessage: { id: string; seq: number; text: string; createdAt: Date };
}
interface Context extends RequestContextBase {
  conversations: Promise<Map<string, Row>>;
}

const FETCH = `query Matches__chat__2($representations:[_Any!]!){_entities(representations:$representations){...on Match{conversation{id closed unreadCount lastMessage{id seq text createdAt}}}}}`;

const SEND = `mutation SendMessage__chat__0($input:SendMessageInput!){sendMessage(input:$input){id seq text createdAt}}`;

function post(agent: http.Agent, url: URL, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "bench-request-0001" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const rounds = flag("rounds", 7);
  const requests = flag("requests", 2000);
  const concurrency = flag("concurrency", 8);
  const matches = flag("matches", 20);
  const sending = process.argv.includes("--send");
  printHeader("known-queries.ts");
  const representations = Array.from({ length: matches }, () => ({ __typename: "Match", id: randomUUID() }));
  const rows = new Map(
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
  );
  const schema = () =>
    buildSubgraphSchema([
      {
        typeDefs,
        resolvers: {
          DateTime: DateTimeScalar,
          Match: {
            __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
            conversation: async (match: { id: string }, _: unknown, context: Context) =>
              (await context.conversations).get(match.id),
          },
          Mutation: {
            sendMessage: (_: unknown, args: { input: { text: string } }) => ({
              ...[...rows.values()][0]!.lastMessage,
              text: args.input.text,
            }),
          },
          Conversation: {
            closed: (row: Row) => row.closedAt !== null,
            unreadCount: (row: Row) => Math.max(0, row.lastSeq - row.lastReadSeq),
            lastMessage: (row: Row) => row.lastMessage,
          },
        } as never,
      },
    ]);
  const start = (name: string, answerKnownQueries: boolean) =>
    startService<Context>({
      name,
      logger: createLogger({
        service: name,
        level: "warn",
        destination: new Writable({ write: (_c, _e, done) => done() }),
      }),
      host: "127.0.0.1",
      port: 0,
      isProduction: true,
      graphql: { schema: schema() },
      trustProxy: false,
      readiness: [],
      context: async (base) => ({ ...base, conversations: Promise.resolve(rows) }),
      answerKnownQueries,
    });
  const services: Record<string, RunningService> = {
    "Apollo Server": await start("apollo", false),
    [sending ? "known operations" : "known queries"]: await start("known", true),
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify(
    sending
      ? {
          query: SEND,
          variables: { input: { conversationId: randomUUID(), clientMessageId: randomUUID(), text: "hi" } },
        }
      : { query: FETCH, variables: { representations } },
  );
  const texts = await Promise.all(Object.values(services).map((s) => post(agent, new URL(s.url), body)));
  if (texts[0] !== texts[1]) throw new Error(`different answers:\n${texts[0]}\n${texts[1]}`);
  const perRequest: Record<string, number[]> = Object.fromEntries(Object.keys(services).map((n) => [n, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, service] of Object.entries(services)) {
      const url = new URL(service.url);
      let left = requests;
      const before = process.cpuUsage();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left > 0) {
            left -= 1;
            await post(agent, url, body);
          }
        }),
      );
      const used = process.cpuUsage(before);
      perRequest[name]!.push((used.user + used.system) / requests);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    `answers identical; CPU-µs per request (service and client, ${sending ? "sendMessage" : `${matches} entities`}, ${concurrency} in flight), median of ${rounds} rounds of ${requests}:`,
  );
  for (const [name, values] of Object.entries(perRequest))
    console.log(
      `  ${name}: ${median(values).toFixed(1)} (rounds: ${values.map((v) => v.toFixed(0)).join(" ")})`,
    );
  agent.destroy();
  for (const service of Object.values(services)) await service.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

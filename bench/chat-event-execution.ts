/**
 * What Chat's graphql-js execution of one subscription event costs, per event and subscriber:
 *
 *   pnpm exec tsx bench/chat-event-execution.ts [--events 20000] [--rounds 3]
 *
 * Chat's schema (buildSubgraphSchema with its resolvers), the selection the gateway sends Chat for
 * bench/chat-gateway.ts's `myChatEvents` (sender as a reference), executed the way graphql-js's
 * subscribe runs each event (execute with the event as root), then serialized as a graphql-ws
 * `next` message. Reported: this process's CPU µs per event, and the same without the execution
 * (building the event and serializing it) for comparison.
 */
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import { execute, parse } from "graphql";
import { resolvers } from "@hv/chat/src/resolvers";
import type { ChatEventPayload } from "@hv/chat/src/modules/bus";
import { typeDefs } from "@hv/chat/src/server";
import { flag } from "./support/args";
import { sampleMessageEvent } from "./support/chat-event";
import { loadAverage, printHeader } from "./support/service";

const CONVERSATION = "0b7c3c0e-6a52-4c55-9d6e-5a0f3c1e2d01";
const SENDER = "5d3f7b2a-1c4e-4f8a-9b6d-2e1f0a3c4b5d";

function event(seq: number): ChatEventPayload {
  return sampleMessageEvent(seq, {
    conversationId: CONVERSATION,
    senderId: SENDER,
    messageId: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
  });
}

async function main(): Promise<void> {
  const events = flag("events", 20_000);
  const rounds = flag("rounds", 3);
  printHeader("chat-event-execution.ts");
  const schema = buildSubgraphSchema([{ typeDefs, resolvers: resolvers as GraphQLResolverMap<unknown> }]);
  const document = parse(
    "subscription Feed__chat__0 { myChatEvents { kind conversationId seq message { __typename id text sender { __typename id } } } }",
  );
  const context = {
    viewer: { userId: SENDER, sessionId: SENDER, role: "USER" },
    refreshLoaders: () => undefined,
  };
  const perEvent = (start: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(start);
    return ((used.user + used.system) / events).toFixed(1);
  };
  for (let round = 1; round <= rounds; round += 1) {
    let start = process.cpuUsage();
    for (let seq = 1; seq <= events; seq += 1) {
      const result = await execute({ schema, document, rootValue: event(seq), contextValue: context });
      JSON.stringify({ id: "1", type: "next", payload: result });
    }
    const executed = perEvent(start);
    start = process.cpuUsage();
    for (let seq = 1; seq <= events; seq += 1)
      JSON.stringify({ id: "1", type: "next", payload: { data: { myChatEvents: event(seq) } } });
    console.log(
      `round ${round}: execute + serialize ${executed} CPU-µs per event; event + serialize alone ${perEvent(start)}; load average ${loadAverage()}`,
    );
  }
}

void main();

/**
 * What Chat's execution of one subscription event costs, per event and subscriber, graphql-js
 * against graphql-jit's compiled operation (what kit's sharedSubscribe runs), interleaved:
 *
 *   pnpm exec tsx bench/chat-event-execution.ts [--events 20000] [--rounds 3] [--app]
 *
 * Chat's schema (buildSubgraphSchema with its resolvers), the selection the gateway sends Chat for
 * bench/chat-gateway.ts's `myChatEvents` (sender as a reference; `--app`: the app's ChatMyEvents),
 * executed the way a subscription runs each event (the event as root), then serialized as a
 * graphql-ws `next` message. Reported: this process's CPU µs per event for each way, and building
 * and serializing the event alone, for comparison; the two ways' results are checked equal.
 */
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import { execute, parse, type ExecutionResult } from "graphql";
import { compileCounted } from "@hv/kit/src/jit-executor";
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

const TRIMMED =
  "subscription Feed__chat__0 { myChatEvents { kind conversationId seq message { __typename id text sender { __typename id } } } }";
const APP =
  "subscription ChatMyEvents__chat__0 { myChatEvents { kind conversationId seq occurredAt actor { __typename id } message { id seq clientMessageId text createdAt editedAt deleted sender { __typename id } attachments { id } reactions { emoji count reactedByMe } } invitation { id title inviter { __typename id } } } }";

async function main(): Promise<void> {
  const events = flag("events", 20_000);
  const rounds = flag("rounds", 3);
  printHeader("chat-event-execution.ts");
  const schema = buildSubgraphSchema([{ typeDefs, resolvers: resolvers as GraphQLResolverMap<unknown> }]);
  const document = parse(process.argv.includes("--app") ? APP : TRIMMED);
  // As kit's sharedSubscribe compiles it.
  const compiled = compileCounted(schema, document, undefined);
  if (!("query" in compiled)) throw new Error(`not compiled: ${JSON.stringify(compiled)}`);
  const context = {
    viewer: { userId: SENDER, sessionId: SENDER, role: "USER" },
    refreshLoaders: () => undefined,
  };
  const ways: Record<string, (root: ChatEventPayload) => Promise<ExecutionResult> | ExecutionResult> = {
    "graphql-js": (root) => execute({ schema, document, rootValue: root, contextValue: context }),
    "graphql-jit": (root) => compiled.query(root, context, {}),
  };
  const check = event(1);
  const [js, jit] = await Promise.all(Object.values(ways).map((way) => way(check)));
  if (JSON.stringify(js) !== JSON.stringify(jit)) throw new Error("graphql-js and graphql-jit differ");
  const perEvent = (start: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(start);
    return ((used.user + used.system) / events).toFixed(1);
  };
  for (let round = 1; round <= rounds; round += 1) {
    const figures: string[] = [];
    for (const [name, way] of Object.entries(ways)) {
      const start = process.cpuUsage();
      for (let seq = 1; seq <= events; seq += 1) {
        const result = await way(event(seq));
        JSON.stringify({ id: "1", type: "next", payload: result });
      }
      figures.push(`${name} ${perEvent(start)}`);
    }
    const start = process.cpuUsage();
    for (let seq = 1; seq <= events; seq += 1)
      JSON.stringify({ id: "1", type: "next", payload: { data: { myChatEvents: event(seq) } } });
    console.log(
      `round ${round}: execute + serialize, CPU-µs per event: ${figures.join(", ")}; event + serialize alone ${perEvent(start)}; load average ${loadAverage()}`,
    );
  }
}

void main();

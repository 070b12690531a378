/**
 * What Chat spends delivering one live event to `subscribers` subscribers on one instance, from
 * the Redis body each recipient's channel carries to the graphql-ws `next` each one is sent:
 *
 *   pnpm exec tsx bench/chat-event-fanout.ts [--subscribers 2] [--events 5000] [--rounds 4] [--app]
 *
 * Two ways, interleaved in one process (so a shared machine's load falls on both alike):
 * - per subscriber: every recipient's body parsed and its message revived, and graphql-js's
 *   `subscribe` (graphql-ws's default) executing the selection for each subscriber;
 * - shared: the bus's `eventParser` (one parse for the recipients of one body) and kit's
 *   `sharedSubscribe` with Chat's `sharedEventFields` (one execution per event).
 * - shared when: `sharedSubscribe` with `sharedEventFieldsWhen` as well (the per-viewer fields a
 *   new message's event resolves alike for everyone);
 * - shared when, graphql-js: the same, subscribed as if tracing ran, so that each event executes
 *   with graphql-js instead of the compiled operation (what Chat did before round 12).
 * All run Chat's own `myChatEvents` subscribe (its inSeqOrder stream) with the selection the
 * gateway sends Chat for the trimmed feed (`--app`: for the app's ChatMyEvents, which selects
 * `reactions { reactedByMe }` and `invitation`); Redis itself is left out. Reported: this
 * process's CPU µs per event (all its subscribers), each round.
 */
import { randomUUID } from "node:crypto";
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import { parse, subscribe, type ExecutionArgs, type ExecutionResult } from "graphql";
import { sharedSubscribe } from "@hv/kit";
import { eventParser, type ChatEventPayload } from "@hv/chat/src/modules/bus";
import { reviveMessageRow } from "@hv/chat/src/modules/rows";
import { resolvers, sharedEventFields, sharedEventFieldsWhen } from "@hv/chat/src/resolvers";
import { typeDefs } from "@hv/chat/src/server";
import { setTracingShutdown } from "@hv/kit/src/tracing-shutdown";
import { flag } from "./support/args";
import { sampleMessageEvent } from "./support/chat-event";
import { loadAverage, printHeader } from "./support/service";

const CONVERSATION = randomUUID();
const SENDER = randomUUID();

function event(seq: number): ChatEventPayload {
  return sampleMessageEvent(seq, { conversationId: CONVERSATION, senderId: SENDER, messageId: randomUUID() });
}

/** A subscriber's source: what the bus would hand its stream, pushed by the bench. */
function source() {
  const queue: ChatEventPayload[] = [];
  let waiting: ((result: IteratorResult<ChatEventPayload>) => void) | undefined;
  const iterator = {
    next: (): Promise<IteratorResult<ChatEventPayload>> => {
      const value = queue.shift();
      if (value) return Promise.resolve({ done: false, value });
      return new Promise((resolve) => (waiting = resolve));
    },
    return: () => {
      waiting?.({ done: true, value: undefined });
      return Promise.resolve({ done: true as const, value: undefined });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return {
    iterator,
    push(value: ChatEventPayload) {
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ done: false, value });
      } else queue.push(value);
    },
  };
}

type Stream = AsyncIterator<ExecutionResult> & { return(): Promise<unknown> };

async function main(): Promise<void> {
  const subscribers = Math.max(1, flag("subscribers", 2));
  const events = flag("events", 5_000);
  const rounds = flag("rounds", 4);
  printHeader("chat-event-fanout.ts");
  const schema = buildSubgraphSchema([{ typeDefs, resolvers: resolvers as GraphQLResolverMap<unknown> }]);
  const document = parse(
    process.argv.includes("--app")
      ? "subscription ChatMyEvents__chat__0 { myChatEvents { kind conversationId seq occurredAt actor { __typename id } message { id seq clientMessageId text createdAt editedAt deleted sender { __typename id } attachments { id } reactions { emoji count reactedByMe } } invitation { id title inviter { __typename id } } } }"
      : "subscription Feed__chat__0 { myChatEvents { kind conversationId seq message { __typename id text sender { __typename id } } } }",
  );
  const shared = sharedSubscribe(schema, sharedEventFields);
  const sharedWhen = sharedSubscribe(schema, sharedEventFields, sharedEventFieldsWhen);
  type Way = "per subscriber" | "shared" | "shared when" | "shared when, graphql-js";

  /** Subscribers set up one way; returns how to deliver one body to all of them. */
  async function setUp(way: Way) {
    const parseBody = eventParser();
    const feeds = await Promise.all(
      Array.from({ length: subscribers }, async () => {
        const feed = source();
        const userId = randomUUID();
        const args: ExecutionArgs = {
          schema,
          document,
          contextValue: {
            viewer: { userId, sessionId: userId, role: "USER" },
            services: {
              presence: { keepOnline: () => () => undefined },
              bus: { subscribe: () => feed.iterator },
            },
            refreshLoaders: () => undefined,
          },
        };
        // sharedSubscribe decides when subscribing: graphql-js while a tracing SDK runs.
        if (way === "shared when, graphql-js") setTracingShutdown(() => Promise.resolve());
        const stream = (
          way === "shared"
            ? await shared(args)
            : way === "shared when" || way === "shared when, graphql-js"
              ? await sharedWhen(args)
              : await subscribe(args)
        ) as Stream;
        setTracingShutdown(undefined);
        return { feed, stream };
      }),
    );
    return {
      async deliver(id: number, body: string) {
        for (const { feed } of feeds) {
          if (way !== "per subscriber") feed.push(parseBody(body));
          else {
            const parsed = JSON.parse(body) as ChatEventPayload;
            feed.push({ ...parsed, message: parsed.message ? reviveMessageRow(parsed.message) : null });
          }
        }
        for (const { stream } of feeds) {
          const result = await stream.next();
          JSON.stringify({ id: String(id), type: "next", payload: result.value });
        }
      },
      end: () => Promise.all(feeds.map(({ stream }) => stream.return())),
    };
  }

  const bodies = Array.from({ length: events }, (_, index) => JSON.stringify(event(index + 1)));
  for (let round = 1; round <= rounds; round += 1) {
    const figures: string[] = [];
    const ways: Way[] = ["per subscriber", "shared", "shared when", "shared when, graphql-js"];
    for (const way of round % 2 === 1 ? ways : ways.reverse()) {
      const run = await setUp(way);
      const start = process.cpuUsage();
      for (let index = 0; index < events; index += 1) await run.deliver(index, bodies[index] as string);
      const used = process.cpuUsage(start);
      await run.end();
      figures.push(`${way} ${((used.user + used.system) / events).toFixed(1)}`);
    }
    console.log(
      `round ${round}, ${subscribers} subscribers: CPU-µs per event ${figures.join(", ")}; load average ${loadAverage()}`,
    );
  }
}

void main();

/**
 * What the gateway spends resolving one subscription event (the plan's `rest`: Users' fields of
 * the event's people), through @apollo/gateway's executor, through the direct path
 * (gateway/src/subscriptions/direct-entities.ts) shaped by Apollo's computeResponse (round 7), and
 * through the direct path or the plan walker shaped by the compiled shaper (result-shaper.ts, the
 * gateway's default), interleaved in one process:
 *
 *   pnpm exec tsx bench/gateway-event-resolve.ts [--events 20000] [--rounds 4] [--trimmed]
 *
 * The real supergraph and planner, the app's ChatMyEvents (or, with --trimmed, the feed of rounds
 * 1–5), SubscriptionHub.resolve as a feed calls it per event, and a Users data source answering
 * in memory behind the hub's shared fetches: every sender is fetched once, then answered from the
 * gateway's cache, as in steady state. `--hidden` makes every sender a hidden profile (a null
 * entity): no direct run, the executor or the walker instead. Reported: this process's CPU µs and
 * JS heap bytes allocated (bench/support/loop-probe.ts's AllocationCounter) per event and path.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "@hv/kit";
import { SubscriptionHub, type SubscriptionHubOptions } from "@hv/gateway/src/subscriptions/hub";
import { SubscriptionPlanner } from "@hv/gateway/src/subscriptions/planner";
import { UpstreamPool } from "@hv/gateway/src/subscriptions/upstream";
import type { GatewayContext } from "@hv/gateway/src/subgraph-data-source";
import { flag } from "./support/args";
import { AllocationCounter } from "./support/loop-probe";
import { loadAverage, printHeader, ROOT } from "./support/service";

const TRIMMED = `subscription Feed { myChatEvents { kind conversationId seq message { id text sender { id displayName } } } }`;
const PEOPLE = 200;

const person = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** The event as Chat sends it for the planned `primary` (references of Users by id). */
function event(seq: number, trimmed: boolean): { data: Record<string, unknown> } {
  const sender = { __typename: "User", id: person(seq % PEOPLE) };
  const message = {
    id: `10000000-0000-4000-8000-${String(seq).padStart(12, "0")}`,
    seq,
    clientMessageId: `client-${seq}`,
    text: `hello ${seq}`,
    createdAt: "2026-12-06T05:00:00.000Z",
    editedAt: null,
    deleted: false,
    sender,
    attachments: [],
    reactions: [],
  };
  if (trimmed)
    return {
      data: {
        myChatEvents: {
          kind: "MESSAGE_ADDED",
          conversationId: "c",
          seq,
          message: { id: message.id, text: message.text, sender },
        },
      },
    };
  return {
    data: {
      myChatEvents: {
        kind: "MESSAGE_ADDED",
        conversationId: "c",
        seq,
        occurredAt: "2026-12-06T05:00:00.000Z",
        actor: { ...sender },
        message,
        invitation: null,
      },
    },
  };
}

async function main(): Promise<void> {
  const events = flag("events", 20_000);
  const rounds = flag("rounds", 4);
  const trimmed = process.argv.includes("--trimmed");
  const hidden = process.argv.includes("--hidden");
  printHeader("gateway-event-resolve.ts");
  const logger = createLogger({ level: "warn", service: "bench" });
  const planner = new SubscriptionPlanner(
    readFileSync(path.join(ROOT, "gateway/supergraph.graphql"), "utf8"),
  );
  const query = trimmed
    ? TRIMMED
    : readFileSync(path.join(ROOT, "operations/chat/ChatMyEvents.graphql"), "utf8");
  const planned = planner.prepare({ query });
  if (Array.isArray(planned)) throw new Error(planned.map((e) => e.message).join("; "));
  let usersFetches = 0;
  const users: SubscriptionHubOptions["dataSources"][string] = {
    process: async (options) => {
      usersFetches += 1;
      const representations = (options.request.variables?.representations ?? []) as Array<{ id: string }>;
      return {
        data: {
          _entities: representations.map((r) =>
            hidden ? null : { displayName: `Person ${r.id.slice(-4)}` },
          ),
        },
      };
    },
  };
  const hub = (directEntities: boolean, compiledEvents: boolean) =>
    new SubscriptionHub({
      dataSources: { users },
      upstream: new UpstreamPool({ urls: {}, connectionsPerSubgraph: 1, keepAliveMs: 12_000, logger }),
      // Kept for the whole run: the steady state of Users' change channel.
      fetchShareMs: 3_600_000,
      userCacheMs: 0,
      maxCachedFetches: 100_000,
      maxQueuedPerSubscription: 100,
      maxInFlightPerFeed: 100,
      directEntities,
      compiledEvents,
      logger,
    });
  const hubs = { executor: hub(false, false), direct: hub(true, false), compiled: hub(true, true) };
  const paths = Object.keys(hubs) as Array<keyof typeof hubs>;
  const context: GatewayContext = {
    requestId: "bench",
    logger,
    viewer: null,
    clientIp: "127.0.0.1",
    authorization: null,
  };
  const resolveAll = async (which: keyof typeof hubs, count: number) => {
    const target = hubs[which];
    const plan = target.planOf(planned);
    let errors = 0;
    for (let seq = 1; seq <= count; seq += 1) {
      const result = await target.resolve(planned, plan, event(seq, trimmed), context);
      if (result.errors?.length) errors += 1;
    }
    return errors;
  };
  // Warm-up: every person fetched once, the code paths compiled.
  for (const which of paths) await resolveAll(which, 2 * PEOPLE);
  const check = await Promise.all(
    paths.map((which) =>
      hubs[which].resolve(planned, hubs[which].planOf(planned), event(7, trimmed), context),
    ),
  );
  if (new Set(check.map((result) => JSON.stringify(result))).size !== 1)
    throw new Error(`the paths differ: ${JSON.stringify(check)}`);
  console.log(
    `operation: ${trimmed ? "trimmed feed (--trimmed)" : "the app's ChatMyEvents"}${hidden ? ", every sender hidden (--hidden)" : ""}; ${events} events per round`,
  );
  const allocation = new AllocationCounter();
  for (let round = 1; round <= rounds; round += 1) {
    const line: string[] = [];
    // Each round starts with the next path: no path always runs first or last.
    for (let i = 0; i < paths.length; i += 1) {
      const which = paths[(round + i) % paths.length]!;
      const fetchesBefore = usersFetches;
      allocation.take();
      const start = process.cpuUsage();
      const errors = await resolveAll(which, events);
      const used = process.cpuUsage(start);
      const allocated = allocation.take();
      line.push(
        `${which} ${((used.user + used.system) / events).toFixed(1)} CPU-µs and ${(allocated / events).toFixed(0)} bytes allocated per event (${errors} with errors, ${usersFetches - fetchesBefore} Users fetches)`,
      );
    }
    console.log(`round ${round}: ${line.join("; ")}; load average ${loadAverage()}`);
  }
  for (const which of paths) {
    const stats = hubs[which].stats();
    console.log(
      `${which} hub: ${stats.eventRuns} runs, ${stats.eventRunsDirect} direct, ${stats.eventRunsWalked} walked, ${stats.eventRunsApollo} by executeQueryPlan, ${stats.eventShapingsApollo} shaped by computeResponse`,
    );
  }
  await Promise.all(paths.map((which) => hubs[which].stop()));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

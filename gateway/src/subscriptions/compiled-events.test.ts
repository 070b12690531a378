import { readFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "@hv/kit";
import type { GatewayContext } from "../subgraph-data-source";
import { SubscriptionHub, type SubscriptionHubOptions } from "./hub";
import { SubscriptionPlanner } from "./planner";
import { UpstreamPool } from "./upstream";

const root = path.resolve(__dirname, "../../..");
const planner = new SubscriptionPlanner(readFileSync(path.join(root, "gateway/supergraph.graphql"), "utf8"));
const logger = createLogger({ service: "test", level: "silent" });
const context: GatewayContext = {
  requestId: "test",
  logger,
  viewer: null,
  clientIp: "127.0.0.1",
  authorization: null,
};

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
/** How Users answers each person: the ids name what goes wrong. */
const ADA = id(1);
const HIDDEN = id(2); // a hidden profile: a null entity
const BROKEN = id(3); // a non-null field null
const FAILING = id(4); // an error on the entity
const UNREACHABLE = id(5); // the fetch throws
const WRONG = id(6); // a leaf of the wrong type
const ROBOT = id(7); // an unknown __typename

type Answer = Awaited<ReturnType<SubscriptionHubOptions["dataSources"][string]["process"]>>;

function usersAnswer(representations: Array<{ id: string }>): Answer {
  if (representations.some((r) => r.id === UNREACHABLE))
    throw new Error("connect ECONNREFUSED 127.0.0.1:4001");
  const errors: Array<NonNullable<Answer["errors"]>[number]> = [];
  const entities = representations.map((r, index) => {
    switch (r.id) {
      case HIDDEN:
        return null;
      case BROKEN:
        return { displayName: null };
      case FAILING:
        errors.push({
          message: "profiles are down",
          path: ["_entities", index, "displayName"],
          extensions: { code: "UNAVAILABLE" },
        });
        return null;
      case WRONG:
        return { displayName: 12 };
      case ROBOT:
        return { __typename: "Robot", displayName: "R" };
      default:
        return { displayName: `Person ${r.id.slice(-2)}` };
    }
  });
  return errors.length ? { data: { _entities: entities }, errors } : { data: { _entities: entities } };
}

const dataSources: SubscriptionHubOptions["dataSources"] = {
  users: {
    process: async (options) =>
      usersAnswer((options.request.variables?.representations ?? []) as Array<{ id: string }>),
  },
  media: {
    process: async (options) => {
      const representations = (options.request.variables?.representations ?? []) as Array<{ id: string }>;
      return {
        data: { _entities: representations.map((r) => ({ photos: [{ id: `photo-${r.id.slice(-2)}` }] })) },
      };
    },
  },
};

/** A hub as the gateway makes it, nothing shared between runs (every event asks its subgraphs). */
function hub(options: Pick<SubscriptionHubOptions, "directEntities" | "compiledEvents">): SubscriptionHub {
  return new SubscriptionHub({
    dataSources,
    upstream: new UpstreamPool({ urls: {}, connectionsPerSubgraph: 1, keepAliveMs: 12_000, logger }),
    fetchShareMs: 0,
    userCacheMs: 0,
    maxCachedFetches: 100,
    maxQueuedPerSubscription: 10,
    maxInFlightPerFeed: 10,
    logger,
    ...options,
  });
}

const user = (userId: string) => ({ __typename: "User", id: userId });

/** A MESSAGE_ADDED event as Chat sends it, `sender` also its actor. */
function added(sender: string, seq = 1, extra: Record<string, unknown> = {}) {
  return {
    data: {
      myChatEvents: {
        __typename: "ChatEvent",
        kind: "MESSAGE_ADDED",
        conversationId: "c1",
        seq,
        occurredAt: "2026-12-06T05:00:00.000Z",
        actor: user(sender),
        message: {
          id: `m${seq}`,
          seq,
          clientMessageId: `client-${seq}`,
          text: `hello ${seq}`,
          createdAt: "2026-12-06T05:00:00.000Z",
          editedAt: null,
          deleted: false,
          sender: user(sender),
          attachments: [],
          reactions: [{ emoji: "👍", count: 1, reactedByMe: false }],
        },
        invitation: null,
        ...extra,
      },
    },
  };
}

const EVENTS: Array<{ name: string; event: { data?: unknown; errors?: unknown[] } }> = [
  { name: "a message", event: added(ADA) },
  { name: "a hidden sender", event: added(HIDDEN) },
  { name: "a sender whose non-null field is null", event: added(BROKEN) },
  { name: "a sender Users fails on", event: added(FAILING) },
  { name: "Users unreachable", event: added(UNREACHABLE) },
  { name: "a leaf of the wrong type", event: added(WRONG) },
  { name: "an unknown __typename from Users", event: added(ROBOT) },
  { name: "no message", event: added(ADA, 2, { kind: "READ", message: null }) },
  {
    name: "an invitation",
    event: added(ADA, 3, {
      kind: "INVITATION_RECEIVED",
      message: null,
      invitation: { id: "i1", title: "hikes", inviter: user(ADA) },
    }),
  },
  {
    name: "an event's own error",
    event: { data: null, errors: [{ message: "nope", extensions: { code: "FORBIDDEN" } }] },
  },
  {
    name: "an event's error beside data",
    event: {
      ...added(ADA, 4),
      errors: [{ message: "partly", path: ["myChatEvents", "message"], extensions: { code: "X" } }],
    },
  },
  { name: "an enum value Chat does not declare", event: added(ADA, 5, { kind: "NOPE" }) },
  { name: "a non-null field of the event missing", event: added(ADA, 6, { occurredAt: null }) },
  { name: "a string where an object belongs", event: added(ADA, 7, { message: "oops" }) },
  { name: "a list where an object belongs", event: added(ADA, 8, { actor: [user(ADA)] }) },
];

const QUERIES: Array<{ name: string; query: string; variables?: Record<string, unknown> }> = [
  {
    name: "the app's ChatMyEvents",
    query: readFileSync(path.join(root, "operations/chat/ChatMyEvents.graphql"), "utf8"),
  },
  {
    name: "aliases, __typename and a condition (included)",
    query: `subscription S($full: Boolean!) { e: myChatEvents { __typename kind seq m: message @include(if: $full) { sender { id name: displayName __typename } } actor { displayName } } }`,
    variables: { full: true },
  },
  {
    name: "aliases, __typename and a condition (skipped)",
    query: `subscription S($full: Boolean!) { e: myChatEvents { __typename kind seq m: message @include(if: $full) { sender { id name: displayName __typename } } actor { displayName } } }`,
    variables: { full: false },
  },
  {
    name: "a field that is not public (Media's photos): no direct run",
    query: `subscription { myChatEvents { seq message { sender { displayName photos { id } } } actor { id } } }`,
  },
];

describe("subscription events through the plan walker and compiled shaper", () => {
  const apollo = hub({ directEntities: false, compiledEvents: false });
  const directApollo = hub({ compiledEvents: false });
  const walked = hub({ directEntities: false });
  const compiled = hub({});

  afterAll(async () => {
    await Promise.all([apollo, directApollo, walked, compiled].map((h) => h.stop()));
  });

  it("should answer every event exactly as executeQueryPlan does: data, errors, masking", async () => {
    for (const { name: queryName, query, variables } of QUERIES) {
      const planned = planner.prepare({ query, variables });
      if (Array.isArray(planned)) throw new Error(planned.map((e) => e.message).join("; "));
      for (const { name, event } of EVENTS) {
        const run = (h: SubscriptionHub) =>
          h.resolve(planned, h.planOf(planned), structuredClone(event) as never, context);
        const expected = JSON.stringify(await run(apollo));
        for (const [by, h] of [
          ["direct, computeResponse", directApollo],
          ["walker", walked],
          ["direct or walker, compiled", compiled],
        ] as const) {
          expect({ queryName, name, by, answer: JSON.stringify(await run(h)) }).toEqual({
            queryName,
            name,
            by,
            answer: expected,
          });
        }
      }
    }
  });

  it("should run events through Apollo only in the hubs told to, and count what ran where", () => {
    const runs = QUERIES.length * EVENTS.length;
    expect(apollo.stats()).toMatchObject({
      eventRuns: runs,
      eventRunsApollo: runs,
      eventRunsDirect: 0,
      eventRunsWalked: 0,
    });
    expect(walked.stats()).toMatchObject({
      eventRuns: runs,
      eventRunsApollo: 0,
      eventRunsDirect: 0,
      eventRunsWalked: runs,
    });
    const stats = compiled.stats();
    expect(stats.eventRunsApollo).toBe(0);
    // Direct: the app's document and the two aliased ones, for the events without errors or nulls.
    expect(stats.eventRunsDirect).toBeGreaterThan(0);
    expect(stats.eventRunsDirect + stats.eventRunsWalked).toBe(runs);
    // The string and the list where objects belong are shaped by computeResponse (direct or walked).
    expect(stats.eventShapingsApollo).toBeGreaterThan(0);
  });

  it("should report a hidden sender's non-null violations, as queries do, not a silent null", async () => {
    const planned = planner.prepare({ query: QUERIES[0]!.query });
    if (Array.isArray(planned)) throw new Error("not planned");
    const result = await compiled.resolve(planned, compiled.planOf(planned), added(HIDDEN) as never, context);
    expect(result.data?.myChatEvents).toMatchObject({ actor: null, message: { id: "m1", sender: null } });
    expect(result.errors?.map((e) => [e.message, e.path, e.extensions.code])).toEqual([
      [
        "Cannot return null for non-nullable field User.displayName.",
        ["myChatEvents", "actor", "displayName"],
        "INVALID_GRAPHQL",
      ],
      [
        "Cannot return null for non-nullable field User.displayName.",
        ["myChatEvents", "message", "sender", "displayName"],
        "INVALID_GRAPHQL",
      ],
    ]);
  });
});

import { readFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "@hv/kit";
import type { GatewayContext } from "../subgraph-data-source";
import { directPlanOf, runDirect, type DirectPlan, type HeldAnswers } from "./direct-entities";
import { SubscriptionPlanner, type PlannedSubscription } from "./planner";
import { SharedFetches } from "./shared-fetches";

const root = path.resolve(__dirname, "../../..");
const planner = new SubscriptionPlanner(readFileSync(path.join(root, "gateway/supergraph.graphql"), "utf8"));
const fetches = new SharedFetches({ shareMs: 0, userCacheMs: 0, maxEntries: 10 });
const ADA = "00000000-0000-4000-8000-000000000001";
const context = {
  requestId: "test",
  logger: createLogger({ service: "test", level: "silent" }),
  viewer: null,
  clientIp: "127.0.0.1",
  authorization: null,
} as GatewayContext;

function plan(query: string): { planned: PlannedSubscription; direct: DirectPlan | undefined } {
  const planned = planner.prepare({ query });
  if (Array.isArray(planned)) throw new Error(planned.map((e) => e.message).join("; "));
  const supergraph = {
    version: planned.supergraph.version,
    schema: planned.supergraph.pieces.supergraphGraphQLSchema,
  };
  const direct = directPlanOf({
    primary: planned.primary,
    rest: planned.rest,
    operationContext: planned.operationContext,
    apiSchema: planned.supergraph.pieces.apiSchema,
    isPublic: (fetch) => fetches.isPublicOperation(fetch.operation, supergraph),
  });
  return { planned, direct };
}

/** Users answering every representation with a displayName, counting what it was asked. */
function users() {
  const asked: unknown[] = [];
  return {
    asked,
    process: async (_service: string, options: { request: { variables?: Record<string, unknown> } }) => {
      asked.push(options.request.variables);
      const representations = (options.request.variables?.representations ?? []) as Array<{ id: string }>;
      return { data: { _entities: representations.map(() => ({ displayName: "Ada" })) } };
    },
  };
}

describe("directPlanOf", () => {
  it("should take the app's ChatMyEvents: three independent User fetches by id", () => {
    const query = readFileSync(path.join(root, "operations/chat/ChatMyEvents.graphql"), "utf8");
    const { direct } = plan(query);
    expect(direct?.fetches.map((f) => f.path.join("."))).toEqual([
      "myChatEvents.actor",
      "myChatEvents.message.sender",
      "myChatEvents.invitation.inviter",
    ]);
  });

  it("should leave a plan that fetches a field that is not public to the executor", () => {
    const { direct } = plan(`subscription { myChatEvents { seq message { sender { id email } } } }`);
    expect(direct).toBeUndefined();
  });
});

describe("runDirect", () => {
  const { planned, direct } = plan(
    `subscription { myChatEvents { seq message { sender { displayName } } } }`,
  );
  const run = (data: Record<string, unknown>, held: HeldAnswers = new Map()) => {
    const stub = users();
    const result = runDirect(
      direct!,
      { data },
      planned.variables,
      stub.process as never,
      {
        context,
        incomingRequestContext: {},
      },
      held,
    );
    return { result, stub, held };
  };

  it("should merge and shape an event as asked", async () => {
    const { result } = run({
      myChatEvents: { seq: 3, message: { sender: { __typename: "User", id: ADA } } },
    });
    expect(await result).toEqual({
      data: { myChatEvents: { seq: 3, message: { sender: { displayName: "Ada" } } } },
    });
  });

  it("should fetch nothing when the path holds no entity", async () => {
    const { result, stub } = run({ myChatEvents: { seq: 4, message: null } });
    expect(await result).toEqual({ data: { myChatEvents: { seq: 4, message: null } } });
    expect(stub.asked).toEqual([]);
  });

  it("should leave data that does not fit the plan's path to the executor", async () => {
    const { result, stub } = run({
      myChatEvents: { seq: 5, message: [{ sender: { __typename: "User", id: ADA } }] },
    });
    expect(await result).toBeUndefined();
    expect(stub.asked).toEqual([]);
  });

  it("should hold an answer it cannot use (a null entity) for the executor", async () => {
    const held: HeldAnswers = new Map();
    const result = await runDirect(
      direct!,
      { data: { myChatEvents: { seq: 6, message: { sender: { __typename: "User", id: ADA } } } } },
      planned.variables,
      async () => ({ data: { _entities: [null] } }),
      { context, incomingRequestContext: {} },
      held,
    );
    expect(result).toBeUndefined();
    expect(held.size).toBe(1);
    expect(await [...held.values()][0]).toEqual({ data: { _entities: [null] } });
  });
});

import type { GraphQLDataSource } from "@apollo/gateway";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import { computeResponse } from "@apollo/gateway/dist/resultShaping";
import { deepMerge } from "@apollo/gateway/dist/utilities/deepMerge";
import { operationFromDocument, type Operation, type Schema } from "@apollo/federation-internals";
import type { FetchNode, PlanNode } from "@apollo/query-planner";
import { Kind, type GraphQLError, type SelectionNode } from "graphql";
import { compileShaping } from "../query-executor";
import { Unshaped, type ResultShaper, type Shaped } from "../result-shaper";
import type { GatewayContext } from "../subgraph-data-source";
import type { UpstreamEvent } from "./upstream";

type GatewayResponse = Awaited<ReturnType<GraphQLDataSource["process"]>>;
type ProcessOptions = Parameters<GraphQLDataSource<GatewayContext>["process"]>[0];

/** What executeQueryPlan answers: the result, and the null-propagation errors as `valueCompletion`. */
export interface PlanResult {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLError[];
  extensions?: Record<string, unknown>;
}

/**
 * A subscription's `rest` that is nothing but independent entity fetches of Users by id (one
 * `Flatten` + `Fetch` each, in parallel): it can run without @apollo/gateway's executor, with the
 * executor's own merge (`deepMerge`) and its result shaping (`computeResponse`, compiled once per
 * document by result-shaper.ts) on an operation built once per document.
 */
export interface DirectPlan {
  operation: Operation;
  /** computeResponse compiled for `operation` (result-shaper.ts); undefined: computeResponse shapes. */
  shaper: ResultShaper | undefined;
  fetches: ReadonlyArray<{ path: readonly string[]; fetch: FetchNode }>;
}

/** Answers sent while trying a direct run, by request: the executor's identical request takes them. */
export type HeldAnswers = Map<string, Promise<GatewayResponse>>;

/** The key of one subgraph request as the executor makes it. */
export function requestKey(serviceName: string, query: string, variables: unknown): string {
  return `${serviceName}\0${query}\0${JSON.stringify(variables)}`;
}

/** `requires` of a User entity fetch by id: `... on User { __typename id }`. */
function requiresUserById(requires: readonly SelectionNode[] | undefined): boolean {
  const [only, ...others] = (requires ?? []) as ReadonlyArray<{
    kind: string;
    typeCondition?: string;
    selections?: ReadonlyArray<{ kind: string; name?: string; alias?: string; selections?: unknown }>;
  }>;
  if (!only || others.length > 0 || only.kind !== Kind.INLINE_FRAGMENT || only.typeCondition !== "User")
    return false;
  const names = (only.selections ?? []).map((s) =>
    s.kind === Kind.FIELD && s.alias === undefined && s.selections === undefined ? s.name : undefined,
  );
  return names.length === 2 && names[0] === "__typename" && names[1] === "id";
}

/**
 * The direct plan of `rest`, or undefined when it has any other shape (dependent fetches,
 * rewrites, variables, conditions, a fetch `isPublic` does not accept).
 */
export function directPlanOf(args: {
  primary: FetchNode;
  rest: PlanNode | undefined;
  operationContext: { operation: unknown; fragments: Record<string, unknown> };
  apiSchema: Schema;
  isPublic: (fetch: FetchNode) => boolean;
}): DirectPlan | undefined {
  const { primary, rest } = args;
  if (!rest || primary.outputRewrites?.length) return undefined;
  const flattens: Array<{ path: readonly string[]; fetch: FetchNode }> = [];
  const collect = (node: PlanNode): boolean => {
    switch (node.kind) {
      case "Parallel":
        return node.nodes.every(collect);
      case "Sequence":
        return node.nodes.length === 1 && collect(node.nodes[0]!);
      case "Flatten": {
        const fetch = node.node;
        if (fetch.kind !== "Fetch") return false;
        if (!node.path.every((element): element is string => typeof element === "string")) return false;
        if (
          !requiresUserById(fetch.requires as readonly SelectionNode[] | undefined) ||
          fetch.inputRewrites?.length ||
          fetch.outputRewrites?.length ||
          fetch.contextRewrites?.length ||
          fetch.variableUsages?.length ||
          !args.isPublic(fetch)
        )
          return false;
        flattens.push({ path: node.path as string[], fetch });
        return true;
      }
      default:
        return false;
    }
  };
  if (!collect(rest) || flattens.length === 0) return undefined;
  const compiled = compileShaping(
    args.apiSchema,
    args.operationContext as Parameters<typeof compileShaping>[1],
  );
  if (compiled) return { operation: compiled.operation, shaper: compiled.shaper, fetches: flattens };
  const { operation, fragments } = args.operationContext;
  // As executeQueryPlan builds it on every run.
  const built = operationFromDocument(
    args.apiSchema,
    { kind: Kind.DOCUMENT, definitions: [operation, ...Object.values(fragments)] } as Parameters<
      typeof operationFromDocument
    >[1],
    { validate: false },
  );
  return { operation: built, shaper: undefined, fetches: flattens };
}

/** `computeResponse`'s answer for a direct run: the compiled shaper's, or computeResponse's where it does not take the data. */
function shapeDirect(
  plan: DirectPlan,
  data: Record<string, unknown>,
  variables: Record<string, unknown>,
  onApolloShaping: () => void,
): Shaped | ReturnType<typeof computeResponse> {
  if (plan.shaper) {
    try {
      return plan.shaper.shape(data, variables);
    } catch (error) {
      if (!(error instanceof Unshaped)) throw error;
    }
  }
  onApolloShaping();
  return computeResponse({
    operation: plan.operation,
    variables,
    input: data,
    // Introspection (`__schema`, `__type`) is selectable on Query only, never inside a subscription.
    introspectionHandling: () => null,
  });
}

/**
 * The objects at `path` (`@` enters a list), nulls left out: where a Flatten's fetch merges.
 * Undefined when the data does not fit the path (a list where a field was expected, or the
 * reverse), which the executor reports as an error.
 */
function entitiesAt(value: unknown, path: readonly string[], from = 0): unknown[] | undefined {
  if (value === undefined || value === null) return [];
  if (from === path.length)
    return Array.isArray(value) ? value.filter((v) => v !== null && v !== undefined) : [value];
  const current = path[from]!;
  if (current === "@") {
    if (!Array.isArray(value)) return undefined;
    const found: unknown[] = [];
    for (const item of value) {
      const inner = entitiesAt(item, path, from + 1);
      if (!inner) return undefined;
      found.push(...inner);
    }
    return found;
  }
  if (Array.isArray(value)) return undefined;
  if (typeof value !== "object" || !Object.hasOwn(value, current)) return [];
  return entitiesAt((value as Record<string, unknown>)[current], path, from + 1);
}

/**
 * Runs `plan` for one event: each fetch through `process` (the shared, cached data sources), then
 * the executor's merge and shaping. Returns undefined, with every answer already asked for in
 * `held`, when anything is off the common path (the event has errors, an entity is not a User
 * with an id, a fetch failed or answered errors or a null entity): the executor then runs with
 * those answers and reports exactly as it always does.
 */
export async function runDirect(
  plan: DirectPlan,
  event: UpstreamEvent,
  variables: Record<string, unknown>,
  process: (serviceName: string, options: ProcessOptions) => Promise<GatewayResponse>,
  baseOptions: Pick<ProcessOptions, "context"> & { incomingRequestContext: unknown },
  held: HeldAnswers,
  onApolloShaping: () => void = () => undefined,
): Promise<PlanResult | undefined> {
  if (event.errors?.length || !event.data) return undefined;
  const data = Object.create(null) as Record<string, unknown>;
  deepMerge(data, event.data);
  const pending: Array<{ entities: Array<Record<string, unknown>>; answer: Promise<GatewayResponse> }> = [];
  for (const { path, fetch } of plan.fetches) {
    const entities = entitiesAt(data, path) as Array<Record<string, unknown>> | undefined;
    if (!entities) return undefined;
    if (entities.length === 0) continue;
    const representations: Array<{ __typename: string; id: unknown }> = [];
    for (const entity of entities) {
      if (typeof entity !== "object" || entity.__typename !== "User" || entity.id === undefined)
        return undefined;
      representations.push({ __typename: "User", id: entity.id });
    }
    const requestVariables = { representations };
    const key = requestKey(fetch.serviceName, fetch.operation, requestVariables);
    let answer = held.get(key);
    if (!answer) {
      answer = process(fetch.serviceName, {
        kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
        request: { query: fetch.operation, variables: requestVariables, operationName: fetch.operationName },
        incomingRequestContext: baseOptions.incomingRequestContext,
        context: baseOptions.context,
        document: fetch.operationDocumentNode,
        pathInIncomingRequest: [...path],
      } as unknown as ProcessOptions);
      // Awaited below or by the executor; never an unhandled rejection if neither gets to it.
      answer.catch(() => undefined);
      held.set(key, answer);
    }
    pending.push({ entities, answer });
  }
  const answers = await Promise.allSettled(pending.map((p) => p.answer));
  const received: unknown[][] = [];
  // Indexed loops here and below: `entries()` allocates a pair per element.
  for (let index = 0; index < answers.length; index += 1) {
    const settled = answers[index]!;
    if (settled.status === "rejected" || settled.value.errors?.length) return undefined;
    const entities = (settled.value.data as { _entities?: unknown } | null | undefined)?._entities;
    if (
      !Array.isArray(entities) ||
      entities.length !== pending[index]!.entities.length ||
      entities.some((entity) => entity === null || typeof entity !== "object")
    )
      return undefined;
    received.push(entities);
  }
  // Every answer is usable: merge as the executor does (the answers are this run's own copies).
  for (let index = 0; index < pending.length; index += 1) {
    const { entities } = pending[index]!;
    for (let i = 0; i < entities.length; i += 1) {
      const entity = entities[i]!;
      const answer = received[index]![i] as Record<string, unknown>;
      if (!answer.__typename) answer.__typename = entity.__typename;
      deepMerge(entity, answer);
    }
  }
  let shaped: Shaped | ReturnType<typeof computeResponse>;
  try {
    shaped = shapeDirect(plan, data, variables, onApolloShaping);
  } catch {
    return undefined; // the executor shapes it again and reports the failure its own way
  }
  const out: PlanResult = { data: (shaped.data ?? null) as Record<string, unknown> | null };
  if (shaped.errors.length > 0) out.extensions = { valueCompletion: shaped.errors };
  return out;
}

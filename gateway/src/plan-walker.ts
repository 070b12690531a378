import type { ServiceMap } from "@apollo/gateway";
import { applyRewrites, isObjectOfType } from "@apollo/gateway/dist/dataRewrites";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import { generateHydratedPaths, type executeQueryPlan } from "@apollo/gateway/dist/executeQueryPlan";
import { deepMerge } from "@apollo/gateway/dist/utilities/deepMerge";
import { ERRORS, errorCodeDef, type Operation } from "@apollo/federation-internals";
import {
  evaluateCondition,
  type FetchNode,
  type PlanNode,
  type QueryPlanSelectionNode,
  type ResponsePath,
  type SubscriptionNode,
} from "@apollo/query-planner";
import type { GatewayInterface } from "@hv/kit";
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import { emptyRecord } from "./record";

type Data = Record<string, unknown>;
type GatewayExecutor = NonNullable<Awaited<ReturnType<GatewayInterface["load"]>>["executor"]>;
export type RequestContext = Parameters<GatewayExecutor>[0];
type LegacyRequestContext = Parameters<typeof executeQueryPlan>[2];

/** Where a plan node works: a path in the answer and the object (or flattened objects) it points at. */
interface Cursor {
  path: ResponsePath;
  data: Data | Data[];
  fullResult: Data;
}

/** What every node of one request's plan shares. */
interface Walk {
  serviceMap: ServiceMap;
  requestContext: RequestContext;
  /** The federation operation the plan was built from (for Condition nodes' variable defaults). */
  operation: Operation;
  supergraphSchema: GraphQLSchema;
  /** Errors of the fetches, in the order they arrive (as Apollo reports them). */
  errors: GraphQLError[];
}

/** An entity's representation for a fetch with `requires`, or null when an input is missing. */
type Representer = (entity: Data | null) => Data | null;

/** A plan node kind this walker does not run (then the plan goes to Apollo's executor); undefined when all run. */
export function unsupportedNode(node: PlanNode | SubscriptionNode | undefined): string | undefined {
  if (!node) return undefined;
  switch (node.kind) {
    case "Sequence":
    case "Parallel":
      for (const child of node.nodes) {
        const unsupported = unsupportedNode(child);
        if (unsupported) return unsupported;
      }
      return undefined;
    case "Flatten":
      return unsupportedNode(node.node);
    case "Condition":
      return unsupportedNode(node.ifClause) ?? unsupportedNode(node.elseClause);
    case "Fetch":
      return node.hasDefers ? "Fetch with @defer" : undefined;
    default:
      return node.kind;
  }
}

/**
 * Runs a query plan (Sequence, Parallel, Flatten, Fetch with requires and rewrites, Condition)
 * into `data` as @apollo/gateway's `executeQueryPlan` does, minus its trace nodes and
 * OpenTelemetry spans: same fetches in the same order, same merging (`deepMerge`,
 * `applyRewrites`), same errors. One per supergraph; representation builders kept per fetch node.
 */
export class PlanWalker {
  private readonly representers = new WeakMap<FetchNode, Representer>();

  constructor(
    private readonly serviceMap: ServiceMap,
    private readonly supergraphSchema: GraphQLSchema,
  ) {}

  /**
   * Walks `node` into `data`; resolves with the fetches' errors (a thrown error is not a fetch's).
   * `serviceMap` replaces the walker's own for this run (a subscription event's services).
   */
  async run(
    node: PlanNode,
    operation: Operation,
    requestContext: RequestContext,
    data: Data,
    serviceMap: ServiceMap = this.serviceMap,
  ): Promise<GraphQLError[]> {
    const walk: Walk = {
      serviceMap,
      requestContext,
      operation,
      supergraphSchema: this.supergraphSchema,
      errors: [],
    };
    await this.node(walk, node, { path: [], data, fullResult: data });
    return walk.errors;
  }

  private async node(walk: Walk, node: PlanNode, cursor: Cursor | undefined): Promise<void> {
    if (!cursor) return;
    switch (node.kind) {
      case "Sequence":
        for (const child of node.nodes) await this.node(walk, child, cursor);
        return;
      case "Parallel":
        await Promise.all(node.nodes.map((child) => this.node(walk, child, cursor)));
        return;
      case "Flatten":
        return this.node(walk, node.node, moveInto(cursor, node.path));
      case "Fetch":
        try {
          await this.fetch(walk, node, cursor);
        } catch (error) {
          walk.errors.push(error as GraphQLError);
        }
        return;
      case "Condition": {
        const branch = evaluateCondition(
          node,
          walk.operation.variableDefinitions,
          walk.requestContext.request.variables,
        )
          ? node.ifClause
          : node.elseClause;
        if (branch) await this.node(walk, branch, cursor);
        return;
      }
      default:
        throw new Error(`the plan walker does not run ${(node as { kind: string }).kind} nodes`);
    }
  }

  private async fetch(walk: Walk, fetch: FetchNode, cursor: Cursor): Promise<void> {
    const service = walk.serviceMap[fetch.serviceName];
    if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
    const entities = Array.isArray(cursor.data)
      ? cursor.data.filter((entity) => entity !== null && entity !== undefined)
      : [cursor.data];
    if (entities.length === 0) return;
    const provided = walk.requestContext.request.variables;
    const variables = emptyRecord();
    for (const name of fetch.variableUsages ?? []) {
      if (provided && Object.hasOwn(provided, name) && provided[name] !== undefined) {
        variables[name] = provided[name];
      }
    }
    if (!fetch.requires) {
      const received = await this.send(walk, fetch, cursor, variables);
      if (received) applyRewrites(walk.supergraphSchema, fetch.outputRewrites, received);
      for (const entity of entities) deepMerge(entity, received);
      return;
    }
    const represent = this.representerOf(fetch, fetch.requires);
    const representations: Data[] = [];
    const targets: Data[] = [];
    for (const entity of entities) {
      const representation = represent(entity);
      if (representation && representation.__typename) {
        applyRewrites(walk.supergraphSchema, fetch.inputRewrites, representation);
        representations.push(representation);
        targets.push(entity);
      }
    }
    if (representations.length === 0) return;
    if ("representations" in variables) throw new Error(`Variables cannot contain key "representations"`);
    const received = await this.send(walk, fetch, cursor, { ...variables, representations });
    if (!received) return;
    const answered = received._entities;
    if (!(answered && Array.isArray(answered))) {
      throw new Error(`Expected "data._entities" in response to be an array`);
    }
    if (answered.length !== representations.length) {
      throw new Error(`Expected "data._entities" to contain ${representations.length} elements`);
    }
    for (let index = 0; index < targets.length; index += 1) {
      const entity = answered[index] as Data | null | undefined;
      if (entity && !entity.__typename) entity.__typename = targets[index]!.__typename;
      applyRewrites(walk.supergraphSchema, fetch.outputRewrites, entity as Data);
      deepMerge(targets[index], entity);
    }
  }

  /** Sends one fetch; its errors are recorded (paths into the whole answer) and its data returned. */
  private async send(
    walk: Walk,
    fetch: FetchNode,
    cursor: Cursor,
    variables: Data,
  ): Promise<Data | null | undefined> {
    const { requestContext } = walk;
    const response = await walk.serviceMap[fetch.serviceName]!.process({
      kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
      request: {
        query: fetch.operation,
        variables,
        ...(fetch.operationName === undefined ? {} : { operationName: fetch.operationName }),
      },
      incomingRequestContext: requestContext as unknown as LegacyRequestContext,
      context: requestContext.context,
      ...(fetch.operationDocumentNode ? { document: fetch.operationDocumentNode } : {}),
      pathInIncomingRequest: cursor.path,
    });
    if (response.errors) {
      const pathOf = errorPaths(fetch, cursor);
      for (const error of response.errors) {
        walk.errors.push(downstreamServiceError(error, fetch.serviceName, pathOf(error.path)));
      }
      if (!response.extensions?.ftv1) {
        const paths = response.errors.map((error) => ({ subgraph: fetch.serviceName, path: error.path }));
        const { metrics } = requestContext;
        if (metrics.nonFtv1ErrorPaths) metrics.nonFtv1ErrorPaths.push(...paths);
        else metrics.nonFtv1ErrorPaths = paths;
      }
    }
    return response.data as Data | null | undefined;
  }

  private representerOf(fetch: FetchNode, requires: QueryPlanSelectionNode[]): Representer {
    let represent = this.representers.get(fetch);
    if (!represent) {
      represent = compileRequires(this.supergraphSchema, requires);
      this.representers.set(fetch, represent);
    }
    return represent;
  }
}

/**
 * An entity's `requires` selections read from it, as Apollo's executor reads them: fields by
 * response name (a missing one makes the whole representation null), inline fragments by the
 * entity's `__typename` on the supergraph schema (it names @inaccessible types too).
 */
function compileRequires(schema: GraphQLSchema, selections: readonly QueryPlanSelectionNode[]): Representer {
  type Step = (source: Data, result: Data) => boolean;
  const steps: Step[] = [];
  for (const selection of selections) {
    if (selection.kind === "Field") {
      const name = selection.alias ?? selection.name;
      const nested = selection.selections ? compileRequires(schema, selection.selections) : undefined;
      steps.push((source, result) => {
        const value = source[name];
        if (!Object.hasOwn(source, name) || value === undefined) return false;
        if (Array.isArray(value)) {
          result[name] = nested ? value.map((item: Data | null) => nested(item)) : value.slice();
        } else {
          result[name] = nested ? nested(value as Data | null) : value;
        }
        return true;
      });
    } else {
      const condition = selection.typeCondition;
      if (!condition) continue;
      const nested = compileRequires(schema, selection.selections);
      steps.push((source, result) => {
        if (isObjectOfType(schema, source, condition)) deepMerge(result, nested(source));
        return true;
      });
    }
  }
  return (source) => {
    if (source === null) return null;
    const result = emptyRecord();
    for (const step of steps) if (!step(source, result)) return null;
    return result;
  };
}

/** An error's path in the whole answer: an entity fetch's `_entities` index becomes the entity's path. */
function errorPaths(
  fetch: FetchNode,
  cursor: Cursor,
): (path: GraphQLFormattedError["path"]) => ReadonlyArray<string | number> | undefined {
  let hydrated: ResponsePath[] | undefined;
  return (path) => {
    if (fetch.requires && typeof path?.[1] === "number") {
      if (!hydrated) {
        hydrated = [];
        generateHydratedPaths([], cursor.path, cursor.fullResult, hydrated);
      }
      return [...(hydrated[path[1]] ?? []), ...path.slice(2)];
    }
    return path ? [...cursor.path, ...path] : undefined;
  };
}

/** A subgraph's error as @apollo/gateway reports it: its code kept (else DOWNSTREAM_SERVICE_ERROR), the subgraph named. */
export function downstreamServiceError(
  original: GraphQLFormattedError,
  serviceName: string,
  path: ReadonlyArray<string | number> | undefined,
): GraphQLError {
  const message = original.message || `Error while fetching subquery from service "${serviceName}"`;
  const options = {
    originalError: original as Error,
    path: path ?? null,
    extensions: { ...original.extensions, serviceName },
  };
  const codeDef = errorCodeDef(original);
  if (!codeDef && original.extensions?.code) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}

/** The objects at `path` below the cursor (`@` flattens a list), or undefined when there are none. */
function moveInto(cursor: Cursor, path: ResponsePath): Cursor | undefined {
  const data = flatten(cursor.data, path, 0);
  return data ? { path: [...cursor.path, ...path], data, fullResult: cursor.fullResult } : undefined;
}

function flatten(value: unknown, path: ResponsePath, from: number): Data | Data[] | null | undefined {
  if (from === path.length) return value as Data | Data[] | null | undefined;
  if (value === undefined || value === null) return value;
  const key = path[from];
  if (key === "@") {
    return (value as unknown[]).flatMap((item) => flatten(item, path, from + 1) as Data | Data[]) as Data[];
  }
  if (typeof key !== "string") throw new Error(`Unexpected ${typeof key} found in path`);
  if (Array.isArray(value)) throw new Error(`Unexpected array in result for path element ${key}`);
  const object = value as Data;
  return flatten(Object.hasOwn(object, key) ? object[key] : undefined, path, from + 1);
}

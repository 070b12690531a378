import { buildOperationContext, executeQueryPlan, type ServiceMap } from "@apollo/gateway";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import { computeResponse } from "@apollo/gateway/dist/resultShaping";
import {
  ERRORS,
  errorCodeDef,
  operationFromDocument,
  Supergraph,
  type Operation,
  type Schema,
} from "@apollo/federation-internals";
import { QueryPlanner, type FetchNode, type QueryPlan } from "@apollo/query-planner";
import type { GatewayInterface } from "@hv/kit";
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type SelectionSetNode,
} from "graphql";
import { getVariableValues } from "graphql/execution/values";

type OperationContext = ReturnType<typeof buildOperationContext>;
type GatewayExecutor = NonNullable<Awaited<ReturnType<GatewayInterface["load"]>>["executor"]>;
type RequestContext = Parameters<GatewayExecutor>[0];
type ExecutionResult = Awaited<ReturnType<GatewayExecutor>>;
type LegacyRequestContext = Parameters<typeof executeQueryPlan>[2];

/** One document and operation name, planned once: what every request with the same text shares. */
interface PreparedOperation {
  operationContext: OperationContext;
  queryPlan: QueryPlan;
  /** Set when the plan is one root fetch: it runs without the generic plan executor. */
  single: { fetch: FetchNode; operation: Operation } | undefined;
}

/** Plans kept per supergraph (the oldest goes first): the apps send a few hundred operations at most. */
const MAX_PREPARED = 2_000;

/** With this header, outside production, @apollo/gateway answers the query plan too: its own executor does. */
const QUERY_PLAN_HEADER = "apollo-query-plan-experimental";

/** A root field that graphql-js answers from the schema (`__schema`, `__type`), through fragments too. */
function selectsIntrospection(selectionSet: SelectionSetNode, context: OperationContext): boolean {
  return selectionSet.selections.some((selection) => {
    if (selection.kind === Kind.FIELD) {
      return selection.name.value === "__schema" || selection.name.value === "__type";
    }
    if (selection.kind === Kind.INLINE_FRAGMENT) return selectsIntrospection(selection.selectionSet, context);
    const fragment = context.fragments[selection.name.value];
    return fragment !== undefined && selectsIntrospection(fragment.selectionSet, context);
  });
}

/** A subgraph's error as @apollo/gateway reports it: its code kept (else DOWNSTREAM_SERVICE_ERROR), the subgraph named. */
function downstreamServiceError(original: GraphQLFormattedError, serviceName: string): GraphQLError {
  const message = original.message || `Error while fetching subquery from service "${serviceName}"`;
  const options = {
    originalError: original as Error,
    path: original.path ? [...original.path] : null,
    extensions: { ...original.extensions, serviceName },
  };
  const codeDef = errorCodeDef(original);
  if (!codeDef && original.extensions?.code) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}

/**
 * @apollo/gateway's executor for queries and mutations, with less work per request: the operation
 * context and the plan (and, for a plan of one root fetch, the federation `Operation` that shapes
 * the answer) are built once per document and operation name instead of per request. A plan of one
 * root fetch (no `@requires`, no rewrites, no introspection beside it) is sent and its answer shaped
 * by Apollo's own `computeResponse`, as `executeQueryPlan` does; every other plan runs through
 * `executeQueryPlan`. Same planner, same supergraph, same answers. One per loaded supergraph.
 */
export class QueryExecutor {
  private readonly supergraphGraphQLSchema: GraphQLSchema;
  private readonly apiSchema: Schema;
  private readonly queryPlanner: QueryPlanner;
  private readonly prepared = new Map<string, PreparedOperation>();
  private readonly counts = { planned: 0, singleFetchRuns: 0, planRuns: 0 };

  constructor(
    supergraphSdl: string,
    /** The API schema Apollo Server validates against (the gateway's, with its extensions). */
    private readonly apiGraphQLSchema: GraphQLSchema,
    /** The gateway's data sources by subgraph name. */
    private readonly serviceMap: ServiceMap,
  ) {
    const supergraph = Supergraph.build(supergraphSdl);
    this.apiSchema = supergraph.apiSchema();
    this.supergraphGraphQLSchema = supergraph.schema.toGraphQLJSSchema();
    this.queryPlanner = new QueryPlanner(supergraph);
  }

  /** Apollo's executor's steps and answers: operation context, variables checked, plan, execution. */
  async execute(requestContext: RequestContext): Promise<ExecutionResult> {
    const { request, document, queryHash } = requestContext;
    const operationName = request.operationName;
    const key = operationName === undefined ? queryHash : `${queryHash}\0${operationName}`;
    let prepared = this.prepared.get(key);
    const operationContext =
      prepared?.operationContext ??
      buildOperationContext({
        schema: this.apiGraphQLSchema,
        operationDocument: document,
        ...(operationName === undefined ? {} : { operationName }),
      });
    const definitions = operationContext.operation.variableDefinitions;
    if (definitions && definitions.length > 0) {
      const { errors } = getVariableValues(operationContext.schema, definitions, request.variables ?? {});
      if (errors) return { errors };
    }
    if (!prepared) {
      prepared = this.prepare(document, operationName, operationContext);
      if (this.prepared.size >= MAX_PREPARED) {
        this.prepared.delete(this.prepared.keys().next().value as string);
      }
      this.prepared.set(key, prepared);
    }
    if (prepared.single) {
      this.counts.singleFetchRuns += 1;
      return this.executeSingleFetch(requestContext, prepared.single);
    }
    this.counts.planRuns += 1;
    // executeQueryPlan types its request context as Apollo Server 2's; at run time it is this one.
    return (await executeQueryPlan(
      prepared.queryPlan,
      this.serviceMap,
      requestContext as unknown as LegacyRequestContext,
      operationContext,
      this.supergraphGraphQLSchema,
      this.apiSchema,
    )) as ExecutionResult;
  }

  /** Documents planned, and requests run as one fetch or through executeQueryPlan. */
  stats(): { planned: number; singleFetchRuns: number; planRuns: number } {
    return { ...this.counts };
  }

  private prepare(
    document: DocumentNode,
    operationName: string | undefined,
    operationContext: OperationContext,
  ): PreparedOperation {
    this.counts.planned += 1;
    const queryPlan = this.queryPlanner.buildQueryPlan(
      operationFromDocument(this.apiSchema, document, operationName === undefined ? {} : { operationName }),
      {
        recursiveSelectionsLimitDisabled:
          process.env.APOLLO_DISABLE_SECURITY_RECURSIVE_SELECTIONS_CHECK === "true",
        nonLocalSelectionsLimitDisabled:
          process.env.APOLLO_DISABLE_SECURITY_NON_LOCAL_SELECTIONS_CHECK === "true",
      },
    );
    const node = queryPlan.node;
    const single =
      node?.kind === "Fetch" &&
      !node.requires &&
      !node.inputRewrites?.length &&
      !node.outputRewrites?.length &&
      !node.contextRewrites?.length &&
      !selectsIntrospection(operationContext.operation.selectionSet, operationContext)
        ? {
            fetch: node,
            // What executeQueryPlan shapes the answer with: the operation and its fragments, unvalidated.
            operation: operationFromDocument(
              this.apiSchema,
              {
                kind: Kind.DOCUMENT,
                definitions: [operationContext.operation, ...Object.values(operationContext.fragments)],
              },
              { validate: false },
            ),
          }
        : undefined;
    return { operationContext, queryPlan, single };
  }

  /** executeQueryPlan's steps for a plan of one root fetch, in its order and with its answers. */
  private async executeSingleFetch(
    requestContext: RequestContext,
    { fetch, operation }: NonNullable<PreparedOperation["single"]>,
  ): Promise<ExecutionResult> {
    const provided = requestContext.request.variables;
    const errors: GraphQLError[] = [];
    const data = Object.create(null) as Record<string, unknown>;
    try {
      const service = this.serviceMap[fetch.serviceName];
      if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
      const variables = Object.create(null) as Record<string, unknown>;
      for (const name of fetch.variableUsages ?? []) {
        if (provided && Object.hasOwn(provided, name) && provided[name] !== undefined) {
          variables[name] = provided[name];
        }
      }
      const response = await service.process({
        kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
        request: {
          query: fetch.operation,
          variables,
          ...(fetch.operationName === undefined ? {} : { operationName: fetch.operationName }),
        },
        incomingRequestContext: requestContext as unknown as LegacyRequestContext,
        context: requestContext.context,
        ...(fetch.operationDocumentNode ? { document: fetch.operationDocumentNode } : {}),
        pathInIncomingRequest: [],
      });
      if (response.errors) {
        errors.push(...response.errors.map((error) => downstreamServiceError(error, fetch.serviceName)));
        if (!response.extensions?.ftv1) {
          const paths = response.errors.map((error) => ({ subgraph: fetch.serviceName, path: error.path }));
          const { metrics } = requestContext;
          if (metrics.nonFtv1ErrorPaths) metrics.nonFtv1ErrorPaths.push(...paths);
          else metrics.nonFtv1ErrorPaths = paths;
        }
      }
      const received = response.data;
      if (received) {
        for (const field of Object.keys(received)) {
          if (received[field] !== undefined) data[field] = received[field];
        }
      }
    } catch (error) {
      errors.push(error as GraphQLError);
    }
    let shaped: ReturnType<typeof computeResponse>;
    try {
      shaped = computeResponse({
        operation,
        ...(provided === undefined ? {} : { variables: provided }),
        input: data,
        introspectionHandling: () => {
          throw new Error("a plan of one fetch has no introspection field");
        },
      });
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [error] };
      if (error instanceof Error)
        return { errors: [new GraphQLError(error.message, { originalError: error })] };
      requestContext.logger.error(`Unexpected error during query plan execution: ${String(error)}`);
      return { errors: [new GraphQLError("Unexpected error during query plan execution")] };
    }
    if (errors.length === 0 && shaped.errors.length > 0) {
      return { extensions: { valueCompletion: shaped.errors }, data: shaped.data ?? null };
    }
    return errors.length === 0 ? { data: shaped.data ?? null } : { errors, data: shaped.data ?? null };
  }
}

/**
 * The gateway as Apollo Server sees it, executing with a QueryExecutor built on every supergraph
 * it loads; Apollo's own executor only for the query plan header (outside production).
 */
export function withQueryExecutor(
  gateway: GatewayInterface,
  serviceMap: ServiceMap,
): GatewayInterface & { executorStats(): ReturnType<QueryExecutor["stats"]> | undefined } {
  let current: QueryExecutor | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
    current = new QueryExecutor(coreSupergraphSdl, apiSchema, serviceMap);
  });
  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
    executorStats: () => current?.stats(),
    load: async (options) => {
      const loaded = await gateway.load(options);
      const fallback = loaded.executor;
      if (!fallback) return loaded;
      const executor: GatewayExecutor = (requestContext) => {
        if (!current || requestContext.request.http?.headers.get(QUERY_PLAN_HEADER)) {
          return fallback(requestContext);
        }
        return current.execute(requestContext);
      };
      return { ...loaded, executor };
    },
  };
}

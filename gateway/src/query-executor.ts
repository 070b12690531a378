import { buildOperationContext, executeQueryPlan, type ServiceMap } from "@apollo/gateway";
import { computeResponse } from "@apollo/gateway/dist/resultShaping";
import { operationFromDocument, Supergraph, type Operation, type Schema } from "@apollo/federation-internals";
import { QueryPlanner, type PlanNode, type QueryPlan } from "@apollo/query-planner";
import type { GatewayInterface } from "@hv/kit";
import { getOperationAST, GraphQLError, Kind, type DocumentNode, type GraphQLSchema } from "graphql";
import { getVariableValues } from "graphql/execution/values";
import { takeHeld } from "./direct-operations";
import { PlanWalker, unsupportedNode, type RequestContext } from "./plan-walker";
import { emptyRecord } from "./record";
import { NotCompiled, ResultShaper, Unshaped, type Shaped } from "./result-shaper";

type OperationContext = ReturnType<typeof buildOperationContext>;
type GatewayExecutor = NonNullable<Awaited<ReturnType<GatewayInterface["load"]>>["executor"]>;
type ExecutionResult = Awaited<ReturnType<GatewayExecutor>>;
type LegacyRequestContext = Parameters<typeof executeQueryPlan>[2];

/** One document and operation name, planned once: what every request with the same text shares. */
interface PreparedOperation {
  operationContext: OperationContext;
  queryPlan: QueryPlan;
  /** Set when our plan walker and compiled shaper run it; else Apollo's `executeQueryPlan` does. */
  compiled: { node: PlanNode | undefined; operation: Operation; shaper: ResultShaper } | undefined;
}

/** Plans kept per supergraph (the oldest goes first): the apps send a few hundred operations at most. */
const MAX_PREPARED = 2_000;

/** With this header, outside production, @apollo/gateway answers the query plan too: its own executor does. */
const QUERY_PLAN_HEADER = "apollo-query-plan-experimental";

/** What ran: documents planned, requests by our walker or by executeQueryPlan, and shapings left to computeResponse. */
export interface ExecutorStats {
  planned: number;
  compiledRuns: number;
  apolloRuns: number;
  apolloShapings: number;
}

/** The key of a request's prepared operation: its text's `queryHash` and the operation name sent. */
function preparedKey(queryHash: string, operationName: string | undefined): string {
  return operationName === undefined ? queryHash : `${queryHash}\0${operationName}`;
}

/**
 * @apollo/gateway's executor for queries and mutations, with less work per request: the operation
 * context, the plan, the federation `Operation` and a result shaper compiled from it are built
 * once per document and operation name. Plans run through `PlanWalker` (executeQueryPlan's walk
 * without traces and spans) and answers are shaped by `ResultShaper` (computeResponse compiled);
 * a subgraph answer the shaper does not take is shaped by `computeResponse` itself. Plans with
 * introspection, @defer or subscriptions, and requests that capture traces, run through
 * `executeQueryPlan`. Same planner, same supergraph, same answers. One per loaded supergraph.
 */
export class QueryExecutor {
  private readonly supergraphGraphQLSchema: GraphQLSchema;
  private readonly apiSchema: Schema;
  private readonly queryPlanner: QueryPlanner;
  private readonly walker: PlanWalker;
  private readonly prepared = new Map<string, PreparedOperation>();
  private readonly counts: ExecutorStats = { planned: 0, compiledRuns: 0, apolloRuns: 0, apolloShapings: 0 };

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
    this.walker = new PlanWalker(serviceMap, this.supergraphGraphQLSchema);
  }

  /** Apollo's executor's steps and answers: operation context, variables checked, plan, execution. */
  async execute(requestContext: RequestContext): Promise<ExecutionResult> {
    const { request, document, queryHash } = requestContext;
    const operationName = request.operationName;
    const key = preparedKey(queryHash, operationName);
    let prepared = this.prepared.get(key);
    // No operation to run (several and no name, or an unknown name): Apollo answers this one error
    // as OPERATION_RESOLUTION_FAILURE (400).
    if (!prepared && !getOperationAST(document, operationName)) {
      return { errors: [new GraphQLError(unresolvedOperation(operationName))] };
    }
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
    if (prepared.compiled && !requestContext.metrics.captureTraces) {
      this.counts.compiledRuns += 1;
      return this.executeCompiled(requestContext, prepared.compiled);
    }
    this.counts.apolloRuns += 1;
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

  /** The API schema Apollo Server validates operations against. */
  get validationSchema(): GraphQLSchema {
    return this.apiGraphQLSchema;
  }

  /** Whether a request of this text (its `queryHash`) and operation name runs on our walker: planned and compiled. */
  runsCompiled(queryHash: string, operationName: string | undefined): boolean {
    return this.prepared.get(preparedKey(queryHash, operationName))?.compiled !== undefined;
  }

  stats(): ExecutorStats {
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
    return { operationContext, queryPlan, compiled: this.compile(queryPlan, operationContext) };
  }

  /** The walker and a shaper for this plan, or undefined for what executeQueryPlan runs. */
  private compile(queryPlan: QueryPlan, operationContext: OperationContext): PreparedOperation["compiled"] {
    const node = queryPlan.node;
    if (node?.kind === "Subscription" || unsupportedNode(node)) return undefined;
    const shaping = compileShaping(this.apiSchema, operationContext);
    return shaping && { node, ...shaping };
  }

  /** executeQueryPlan's steps and answers, with PlanWalker and the compiled shaper. */
  private async executeCompiled(
    requestContext: RequestContext,
    { node, operation, shaper }: NonNullable<PreparedOperation["compiled"]>,
  ): Promise<ExecutionResult> {
    const provided = requestContext.request.variables;
    const data = emptyRecord();
    const errors = node ? await this.walker.run(node, operation, requestContext, data) : [];
    return completeCompiled({ operation, shaper }, data, provided, errors, {
      logger: requestContext.logger,
      onApolloShaping: () => (this.counts.apolloShapings += 1),
    });
  }
}

/** An operation as executeQueryPlan shapes answers with it, and its compiled shaper. */
export interface CompiledShaping {
  operation: Operation;
  shaper: ResultShaper;
}

/**
 * The federation `Operation` executeQueryPlan builds (the operation and its fragments,
 * unvalidated) and its ResultShaper; undefined for what is left to Apollo (introspection, an
 * operation executeQueryPlan answers with its own error).
 */
export function compileShaping(
  apiSchema: Schema,
  operationContext: Pick<OperationContext, "operation" | "fragments">,
): CompiledShaping | undefined {
  try {
    const operation = operationFromDocument(
      apiSchema,
      {
        kind: Kind.DOCUMENT,
        definitions: [operationContext.operation, ...Object.values(operationContext.fragments)],
      },
      { validate: false },
    );
    return { operation, shaper: new ResultShaper(operation) };
  } catch (error) {
    if (error instanceof NotCompiled || error instanceof GraphQLError) return undefined;
    throw error;
  }
}

/**
 * executeQueryPlan's last step on the merged answers `data`: shaped by the compiled shaper
 * (by `computeResponse` where it does not take the answer), the fetches' `errors` reported, else
 * the shaping's as `valueCompletion`; a shaping that throws answers its error alone.
 */
export function completeCompiled(
  { operation, shaper }: CompiledShaping,
  data: Record<string, unknown>,
  provided: Record<string, unknown> | undefined,
  errors: GraphQLError[],
  report: { logger: { error(message: string): unknown }; onApolloShaping(): void },
): ExecutionResult {
  let shaped: Shaped | ReturnType<typeof computeResponse>;
  try {
    try {
      shaped = shaper.shape(data, provided);
    } catch (error) {
      if (!(error instanceof Unshaped)) throw error;
      report.onApolloShaping();
      shaped = computeResponse({
        operation,
        ...(provided === undefined ? {} : { variables: provided }),
        input: data,
        introspectionHandling: () => {
          throw new Error("a compiled operation has no introspection field");
        },
      });
    }
  } catch (error) {
    if (error instanceof GraphQLError) return { errors: [error] };
    if (error instanceof Error)
      return { errors: [new GraphQLError(error.message, { originalError: error })] };
    report.logger.error(`Unexpected error during query plan execution: ${String(error)}`);
    return { errors: [new GraphQLError("Unexpected error during query plan execution")] };
  }
  if (errors.length === 0 && shaped.errors.length > 0) {
    return { extensions: { valueCompletion: shaped.errors }, data: shaped.data ?? null };
  }
  return errors.length === 0 ? { data: shaped.data ?? null } : { errors, data: shaped.data ?? null };
}

/**
 * The gateway as Apollo Server sees it, executing with a QueryExecutor built on every supergraph
 * it loads; Apollo's own executor only for the query plan header (outside production).
 */
export function withQueryExecutor(
  gateway: GatewayInterface,
  serviceMap: ServiceMap,
): GatewayInterface & { executorStats(): ExecutorStats | undefined; executor(): QueryExecutor | undefined } {
  let current: QueryExecutor | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
    current = new QueryExecutor(coreSupergraphSdl, apiSchema, serviceMap);
  });
  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
    executorStats: () => current?.stats(),
    executor: () => current,
    load: async (options) => {
      const loaded = await gateway.load(options);
      const fallback = loaded.executor;
      if (!fallback) return loaded;
      const executor: GatewayExecutor = async (requestContext) => {
        // What a direct run (gateway/src/direct-operations.ts) left for Apollo Server to answer.
        const held = takeHeld(requestContext.context);
        if (held) {
          for (const hint of held.hints) requestContext.overallCachePolicy.restrict(hint);
          if (held.nonFtv1ErrorPaths !== undefined) {
            const paths = held.nonFtv1ErrorPaths as NonNullable<
              typeof requestContext.metrics.nonFtv1ErrorPaths
            >;
            requestContext.metrics.nonFtv1ErrorPaths = [
              ...(requestContext.metrics.nonFtv1ErrorPaths ?? []),
              ...paths,
            ];
          }
          if ("threw" in held) throw held.threw;
          return held.result;
        }
        if (!current || requestContext.request.http?.headers.get(QUERY_PLAN_HEADER)) {
          return fallback(requestContext);
        }
        return current.execute(requestContext);
      };
      return { ...loaded, executor };
    },
  };
}

/** graphql-js's words for a document without the operation a request names (or names none of several). */
function unresolvedOperation(operationName: string | undefined): string {
  return operationName === undefined
    ? "Must provide operation name if query contains multiple operations."
    : `Unknown operation named "${operationName}".`;
}

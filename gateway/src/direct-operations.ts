import { createHash } from "node:crypto";
import type http from "node:http";
import type { DocumentNode, OperationDefinitionNode, ValidationRule } from "graphql";
import {
  knownOperationRules,
  MAX_KNOWN_TEXT,
  operationTextKey,
  queryCacheControl,
  restrictHint,
  type CacheHint,
  type DirectAnswer,
  type DirectOperations,
  type DirectRequest,
  validOperation,
} from "@hv/kit";
import type { RequestContext } from "./plan-walker";
import type { QueryExecutor } from "./query-executor";
import type { GatewayContext } from "./subgraph-data-source";

/** A text (and operation name) parsed and validated once: what Apollo Server would run for it. */
export interface KnownOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** Apollo Server's `queryHash`: the SHA-256 of the text, hex. */
  queryHash: string;
  operationName: string | null;
  type: "query" | "mutation";
}

type ExecutionResult = Awaited<ReturnType<QueryExecutor["execute"]>>;

/** What a direct run left for Apollo's executor to answer (`takeHeld`), with the cache hints its fetches gave. */
type Held = ({ result: ExecutionResult } | { threw: unknown }) & {
  hints: CacheHint[];
  nonFtv1ErrorPaths: unknown[] | undefined;
};

const HELD = Symbol("heldDirectRun");

/** Leaves `value` on the context, enumerable: Apollo Server runs the executor on a copy of it. */
function hold(context: object, value: Held): void {
  Object.defineProperty(context, HELD, { value, enumerable: true, configurable: true });
}

/** The result (or error) a direct run left under `context`, once: Apollo's executor answers it instead of running. */
export function takeHeld(context: object): Held | undefined {
  const found = (context as { [HELD]?: Held })[HELD];
  if (found !== undefined) delete (context as { [HELD]?: Held })[HELD];
  return found;
}

/** Texts kept per supergraph (the first kept goes first): the apps send a few hundred at most. */
const MAX_TEXTS = 1_000;
/** With this header @apollo/gateway answers the query plan too (outside production): Apollo's executor does. */
const QUERY_PLAN_HEADER = "apollo-query-plan-experimental";

/** How Apollo Server's persisted-query cache reads and stores texts by hash (safelist or APQ). */
export interface PersistedTexts {
  /**
   * The text Apollo Server would run for `hash`, sent beside `query` or alone (undefined), or
   * undefined where Apollo must answer (unknown hash, a text that does not match it, the cache
   * unreadable); `register`: Apollo would store the text once validated; `reread`: Apollo would
   * read the cache again for a result left to it (and may then find nothing).
   */
  resolve(
    hash: string,
    query: string | undefined,
  ): Promise<{ query: string; register: boolean; reread: boolean } | undefined>;
  /** Stores `query` under `hash` as Apollo Server registers it (nothing waits for it). */
  register(hash: string, query: string): void;
}

export interface DirectOperationsOptions {
  /** The executor of the loaded supergraph (undefined before it loads). */
  executor(): QueryExecutor | undefined;
  /** Apollo Server's extra validation rules (the query limits) and parser token limit. */
  validationRules: readonly ValidationRule[];
  maxTokens: number;
  /**
   * Whether a mutation's sensitive budgets need nothing beyond what its admission did (Apollo's
   * budgets plugin would pass it without a Redis command); false: Apollo Server runs it.
   */
  mutationSettled(
    context: GatewayContext,
    known: KnownOperation,
    request: DirectRequest & { query: string },
  ): boolean;
  /** Apollo Server's logger (the request context's `logger`). */
  logger: RequestContext["logger"];
  /** Requests naming a persisted hash; without it they are Apollo Server's to answer. */
  persisted?: PersistedTexts;
}

/**
 * The gateway's operations answered without Apollo Server's request pipeline: a text parsed and
 * validated once (graphql-js's rules, no schema introspection, the query limits), a query or a
 * mutation whose plan our executor already runs compiled, whose budgets need nothing more, run by
 * the same `QueryExecutor` and answered only when the result has data and no errors. A persisted
 * hash is resolved as Apollo's cache would (`persisted`). Everything else (and every result with
 * errors, held for Apollo's executor) is Apollo Server's to answer.
 */
export function directOperations(
  options: DirectOperationsOptions,
): DirectOperations<GatewayContext> & { answered(): number } {
  const rules = knownOperationRules(options.validationRules);
  let texts = new Map<string, KnownOperation | false>();
  let textsOf: QueryExecutor | undefined;

  const learn = (
    executor: QueryExecutor,
    text: string,
    operationName: string | undefined,
  ): KnownOperation | false => {
    const valid = validOperation(executor.validationSchema, rules, text, operationName, options.maxTokens);
    if (!valid) return false;
    const { document, operation } = valid;
    if (operation.operation !== "query" && operation.operation !== "mutation") return false;
    return {
      document,
      operation,
      queryHash: createHash("sha256").update(text).digest("hex"),
      operationName: operation.name?.value ?? null,
      type: operation.operation,
    };
  };

  const knownOf = (
    executor: QueryExecutor,
    text: string,
    operationName: string | undefined,
  ): KnownOperation | undefined => {
    if (text.length > MAX_KNOWN_TEXT) return undefined;
    if (textsOf !== executor) {
      texts = new Map();
      textsOf = executor;
    }
    const key = operationTextKey(text, operationName);
    let known = texts.get(key);
    if (known === undefined) {
      known = learn(executor, text, operationName);
      if (texts.size >= MAX_TEXTS) texts.delete(texts.keys().next().value as string);
      texts.set(key, known);
    }
    return known === false ? undefined : known;
  };

  let answered = 0;
  return {
    answered: () => answered,
    async run(
      request: DirectRequest,
      contextValue: GatewayContext,
      headers: http.IncomingHttpHeaders,
    ): Promise<DirectAnswer | undefined> {
      if (headers[QUERY_PLAN_HEADER] !== undefined) return undefined;
      const executor = options.executor();
      if (!executor) return undefined;
      let text = request.query;
      let register = false;
      let reread = false;
      if (request.persistedHash !== undefined) {
        const resolved = await options.persisted?.resolve(request.persistedHash, text);
        if (resolved === undefined) return undefined;
        ({ query: text, register, reread } = resolved);
      }
      if (text === undefined) return undefined;
      const known = knownOf(executor, text, request.operationName);
      if (!known || !executor.runsCompiled(known.queryHash, request.operationName)) return undefined;
      if (known.type === "mutation") {
        // A mutation whose errors Apollo would answer after reading the cache again could run twice.
        if (reread) return undefined;
        // Only a query reaches a subgraph before its admission answered.
        if (contextValue.admission !== undefined && (await contextValue.admission) !== "admitted")
          return undefined;
        if (!options.mutationSettled(contextValue, known, { ...request, query: text })) return undefined;
      }
      const collected: CacheHint = {};
      const hints: CacheHint[] = [];
      const metrics: { captureTraces: boolean; nonFtv1ErrorPaths?: unknown[] } = { captureTraces: false };
      const requestContext = {
        request: { query: text, variables: request.variables, operationName: request.operationName },
        document: known.document,
        source: text,
        queryHash: known.queryHash,
        operation: known.operation,
        operationName: known.operationName,
        schema: executor.validationSchema,
        context: contextValue,
        logger: options.logger,
        metrics,
        overallCachePolicy: {
          restrict(hint: CacheHint) {
            hints.push(hint);
            restrictHint(collected, hint);
          },
        },
      } as unknown as RequestContext;
      let result: ExecutionResult;
      try {
        result = await executor.execute(requestContext);
      } catch (error) {
        hold(contextValue, { threw: error, hints, nonFtv1ErrorPaths: metrics.nonFtv1ErrorPaths });
        return undefined;
      }
      if (result.errors !== undefined || result.extensions !== undefined || !("data" in result)) {
        hold(contextValue, { result, hints, nonFtv1ErrorPaths: metrics.nonFtv1ErrorPaths });
        return undefined;
      }
      if (register && request.persistedHash !== undefined)
        options.persisted?.register(request.persistedHash, text);
      answered += 1;
      return {
        result: { data: (result.data ?? null) as Record<string, unknown> | null },
        cacheControl:
          known.type === "query" ? queryCacheControl(collected, contextValue.viewer !== null) : "no-store",
        operationName: known.operationName,
        operationType: known.type,
      };
    },
  };
}

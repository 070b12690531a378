import type { GatewayExecutionResult, GatewayInterface } from "@apollo/server-gateway-interface";
import {
  execute,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  printSchema,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
} from "graphql";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";

/** A document's compiled operations, by operation name ("" for the only, unnamed one). */
type Compiled = Map<string, CompiledQuery | ExecutionResult>;

/**
 * graphql-jit's error as graphql-js makes it: graphql-jit's own kind has no `extensions` object
 * when its cause had none (Apollo Server reads `extensions.code` and would answer a formatting
 * failure without the error's path) and no AST nodes (its locations are kept as they are).
 */
export function asGraphQLError(error: GraphQLError): GraphQLError {
  const copy = new GraphQLError(error.message, {
    ...(error.path ? { path: error.path } : {}),
    ...(error.originalError ? { originalError: error.originalError } : {}),
    ...(error.extensions ? { extensions: error.extensions } : {}),
  });
  if (error.locations) Object.assign(copy, { locations: error.locations });
  return copy;
}

/**
 * A mutation of one root field (no fragments at the root). Mutations of several run with
 * graphql-js, which stops at the first error that nulls the root; graphql-jit runs the rest,
 * and the login budget (one attempt per request, however aliased) relies on stopping.
 */
export function singleRootField(operation: OperationDefinitionNode): boolean {
  const selections = operation.selectionSet.selections;
  return selections.length === 1 && selections[0]!.kind === Kind.FIELD;
}

let compilations = 0;
/** How many operations this process has compiled (tests: the compiled path ran). */
export function compiledOperations(): number {
  return compilations;
}

/** graphql-jit's `compileQuery`, counted in `compiledOperations` when it compiles. */
export function compileCounted(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | undefined,
): CompiledQuery | ExecutionResult {
  const entry = compileQuery(schema, document, operationName);
  if (isCompiledQuery(entry)) compilations += 1;
  return entry;
}

/** What the executor answers for a request whose operation already ran (kit/src/known-queries.ts). */
type HeldResult = ExecutionResult | "graphql-js";
/** A property of the context: Apollo Server runs each request with a shallow copy of it. */
const HELD_RESULT = Symbol("heldResult");

/**
 * Tells the executor what to answer for the request of `context`: its result, already run, or
 * "graphql-js" (graphql-jit refused its variables: run it with graphql-js, not compiled again).
 */
export function holdResult(context: object, held: HeldResult): void {
  Object.defineProperty(context, HELD_RESULT, { value: held, enumerable: true, configurable: true });
}

/**
 * Runs `schema`'s queries and mutations with graphql-jit: each validated document (Apollo Server
 * keeps one parsed document per query text, so the same object comes back for the same text) is
 * compiled on its first run into a function that executes it, and that function is kept as long
 * as Apollo keeps the document. Apollo Server takes it as a gateway (its documented way to hand
 * execution to something else): parsing, validation, plugins, errors and HTTP stay Apollo's.
 * Subscriptions run on graphql-ws with graphql-js; one sent over HTTP runs with graphql-js here too,
 * as it did before. So does a request whose variables graphql-jit refuses (nothing has run then),
 * so that its errors are graphql-js's own (message, `BAD_USER_INPUT`, HTTP 400). A result held for
 * the request's context (kit/src/known-queries.ts: a known query already ran) is answered as it is.
 */
export function jitExecutor(schema: GraphQLSchema): GatewayInterface {
  const compiledByDocument = new WeakMap<DocumentNode, Compiled>();
  const compiled = (document: DocumentNode, operationName: string | undefined) => {
    let byName = compiledByDocument.get(document);
    if (!byName) {
      byName = new Map();
      compiledByDocument.set(document, byName);
    }
    const name = operationName ?? "";
    let entry = byName.get(name);
    if (!entry) {
      entry = compileCounted(schema, document, operationName);
      byName.set(name, entry);
    }
    return entry;
  };
  return {
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => undefined;
    },
    async load() {
      return {
        executor: async ({ document, operation, request, context }): Promise<GatewayExecutionResult> => {
          const withGraphqlJs = async () =>
            (await execute({
              schema,
              document,
              contextValue: context,
              variableValues: request.variables ?? {},
              operationName: request.operationName ?? null,
            })) as GatewayExecutionResult;
          const held = (context as { [HELD_RESULT]?: HeldResult })[HELD_RESULT];
          if (held !== undefined)
            return held === "graphql-js" ? withGraphqlJs() : (held as GatewayExecutionResult);
          // No operation resolved (several and no name, an unknown name): graphql-js answers it.
          if (!(operation as typeof operation | undefined) || operation.operation === "subscription")
            return withGraphqlJs();
          if (operation.operation === "mutation" && !singleRootField(operation)) return withGraphqlJs();
          const entry = compiled(document, request.operationName);
          if (!isCompiledQuery(entry)) return withGraphqlJs();
          const result = await entry.query(undefined, context, request.variables ?? {});
          // No `data` at all: refused before execution (its variables), so graphql-js's errors instead.
          if (!("data" in result)) return withGraphqlJs();
          if (result.errors)
            return { ...result, errors: result.errors.map(asGraphQLError) } as GatewayExecutionResult;
          return result as GatewayExecutionResult;
        },
      };
    },
    async stop() {},
  };
}

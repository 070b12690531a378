import { createHash } from "node:crypto";
import { buildOperationContext } from "@apollo/gateway";
import { operationFromDocument, Supergraph, type Schema } from "@apollo/federation-internals";
import { QueryPlanner, type FetchNode, type PlanNode } from "@apollo/query-planner";
import { ErrorCode } from "@hv/kit";
import {
  getOperationAST,
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  type ASTVisitor,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationContext,
  type VariableDefinitionNode,
} from "graphql";
import { getVariableValues } from "graphql/execution/values";

/** What a client may send as one subscription. Hostile input stops here, before any planning. */
export const SUBSCRIPTION_LIMITS = {
  /** Characters of the query text. */
  maxQueryLength: 16_384,
  /** Lexer tokens (graphql-js stops parsing beyond this). */
  maxTokens: 2_000,
  /** Nesting of selection sets, fragments included. */
  maxDepth: 12,
};

type OperationContext = ReturnType<typeof buildOperationContext>;

/** A client's subscription, validated and planned: what the hub needs to run it. */
export interface PlannedSubscription {
  /** Stable key of (document, operation name): one plan per key. */
  planKey: string;
  document: DocumentNode;
  operationName: string | undefined;
  operationContext: OperationContext;
  /** The subscription fetch to the owning subgraph. */
  primary: FetchNode;
  /** What resolves the other subgraphs' fields of each event, if anything. */
  rest: PlanNode | undefined;
  /** The client's variables, coerced by the API schema. */
  variables: Record<string, unknown>;
  /** The supergraph it was planned on: events run on these pieces even after a reload. */
  supergraph: { version: string; pieces: SupergraphPieces };
}

/** The supergraph pieces executeQueryPlan needs, built from the gateway's current supergraph SDL. */
export interface SupergraphPieces {
  apiSchema: Schema;
  apiGraphQLSchema: GraphQLSchema;
  supergraphGraphQLSchema: GraphQLSchema;
}

/** What every subscription of one document shares: validated once, planned once. */
interface PreparedDocument {
  document: DocumentNode;
  variableDefinitions: readonly VariableDefinitionNode[];
  operationContext: OperationContext;
  primary: FetchNode;
  rest: PlanNode | undefined;
}

function error(code: string, message: string, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extra } });
}

/** graphql-js has no depth rule: selection sets (fragments expanded, cycles already refused) nested at most `max` deep. */
function maxDepthRule(max: number) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map(
      context
        .getDocument()
        .definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d] as const),
    );
    const depthOf = (
      node: { selectionSet?: { selections: readonly unknown[] } | undefined },
      seen: Set<string>,
    ): number => {
      if (!node.selectionSet) return 0;
      let deepest = 0;
      for (const raw of node.selectionSet.selections) {
        const selection = raw as {
          kind: Kind;
          name?: { value: string };
          selectionSet?: { selections: readonly unknown[] };
        };
        if (selection.kind === Kind.FRAGMENT_SPREAD) {
          const name = selection.name?.value ?? "";
          const fragment = fragments.get(name);
          if (!fragment || seen.has(name)) continue;
          deepest = Math.max(deepest, depthOf(fragment, new Set([...seen, name])) - 1);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          deepest = Math.max(deepest, depthOf(selection, seen) - 1);
        } else {
          deepest = Math.max(deepest, depthOf(selection, seen));
        }
      }
      return deepest + 1;
    };
    return {
      OperationDefinition(node) {
        const depth = depthOf(node, new Set());
        if (depth > max) {
          context.reportError(
            new GraphQLError(`The operation is nested ${depth} levels deep; at most ${max} are allowed`, {
              nodes: [node],
            }),
          );
        }
      },
    };
  };
}

/**
 * Plans subscriptions with Apollo's query planner on the gateway's supergraph: `primary` (a
 * FetchNode against the subgraph that owns the subscription field) and `rest` (the remaining plan,
 * run once per event). Built again whenever the gateway loads a new supergraph.
 */
export class SubscriptionPlanner {
  readonly pieces: SupergraphPieces;
  /** Changes with the supergraph: feeds and shared fetches of different versions never mix. */
  readonly version: string;
  private readonly queryPlanner: QueryPlanner;
  private readonly prepared = new Map<string, PreparedDocument>();
  private readonly rules = [...specifiedRules, maxDepthRule(SUBSCRIPTION_LIMITS.maxDepth)];

  constructor(supergraphSdl: string) {
    this.version = createHash("sha256").update(supergraphSdl).digest("base64url").slice(0, 16);
    const supergraph = Supergraph.build(supergraphSdl);
    const apiSchema = supergraph.apiSchema();
    this.pieces = {
      apiSchema,
      apiGraphQLSchema: apiSchema.toGraphQLJSSchema(),
      supergraphGraphQLSchema: supergraph.schema.toGraphQLJSSchema(),
    };
    this.queryPlanner = new QueryPlanner(supergraph);
  }

  /**
   * Parses, validates and plans one client subscription; returns the client-facing errors instead
   * when anything is wrong (each with a catalogued `extensions.code`).
   */
  prepare(payload: {
    query?: unknown;
    operationName?: unknown;
    variables?: unknown;
  }): PlannedSubscription | GraphQLError[] {
    const { query, operationName, variables } = payload;
    if (typeof query !== "string" || query.trim() === "") {
      return [error(ErrorCode.BAD_USER_INPUT, "Send the subscription's text as `query`", { field: "query" })];
    }
    if (query.length > SUBSCRIPTION_LIMITS.maxQueryLength) {
      return [
        error(
          ErrorCode.BAD_USER_INPUT,
          `The query is ${query.length} characters long; at most ${SUBSCRIPTION_LIMITS.maxQueryLength} are allowed`,
          {
            field: "query",
          },
        ),
      ];
    }
    if (operationName !== undefined && operationName !== null && typeof operationName !== "string") {
      return [
        error(ErrorCode.BAD_USER_INPUT, "`operationName` must be a string", { field: "operationName" }),
      ];
    }
    if (
      variables !== undefined &&
      variables !== null &&
      (typeof variables !== "object" || Array.isArray(variables))
    ) {
      return [error(ErrorCode.BAD_USER_INPUT, "`variables` must be an object", { field: "variables" })];
    }
    const name = typeof operationName === "string" && operationName !== "" ? operationName : undefined;
    const planKey = createHash("sha256")
      .update(query)
      .update("\0")
      .update(name ?? "")
      .digest("base64url");
    // The apps send a handful of distinct documents: each is parsed, validated and planned once,
    // and its subscriptions share the result (an AST and operation context per subscription
    // were kilobytes per idle socket).
    let prepared = this.prepared.get(planKey);
    if (!prepared) {
      const made = this.prepareDocument(query, name);
      if (Array.isArray(made)) return made;
      prepared = made;
      // A bounded cache: operations come from the apps, so few distinct ones are expected.
      if (this.prepared.size >= 1_000) this.prepared.delete(this.prepared.keys().next().value as string);
      this.prepared.set(planKey, prepared);
    }
    const coerced = getVariableValues(
      this.pieces.apiGraphQLSchema,
      prepared.variableDefinitions,
      (variables ?? {}) as Record<string, unknown>,
      {
        maxErrors: 10,
      },
    );
    if (coerced.errors) {
      return coerced.errors.map((e) => error(ErrorCode.BAD_USER_INPUT, e.message, { field: "variables" }));
    }
    return {
      planKey,
      document: prepared.document,
      operationName: name,
      operationContext: prepared.operationContext,
      primary: prepared.primary,
      rest: prepared.rest,
      variables: coerced.coerced,
      supergraph: { version: this.version, pieces: this.pieces },
    };
  }

  /** Parses, validates and plans one document (no variables yet), or the client-facing errors. */
  private prepareDocument(query: string, name: string | undefined): PreparedDocument | GraphQLError[] {
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: SUBSCRIPTION_LIMITS.maxTokens, noLocation: true });
    } catch (caught) {
      const message = caught instanceof GraphQLError ? caught.message : "The query does not parse";
      return [error("GRAPHQL_PARSE_FAILED", message)];
    }
    const schema = this.pieces.apiGraphQLSchema;
    const invalid = validate(schema, document, this.rules, { maxErrors: 10 });
    if (invalid.length > 0) {
      return invalid.map(
        (e) => new GraphQLError(e.message, { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }),
      );
    }
    const operation = getOperationAST(document, name);
    if (!operation) {
      return [
        error(
          "OPERATION_RESOLUTION_FAILURE",
          name
            ? `The document has no operation named "${name}"`
            : "The document has several operations: name one in `operationName`",
        ),
      ];
    }
    if (operation.operation !== "subscription") {
      return [
        error(
          "BAD_REQUEST",
          `Only subscriptions run over WebSocket; send this ${operation.operation} as an HTTP POST to /graphql`,
        ),
      ];
    }
    const queryPlan = this.queryPlanner.buildQueryPlan(
      operationFromDocument(
        this.pieces.apiSchema,
        document,
        name === undefined ? {} : { operationName: name },
      ),
    );
    const node = queryPlan.node;
    if (node?.kind !== "Subscription") {
      return [error(ErrorCode.INTERNAL_SERVER_ERROR, "The planner did not plan a subscription")];
    }
    return {
      document,
      variableDefinitions: operation.variableDefinitions ?? [],
      operationContext: buildOperationContext({
        schema,
        operationDocument: document,
        ...(name === undefined ? {} : { operationName: name }),
      }),
      primary: node.primary,
      rest: node.rest,
    };
  }
}

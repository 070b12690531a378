import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from "@apollo/gateway";
import {
  getNamedType,
  isCompositeType,
  Kind,
  parse,
  type GraphQLSchema,
  type SelectionSetNode,
  type GraphQLCompositeType,
} from "graphql";
import type { GatewayContext } from "../subgraph-data-source";
import { PUBLIC_FIELDS, SELF_TYPENAME } from "./public-fields";

type GatewayResponse = Awaited<ReturnType<GraphQLDataSource["process"]>>;

export interface SharedFetchStats {
  /** Requests actually sent to subgraphs while resolving subscription events. */
  sent: number;
  /** Requests answered from another subscriber's identical fetch. */
  shared: number;
}

interface Entry {
  response: Promise<GatewayResponse>;
  timer?: NodeJS.Timeout;
}

/**
 * Per-event entity fetches (the `rest` of a subscription plan), shared between subscribers.
 *
 * The key is (subgraph, operation text, variables, identity). Identity is the subscriber's
 * Authorization header, except for a fetch that selects only PUBLIC_FIELDS and does not concern
 * the viewer's own User: that one is sent without a token and keyed as "public", so one group
 * message delivered to 100 members' streams fetches the sender's profile once. A fetch is shared
 * while in flight and for `shareMs` after it answered (the most a shared answer can be stale).
 */
export class SharedFetches {
  readonly stats: SharedFetchStats = { sent: 0, shared: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly publicOperations = new Map<string, boolean>();

  constructor(
    private readonly supergraphSchema: () => GraphQLSchema,
    private readonly shareMs: number,
  ) {}

  /** Wraps a subgraph's data source so that its fetches go through the sharing map. */
  wrap(serviceName: string, inner: GraphQLDataSource<GatewayContext>): GraphQLDataSource<GatewayContext> {
    return {
      process: (options) => this.process(serviceName, inner, options),
    };
  }

  clear(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
    this.publicOperations.clear();
  }

  private async process(
    serviceName: string,
    inner: GraphQLDataSource<GatewayContext>,
    options: GraphQLDataSourceProcessOptions<GatewayContext>,
  ): Promise<GatewayResponse> {
    const context = options.context as GatewayContext;
    const query = options.request.query ?? "";
    const variables = options.request.variables ?? {};
    const isPublic = this.isPublicOperation(query) && !concernsViewer(variables, context.viewer?.userId);
    const identity = isPublic ? "public" : `auth:${context.authorization ?? ""}`;
    const key = `${serviceName}\0${query}\0${JSON.stringify(variables)}\0${identity}`;
    let entry = this.entries.get(key);
    if (entry) {
      this.stats.shared += 1;
    } else {
      this.stats.sent += 1;
      const sentOptions = isPublic
        ? { ...options, context: { ...context, viewer: null, authorization: null } }
        : options;
      entry = { response: inner.process(sentOptions as GraphQLDataSourceProcessOptions<GatewayContext>).then(bodyOf) };
      const created = entry;
      this.entries.set(key, created);
      created.response.then(
        () => {
          if (this.shareMs <= 0) {
            this.entries.delete(key);
            return;
          }
          created.timer = setTimeout(() => {
            if (this.entries.get(key) === created) this.entries.delete(key);
          }, this.shareMs);
          created.timer.unref();
        },
        () => {
          if (this.entries.get(key) === created) this.entries.delete(key);
        },
      );
    }
    // The executor merges into (and rewrites) what it receives: every subscriber gets its own copy.
    return structuredClone(await entry.response);
  }

  /** Whether every field the fetch selects is in PUBLIC_FIELDS (entity fetches only). */
  private isPublicOperation(query: string): boolean {
    let known = this.publicOperations.get(query);
    if (known === undefined) {
      known = analyse(query, this.supergraphSchema());
      if (this.publicOperations.size >= 5_000) this.publicOperations.clear();
      this.publicOperations.set(query, known);
    }
    return known;
  }
}

/** The GraphQL body alone (the HTTP response object cannot be copied, and nothing downstream reads it). */
function bodyOf(response: GatewayResponse): GatewayResponse {
  const body: GatewayResponse = {};
  if (response.data !== undefined) body.data = response.data;
  if (response.errors !== undefined) body.errors = response.errors;
  if (response.extensions !== undefined) body.extensions = response.extensions;
  return body;
}

function concernsViewer(variables: Record<string, unknown>, viewerId: string | undefined): boolean {
  if (viewerId === undefined) return false;
  const representations = variables.representations;
  if (!Array.isArray(representations)) return false;
  return representations.some((r) => {
    const rep = r as { __typename?: unknown; id?: unknown } | null;
    return rep?.__typename === SELF_TYPENAME && typeof rep.id === "string" && rep.id.toLowerCase() === viewerId.toLowerCase();
  });
}

function analyse(query: string, schema: GraphQLSchema): boolean {
  let document;
  try {
    document = parse(query, { noLocation: true });
  } catch {
    return false;
  }
  const [operation, ...others] = document.definitions;
  if (!operation || others.length > 0 || operation.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "query") return false;
  const roots = operation.selectionSet.selections;
  if (roots.length !== 1) return false;
  const root = roots[0];
  if (root?.kind !== Kind.FIELD || root.name.value !== "_entities" || !root.selectionSet) return false;
  for (const selection of root.selectionSet.selections) {
    if (selection.kind === Kind.FIELD && selection.name.value === "__typename") continue;
    if (selection.kind !== Kind.INLINE_FRAGMENT || !selection.typeCondition) return false;
    const type = schema.getType(selection.typeCondition.name.value);
    if (!type || !isCompositeType(type)) return false;
    if (!selectsOnlyPublic(selection.selectionSet, type, schema)) return false;
  }
  return true;
}

function selectsOnlyPublic(selectionSet: SelectionSetNode, parent: GraphQLCompositeType, schema: GraphQLSchema): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FRAGMENT_SPREAD) return false; // fetches are generated without named fragments
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
      if (!type || !isCompositeType(type) || !selectsOnlyPublic(selection.selectionSet, type, schema)) return false;
      continue;
    }
    if (selection.name.value === "__typename") continue;
    if (selection.arguments && selection.arguments.length > 0) return false;
    if (!PUBLIC_FIELDS.has(`${parent.name}.${selection.name.value}`)) return false;
    if (selection.selectionSet) {
      if (!("getFields" in parent)) return false;
      const field = parent.getFields()[selection.name.value];
      const type = field ? getNamedType(field.type) : undefined;
      if (!type || !isCompositeType(type) || !selectsOnlyPublic(selection.selectionSet, type, schema)) return false;
    }
  }
  return true;
}

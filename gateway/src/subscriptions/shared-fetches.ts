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
import { requestIdFrom } from "@hv/kit";
import type { GatewayContext } from "../subgraph-data-source";
import { OWNER_KEYS, PUBLIC_FIELDS } from "./public-fields";

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

/** The supergraph a fetch was planned on: its schema, and a version that changes with it. */
export interface SupergraphVersion {
  version: string;
  schema: GraphQLSchema;
}

/**
 * Per-event entity fetches (the `rest` of a subscription plan), shared between subscribers.
 *
 * The key is (supergraph version, subgraph, operation text, variables, identity). Identity is the
 * subscriber's Authorization header, except for a fetch that selects only PUBLIC_FIELDS and
 * concerns no entity of the viewer's own (OWNER_KEYS): that one is sent as nobody (no token, no
 * client address, a request id of its own) and keyed as "public", so one group message delivered
 * to 100 members' streams fetches the sender's profile once. A fetch is shared while in flight and,
 * when it answered without errors, for `shareMs` after (the most a shared answer can be stale).
 */
export class SharedFetches {
  readonly stats: SharedFetchStats = { sent: 0, shared: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly publicOperations = new Map<string, boolean>();

  constructor(private readonly shareMs: number) {}

  /** Wraps a subgraph's data source so that its fetches go through the sharing map. */
  wrap(serviceName: string, inner: GraphQLDataSource<GatewayContext>, supergraph: SupergraphVersion): GraphQLDataSource<GatewayContext> {
    return {
      process: (options) => this.process(serviceName, inner, supergraph, options),
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
    supergraph: SupergraphVersion,
    options: GraphQLDataSourceProcessOptions<GatewayContext>,
  ): Promise<GatewayResponse> {
    const context = options.context as GatewayContext;
    const query = options.request.query ?? "";
    const variables = options.request.variables ?? {};
    const isPublic = this.isPublicOperation(query, supergraph) && !concernsViewer(variables, context.viewer?.userId);
    const identity = isPublic ? "public" : `auth:${context.authorization ?? ""}`;
    const key = `${supergraph.version}\0${serviceName}\0${query}\0${JSON.stringify(variables)}\0${identity}`;
    let entry = this.entries.get(key);
    if (entry) {
      this.stats.shared += 1;
    } else {
      this.stats.sent += 1;
      let sentOptions = options;
      if (isPublic) {
        // Sent as nobody: no token, and nothing of the subscriber who happened to ask first (their
        // address would count against their rate limits, their request id would tie other
        // people's deliveries to their logs). The fetch gets a request id of its own.
        const requestId = requestIdFrom(undefined);
        context.logger.debug({ sharedFetchRequestId: requestId, serviceName }, "shared public fetch");
        const anonymous = { requestId, logger: context.logger.child({ requestId }), viewer: null, authorization: null };
        sentOptions = { ...options, context: anonymous as Partial<GatewayContext> as GatewayContext };
      }
      entry = { response: inner.process(sentOptions).then(bodyOf) };
      const created = entry;
      this.entries.set(key, created);
      const drop = () => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      };
      created.response.then((body) => {
        // An answer with errors (a subgraph hiccup, a timeout) is handed to whoever waited for it,
        // never kept for later events.
        if (this.shareMs <= 0 || body.errors?.length) return drop();
        created.timer = setTimeout(drop, this.shareMs);
        created.timer.unref();
      }, drop);
    }
    // The executor merges into (and rewrites) what it receives: every subscriber gets its own copy.
    return structuredClone(await entry.response);
  }

  /** Whether every field the fetch selects is public (entity fetches only), on this supergraph. */
  private isPublicOperation(query: string, supergraph: SupergraphVersion): boolean {
    const cacheKey = `${supergraph.version}\0${query}`;
    let known = this.publicOperations.get(cacheKey);
    if (known === undefined) {
      known = analyse(query, supergraph.schema);
      if (this.publicOperations.size >= 5_000) this.publicOperations.clear();
      this.publicOperations.set(cacheKey, known);
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

/** Whether a representation is of an entity the viewer owns (OWNER_KEYS). */
function concernsViewer(variables: Record<string, unknown>, viewerId: string | undefined): boolean {
  if (viewerId === undefined) return false;
  const representations = variables.representations;
  if (!Array.isArray(representations)) return false;
  const viewer = viewerId.toLowerCase();
  return representations.some((r) => {
    if (typeof r !== "object" || r === null) return false;
    const rep = r as Record<string, unknown>;
    const ownerKey = typeof rep.__typename === "string" && Object.hasOwn(OWNER_KEYS, rep.__typename) ? OWNER_KEYS[rep.__typename] : undefined;
    if (ownerKey === undefined) return false;
    const owner = rep[ownerKey];
    return typeof owner === "string" && owner.toLowerCase() === viewer;
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
    // Fields the owner sees differently are public only on an entity whose owner the gateway recognises.
    if (!selectsOnlyPublic(selection.selectionSet, type, schema, Object.hasOwn(OWNER_KEYS, type.name))) return false;
  }
  return true;
}

/** `ownerRecognised`: these are the entity's own fields and its owner's fetches go with their token. */
function selectsOnlyPublic(selectionSet: SelectionSetNode, parent: GraphQLCompositeType, schema: GraphQLSchema, ownerRecognised: boolean): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FRAGMENT_SPREAD) return false; // fetches are generated without named fragments
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
      if (!type || !isCompositeType(type)) return false;
      if (!selectsOnlyPublic(selection.selectionSet, type, schema, ownerRecognised && type.name === parent.name)) return false;
      continue;
    }
    if (selection.name.value === "__typename") continue;
    if (selection.arguments && selection.arguments.length > 0) return false;
    const audience = PUBLIC_FIELDS.get(`${parent.name}.${selection.name.value}`);
    if (audience === undefined || (audience === "non-owners" && !ownerRecognised)) return false;
    if (selection.selectionSet) {
      if (!("getFields" in parent)) return false;
      const field = parent.getFields()[selection.name.value];
      const type = field ? getNamedType(field.type) : undefined;
      // A nested object may be anyone's, the viewer's included: only fields the same for everyone.
      if (!type || !isCompositeType(type) || !selectsOnlyPublic(selection.selectionSet, type, schema, false)) return false;
    }
  }
  return true;
}

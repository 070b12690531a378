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
import type { UserChanges } from "./user-changes";
import type { CachedDataSource } from "../public-user-cache";

type GatewayResponse = Awaited<ReturnType<GraphQLDataSource["process"]>>;

export interface SharedFetchStats {
  /** Requests actually sent to subgraphs while resolving subscription events. */
  sent: number;
  /** Requests answered from another subscriber's identical fetch (or from the user cache). */
  shared: number;
  /** Entries dropped because Users said their user changed. */
  invalidated: number;
}

interface Entry {
  response: Promise<GatewayResponse>;
  timer?: NodeJS.Timeout;
  /** Users whose representations the fetch carries, when it may be kept until they change. */
  userIds?: readonly string[];
}

/** The supergraph a fetch was planned on: its schema, and a version that changes with it. */
export interface SupergraphVersion {
  version: string;
  schema: GraphQLSchema;
}

export interface SharedFetchesOptions {
  /** How long an answer without errors is shared after it answered. */
  shareMs: number;
  /**
   * How long a fetch of users' public fields is kept while `userChanges` is live (it is dropped
   * as soon as one of its users changes); 0: no longer than `shareMs`.
   */
  userCacheMs: number;
  /** Most answers held at once; the oldest goes first. */
  maxEntries: number;
  userChanges?: UserChanges | undefined;
}

/**
 * Per-event entity fetches (the `rest` of a subscription plan), shared between subscribers.
 *
 * The key is (supergraph version, subgraph, operation text, variables, identity). Identity is the
 * subscriber's Authorization header, except for a fetch that selects only PUBLIC_FIELDS: that one
 * is sent as nobody (no token, no client address, a request id of its own) and keyed as "public",
 * so one group message delivered to 100 members' streams fetches the sender's profile once. The
 * sender's own echo (a representation of the viewer's own entity, OWNER_KEYS) takes the public
 * answer too when it holds every entity; when one is null (a profile hidden from everyone but its
 * owner) it is fetched again with the viewer's token, keyed by their user id. A fetch is shared
 * while in flight and, when it answered without errors,
 * for `shareMs` after; one that selects only public fields of users (every representation a
 * User) is kept for `userCacheMs` while Users' change channel is live, and dropped when one of
 * those users changes (profile, visibility, ban, deletion) or the channel is lost.
 */
export class SharedFetches {
  readonly stats: SharedFetchStats = { sent: 0, shared: 0, invalidated: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly byUser = new Map<string, Set<string>>();
  /** Per supergraph version, per fetch text: whether it is public (`isPublicEntityFetch`). */
  private readonly publicOperations = new Map<string, Map<string, boolean>>();
  /** Fetch texts without their operation names (withoutOperationName), by text. */
  private readonly unnamed = new Map<string, string>();
  /** Runs that asked, by their context: owners whose entity a public answer did not show. */
  private readonly unsureOwners = new WeakMap<object, Set<string>>();

  constructor(private readonly options: SharedFetchesOptions) {
    options.userChanges?.onChange((userId) => {
      if (userId === null) return this.dropUserEntries();
      const keys = this.byUser.get(userId);
      if (!keys) return;
      for (const key of [...keys]) {
        this.stats.invalidated += 1;
        this.drop(key);
      }
    });
  }

  /** Wraps a subgraph's data source so that its fetches go through the sharing map. */
  wrap(
    serviceName: string,
    inner: GraphQLDataSource<GatewayContext>,
    supergraph: SupergraphVersion,
  ): GraphQLDataSource<GatewayContext> {
    return {
      process: (options) => this.process(serviceName, inner, supergraph, options),
    };
  }

  /**
   * Records, for the run whose fetches carry `context`, the owners (OWNER_KEYS) of representations
   * sent in a public fetch whose answer had errors or lacked an entity: only for them may the
   * owner's own view differ from what that run saw (a hidden profile is shown to its owner only).
   */
  watchOwners(context: object): ReadonlySet<string> {
    const owners = new Set<string>();
    this.unsureOwners.set(context, owners);
    return owners;
  }

  clear(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
    this.byUser.clear();
    this.publicOperations.clear();
    this.unnamed.clear();
  }

  /** Answers currently held (in flight or kept). */
  size(): number {
    return this.entries.size;
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(key);
    for (const userId of entry.userIds ?? []) {
      const keys = this.byUser.get(userId);
      keys?.delete(key);
      if (keys?.size === 0) this.byUser.delete(userId);
    }
  }

  /** The change channel was lost: nothing kept on its word may stay. */
  private dropUserEntries(): void {
    for (const keys of [...this.byUser.values()]) for (const key of [...keys]) this.drop(key);
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
    let text = this.unnamed.get(query);
    if (text === undefined) {
      text = withoutOperationName(query);
      if (this.unnamed.size >= 5_000) this.unnamed.clear();
      this.unnamed.set(query, text);
    }
    const base = `${supergraph.version}\0${serviceName}\0${text}\0${JSON.stringify(variables)}\0`;
    if (!this.isPublicOperation(query, supergraph)) {
      return this.shared(
        `${base}auth:${context.authorization ?? ""}`,
        () => inner.process(options),
        undefined,
      );
    }
    const userIds = userIdsOf(variables.representations);
    // Sent as nobody: no token, and nothing of the subscriber who happened to ask first (their
    // address would count against their rate limits, their request id would tie other people's
    // deliveries to their logs). The fetch gets a request id of its own.
    const asNobody = () => {
      const requestId = requestIdFrom(undefined);
      context.logger.debug({ sharedFetchRequestId: requestId, serviceName }, "shared public fetch");
      const anonymous = {
        requestId,
        logger: context.logger.child({ requestId }),
        viewer: null,
        authorization: null,
      };
      return inner.process({ ...options, context: anonymous as Partial<GatewayContext> as GatewayContext });
    };
    const publicAnswer = await this.shared(`${base}public`, asNobody, userIds);
    const unsure = this.unsureOwners.get(context);
    if (unsure && (publicAnswer.errors?.length || !everyEntityPresent(publicAnswer)))
      for (const owner of ownersOf(variables)) unsure.add(owner);
    const viewerId = context.viewer?.userId;
    if (!concernsViewer(variables, viewerId)) return publicAnswer;
    // The owner sees their own public fields as everyone does whenever everyone sees the entity
    // (PUBLIC_FIELDS' rule); a hidden one (null to everyone else) is fetched with their token.
    if (!publicAnswer.errors?.length && everyEntityPresent(publicAnswer)) return publicAnswer;
    // Past the gateway's user cache (public-user-cache.ts), which would ask as nobody first again.
    const direct = (inner as Partial<CachedDataSource>).uncached ?? inner;
    return this.shared(`${base}owner:${viewerId ?? ""}`, () => direct.process(options), userIds);
  }

  /** The answer of the fetch under `key`: joined if held, else sent with `send` (and kept as the options say). */
  private async shared(
    key: string,
    send: () => Promise<GatewayResponse>,
    userIds: readonly string[] | undefined,
  ): Promise<GatewayResponse> {
    let entry = this.entries.get(key);
    if (entry) {
      this.stats.shared += 1;
    } else {
      this.stats.sent += 1;
      entry = { response: send().then(bodyOf) };
      if (userIds) entry.userIds = userIds;
      const created = entry;
      this.entries.set(key, created);
      for (const userId of userIds ?? []) {
        let keys = this.byUser.get(userId);
        if (!keys) this.byUser.set(userId, (keys = new Set()));
        keys.add(key);
      }
      if (this.entries.size > this.options.maxEntries) this.drop(this.entries.keys().next().value as string);
      const drop = () => {
        if (this.entries.get(key) === created) this.drop(key);
      };
      created.response.then((body) => {
        // Dropped while in flight (its user changed, the channel was lost): never kept.
        if (this.entries.get(key) !== created) return;
        // An answer with errors (a subgraph hiccup, a timeout) is handed to whoever waited for it,
        // never kept for later events.
        if (body.errors?.length) return drop();
        const keepMs =
          userIds && this.options.userChanges?.live
            ? Math.max(this.options.userCacheMs, this.options.shareMs)
            : this.options.shareMs;
        if (keepMs <= 0) return drop();
        created.timer = setTimeout(drop, keepMs);
        created.timer.unref();
      }, drop);
    }
    // The executor merges into (and rewrites) what it receives: every subscriber gets its own copy.
    return copyJson(await entry.response);
  }

  /** Whether every field the fetch selects is public (entity fetches only), on this supergraph. */
  isPublicOperation(query: string, supergraph: SupergraphVersion): boolean {
    let byText = this.publicOperations.get(supergraph.version);
    if (!byText) {
      // A new supergraph: what was known of the previous ones goes (their feeds ask again).
      if (this.publicOperations.size >= 4) this.publicOperations.clear();
      this.publicOperations.set(supergraph.version, (byText = new Map()));
    }
    let known = byText.get(query);
    if (known === undefined) {
      known = isPublicEntityFetch(query, supergraph.schema);
      if (byText.size >= 5_000) byText.clear();
      byText.set(query, known);
    }
    return known;
  }
}

/**
 * The fetch's text without its operation name: the planner names each fetch after the client's
 * operation and its place in the plan (`ChatMyEvents__users__1`, `__2`…), and fetches that differ
 * only by name (the event's actor and the message's sender) get the same answer.
 */
export function withoutOperationName(query: string): string {
  return query.replace(/^(\s*(?:query|mutation|subscription))\s+[_A-Za-z][_0-9A-Za-z]*/, "$1");
}

/** The GraphQL body alone (the HTTP response object cannot be copied, and nothing downstream reads it). */
function bodyOf(response: GatewayResponse): GatewayResponse {
  const body: GatewayResponse = {};
  if (response.data !== undefined) body.data = response.data;
  if (response.errors !== undefined) body.errors = response.errors;
  if (response.extensions !== undefined) body.extensions = response.extensions;
  return body;
}

/**
 * The users a fetch is about (lower-case ids), when every representation is a User with its id;
 * otherwise undefined. `onlyId`: a representation holding anything besides `__typename` and `id`
 * does not count either.
 */
export function userIdsOf(representations: unknown, onlyId = false): string[] | undefined {
  if (!Array.isArray(representations) || representations.length === 0) return undefined;
  const ids: string[] = [];
  for (const r of representations) {
    if (typeof r !== "object" || r === null) return undefined;
    const rep = r as Record<string, unknown>;
    if (rep.__typename !== "User" || typeof rep.id !== "string") return undefined;
    if (onlyId && Object.keys(rep).length !== 2) return undefined;
    ids.push(rep.id.toLowerCase());
  }
  return ids;
}

/** Whether an `_entities` answer holds a non-null entity for every representation. */
function everyEntityPresent(body: GatewayResponse): boolean {
  const entities = (body.data as { _entities?: unknown } | null | undefined)?._entities;
  return Array.isArray(entities) && entities.every((entity) => entity !== null && entity !== undefined);
}

/** The owners (OWNER_KEYS, lower-cased) of the fetch's representations. */
function ownersOf(variables: Record<string, unknown>): string[] {
  const representations = variables.representations;
  if (!Array.isArray(representations)) return [];
  const owners: string[] = [];
  for (const r of representations) {
    if (typeof r !== "object" || r === null) continue;
    const rep = r as Record<string, unknown>;
    const ownerKey =
      typeof rep.__typename === "string" && Object.hasOwn(OWNER_KEYS, rep.__typename)
        ? OWNER_KEYS[rep.__typename]
        : undefined;
    if (ownerKey === undefined) continue;
    const owner = rep[ownerKey];
    if (typeof owner === "string") owners.push(owner.toLowerCase());
  }
  return owners;
}

/** Whether a representation is of an entity the viewer owns (OWNER_KEYS). */
function concernsViewer(variables: Record<string, unknown>, viewerId: string | undefined): boolean {
  return viewerId !== undefined && ownersOf(variables).includes(viewerId.toLowerCase());
}

/**
 * A copy of a JSON answer: plain objects and arrays are copied, anything else (strings, numbers,
 * error instances) is shared. Several times cheaper than structuredClone for the small answers
 * per-event fetches get.
 */
export function copyJson<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyJson) as T;
  if (value === null || typeof value !== "object") return value;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value;
  const copy: Record<string, unknown> =
    prototype === null ? (Object.create(null) as Record<string, unknown>) : {};
  for (const key of Object.keys(value)) {
    const item = copyJson((value as Record<string, unknown>)[key]);
    // An own "__proto__" key (JSON.parse makes one) stays a key, never the prototype.
    if (key === "__proto__")
      Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return copy as T;
}

/** Whether `query` is one `_entities` fetch selecting nothing but PUBLIC_FIELDS (under their audience rule). */
export function isPublicEntityFetch(query: string, schema: GraphQLSchema): boolean {
  let document;
  try {
    document = parse(query, { noLocation: true });
  } catch {
    return false;
  }
  const [operation, ...others] = document.definitions;
  if (
    !operation ||
    others.length > 0 ||
    operation.kind !== Kind.OPERATION_DEFINITION ||
    operation.operation !== "query"
  )
    return false;
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
    if (!selectsOnlyPublic(selection.selectionSet, type, schema, Object.hasOwn(OWNER_KEYS, type.name)))
      return false;
  }
  return true;
}

/** `ownerRecognised`: these are the entity's own fields and its owner's fetches go with their token. */
function selectsOnlyPublic(
  selectionSet: SelectionSetNode,
  parent: GraphQLCompositeType,
  schema: GraphQLSchema,
  ownerRecognised: boolean,
): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FRAGMENT_SPREAD) return false; // fetches are generated without named fragments
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
      if (!type || !isCompositeType(type)) return false;
      if (
        !selectsOnlyPublic(selection.selectionSet, type, schema, ownerRecognised && type.name === parent.name)
      )
        return false;
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
      if (!type || !isCompositeType(type) || !selectsOnlyPublic(selection.selectionSet, type, schema, false))
        return false;
    }
  }
  return true;
}

import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from "@apollo/gateway";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import DataLoader from "dataloader";
import { ErrorCode, requestIdFrom, type Logger, type ProcessMetrics } from "@hv/kit";
import { GraphQLError } from "graphql";
import { restrictCachePolicy, type GatewayContext } from "./subgraph-data-source";
import {
  copyJson,
  isPublicEntityFetch,
  userIdsOf,
  withoutOperationName,
  type SupergraphVersion,
} from "./subscriptions/shared-fetches";
import type { UserChanges } from "./subscriptions/user-changes";

type GatewayResponse = Awaited<ReturnType<GraphQLDataSource["process"]>>;
type ProcessOptions = GraphQLDataSourceProcessOptions<GatewayContext>;
type Entity = Record<string, unknown>;

/** One user's entity as a fetch text selects it, as anyone but its owner sees it. */
interface Kept {
  entity: Entity;
  /** The `Cache-Control` Users answered it with (restricts the policy of requests it serves). */
  cacheControl: string | null;
  expiresAt: number;
}

/** A fetch in flight for one (user, text): what it kept, or undefined (null entity, errors, failure). */
interface InFlight {
  pending: Promise<Kept | undefined>;
}

/** One missing representation asked of Users, with the fetch it came in (the first one's is sent). */
interface Asked {
  id: string;
  representation: unknown;
  options: ProcessOptions;
  settle: (kept: Kept | undefined) => void;
}

/** One fetch sent as nobody for the misses of every fetch that came in the same turn of the loop. */
interface Batch {
  response: GatewayResponse;
  /** One entity or null per representation, in order; undefined when the answer cannot be used. */
  entities: Array<Entity | null> | undefined;
  cacheControl: string | null;
  size: number;
}

/** A representation's place in the batch it went in. */
interface Answered {
  batch: Batch;
  place: number;
}

/** A data source behind the cache; `uncached` sends as it came (an owner's fetch known to need their token). */
export interface CachedDataSource extends GraphQLDataSource<GatewayContext> {
  readonly uncached: GraphQLDataSource<GatewayContext>;
}

export interface PublicUserCacheOptions {
  /** How long an entity is kept while `userChanges` is live; nothing is kept otherwise. */
  keepMs: number;
  /** How long a held (subscribed) user's warmed entity is kept; fetched again at half of it (default `keepMs`). */
  heldKeepMs?: number;
  /** Most users held at once; the first kept goes first. */
  maxUsers: number;
  userChanges: UserChanges | undefined;
  metrics?: ProcessMetrics | undefined;
  /** Most representations in one fetch of misses (default 100). */
  maxBatch?: number;
  /** How long users to warm are gathered before their fetch goes (default 50 ms; a full batch goes at once). */
  warmGatherMs?: number;
  /** Told once when a warming fetch fails (again after one succeeds). */
  logger?: Logger | undefined;
}

/** Counts of representations since start (`hv_gateway_user_cache_entities_total` by outcome). */
export interface PublicUserCacheStats {
  hits: number;
  misses: number;
  owner: number;
  /** Users dropped because Users said they changed. */
  invalidated: number;
  /** Fetches of misses sent as nobody (one per batch). */
  fetches: number;
  /** Warming fetches sent as nobody for held users (one per batch), their users, and those that failed. */
  warmFetches: number;
  warmed: number;
  warmFailures: number;
  /** Warming fetches answered or failed. */
  warmSettled: number;
}

/** A user who holds subscriptions, with the fetch texts of the first (shared by every feed of its document), refreshed. */
interface Held {
  count: number;
  queries: readonly string[];
}

/** Users to warm for one fetch text, gathered until the batch goes. */
interface WarmQueue {
  query: string;
  ids: Set<string>;
}

/**
 * Users' public fields kept at the gateway, per user and per fetch text, for every `_entities`
 * fetch to Users: queries, mutations and subscription events alike (a wrapper around the Users
 * data source). A fetch qualifies under SharedFetches' rule: it selects only PUBLIC_FIELDS and
 * every representation is a `User` by id; anything else goes to Users as it came, with the
 * viewer's token. Kept entities answer their representations; the missing ones are sent in one
 * fetch as nobody (no token, address or client request id) and what it answers non-null is kept
 * for `keepMs` while Users' change channel is live, dropped when the user changes (or everything,
 * when the channel is lost). A null entity is never kept (hidden, banned, deleted: null to every
 * non-owner, answered as such). The viewer's own entity follows the owner rule: a kept one
 * answers (everyone sees it, so they see the same); one null to nobody, or an answer with
 * errors, sends the whole fetch again as it came, with the viewer's token, and answers that.
 */
export class PublicUserCache {
  readonly stats: PublicUserCacheStats = {
    hits: 0,
    misses: 0,
    owner: 0,
    invalidated: 0,
    fetches: 0,
    warmFetches: 0,
    warmed: 0,
    warmFailures: 0,
    warmSettled: 0,
  };
  private supergraph: SupergraphVersion | undefined;
  /** Per fetch text of the current supergraph: its unnamed form when public, null when not. */
  private readonly texts = new Map<string, string | null>();
  /** Per user (lower-case id), per unnamed fetch text: what is kept or in flight. First kept first. */
  private readonly users = new Map<string, Map<string, Kept | InFlight>>();
  /** Per data source, per unnamed fetch text: the batch of misses gathering in this turn of the loop. */
  private loaders = new WeakMap<
    GraphQLDataSource<GatewayContext>,
    Map<string, DataLoader<Asked, Answered>>
  >();

  /** Users holding subscriptions (lower-case id): kept warm while held. */
  private readonly held = new Map<string, Held>();
  /** Per unnamed fetch text: users to warm, gathered across subscribers. */
  private readonly warmQueues = new Map<string, WarmQueue>();
  private warmTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Users' data source behind the cache (the last wrapped), which warming fetches go through. */
  private inner: GraphQLDataSource<GatewayContext> | undefined;
  private warmFailureTold = false;

  constructor(private readonly options: PublicUserCacheOptions) {
    options.userChanges?.onChange((userId) => {
      if (userId === null) return this.users.clear();
      if (this.users.delete(userId)) this.stats.invalidated += 1;
      const held = this.held.get(userId);
      if (held) this.enqueueWarm(userId, held.queries);
    });
  }

  /**
   * Keeps `userId`'s public fields for `queries` (Users entity fetch texts; those not public are
   * passed over) warm until as many `release` calls: fetched as nobody in batches gathered across
   * callers, again when the user changes and before what is kept expires. Never waits on Users.
   */
  hold(userId: string, queries: readonly string[]): void {
    const id = userId.toLowerCase();
    const held = this.held.get(id);
    if (held) held.count += 1;
    else this.held.set(id, { count: 1, queries });
    this.enqueueWarm(id, queries);
    if (!this.refreshTimer && this.options.keepMs > 0) {
      this.refreshTimer = setInterval(() => this.refreshHeld(), this.refreshEveryMs());
      this.refreshTimer.unref();
    }
  }

  release(userId: string): void {
    const id = userId.toLowerCase();
    const held = this.held.get(id);
    if (!held) return;
    held.count -= 1;
    if (held.count > 0) return;
    this.held.delete(id);
    if (this.held.size === 0) this.stopRefresh();
  }

  /** Users held now. */
  heldUsers(): number {
    return this.held.size;
  }

  /** Stops warming (shutdown); what is kept stays. */
  stop(): void {
    this.stopRefresh();
    clearTimeout(this.warmTimer);
    this.warmTimer = undefined;
    this.warmQueues.clear();
  }

  private stopRefresh(): void {
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** Held users are fetched again when what is kept has less than this left (and every this long). */
  private refreshEveryMs(): number {
    return Math.max(1, Math.floor(this.heldKeepMs() / 2));
  }

  private heldKeepMs(): number {
    return this.options.heldKeepMs ?? this.options.keepMs;
  }

  private refreshHeld(): void {
    for (const [id, held] of this.held) this.enqueueWarm(id, held.queries);
  }

  /** Whether `id`'s entity for `key` is in flight or kept for longer than the next refresh. */
  private warmEnough(id: string, key: string, now: number): boolean {
    const slot = this.users.get(id)?.get(key);
    if (!slot) return false;
    return "pending" in slot || slot.expiresAt > now + this.refreshEveryMs() + this.warmGatherMs();
  }

  private warmGatherMs(): number {
    return this.options.warmGatherMs ?? 50;
  }

  private enqueueWarm(id: string, queries: readonly string[]): void {
    if (!this.inner || !this.options.userChanges?.live || this.options.keepMs <= 0) return;
    const now = performance.now();
    const maxBatch = this.options.maxBatch ?? 100;
    for (const query of queries) {
      const key = this.publicText(query);
      if (key === undefined || this.warmEnough(id, key, now)) continue;
      let queue = this.warmQueues.get(key);
      if (!queue) this.warmQueues.set(key, (queue = { query, ids: new Set() }));
      queue.ids.add(id);
      if (queue.ids.size >= maxBatch) this.flushWarm(key);
    }
    if (this.warmQueues.size > 0 && !this.warmTimer) {
      this.warmTimer = setTimeout(() => {
        this.warmTimer = undefined;
        for (const key of [...this.warmQueues.keys()]) this.flushWarm(key);
      }, this.warmGatherMs());
      this.warmTimer.unref();
    }
  }

  /** Sends the users gathered for `key` (those not warm by now) in one fetch as nobody. */
  private flushWarm(key: string): void {
    const queue = this.warmQueues.get(key);
    this.warmQueues.delete(key);
    const inner = this.inner;
    if (!queue || !inner || !this.options.userChanges?.live) return;
    const now = performance.now();
    /** Per user: the slot it had (kept, refreshed in place) or the one in flight put there now. */
    const marks: Array<{ id: string; mark: Kept | InFlight; settle?: (kept: Kept | undefined) => void }> = [];
    for (const id of queue.ids) {
      if (this.warmEnough(id, key, now)) continue;
      let byText = this.users.get(id);
      if (!byText) {
        this.users.set(id, (byText = new Map()));
        if (this.users.size > this.options.maxUsers) this.users.delete(this.users.keys().next().value!);
      }
      const current = byText.get(key) as Kept | undefined;
      if (current) {
        marks.push({ id, mark: current });
        continue;
      }
      let settle!: (kept: Kept | undefined) => void;
      const inFlight: InFlight = { pending: new Promise((resolve) => (settle = resolve)) };
      byText.set(key, inFlight);
      marks.push({ id, mark: inFlight, settle });
    }
    if (marks.length === 0) return;
    void this.warmBatch(inner, key, queue.query, marks);
  }

  private async warmBatch(
    inner: GraphQLDataSource<GatewayContext>,
    key: string,
    query: string,
    marks: ReadonlyArray<{ id: string; mark: Kept | InFlight; settle?: (kept: Kept | undefined) => void }>,
  ): Promise<void> {
    this.stats.warmFetches += 1;
    this.stats.warmed += marks.length;
    this.options.metrics?.countUserCache("warmed", marks.length);
    let response: GatewayResponse | undefined;
    try {
      response = await inner.process(
        warmingFetch(
          query,
          marks.map((m) => m.id),
        ),
      );
    } catch (error) {
      this.warmFailed(error);
    }
    const entities = response && !response.errors?.length ? entitiesOf(response, marks.length) : undefined;
    if (response && !entities) this.warmFailed(response.errors?.[0]);
    else if (entities) this.warmFailureTold = false;
    const cacheControl = response?.http?.headers.get("cache-control") ?? null;
    const expiresAt = performance.now() + this.heldKeepMs();
    for (const [place, { id, mark, settle }] of marks.entries()) {
      const entity = entities?.[place];
      const byText = this.users.get(id);
      // Dropped while in flight (the user changed, the channel was lost): never kept.
      const unchanged = byText?.get(key) === mark;
      const kept: Kept | undefined = entity
        ? { entity: copyJson(entity), cacheControl, expiresAt }
        : undefined;
      if (unchanged && kept) byText!.set(key, kept);
      else if (unchanged && settle) this.dropSlot(id, key);
      settle?.(kept);
    }
    this.stats.warmSettled += 1;
  }

  private warmFailed(error: unknown): void {
    this.stats.warmFailures += 1;
    this.options.metrics?.countUserCache("warm_failed", 1);
    if (this.warmFailureTold) return;
    this.warmFailureTold = true;
    this.options.logger?.warn({ err: error }, "could not warm users' public fields; fetched on demand");
  }

  /** The supergraph fetch texts are read on; what was kept for the previous one goes. */
  setSupergraph(supergraph: SupergraphVersion): void {
    this.supergraph = supergraph;
    this.texts.clear();
    this.users.clear();
    this.warmQueues.clear();
    this.loaders = new WeakMap();
  }

  /** Users with something kept or in flight. */
  size(): number {
    return this.users.size;
  }

  /** Users' data source behind this cache. */
  wrap(inner: GraphQLDataSource<GatewayContext>): CachedDataSource {
    this.inner = inner;
    return { process: (options) => this.process(inner, options), uncached: inner };
  }

  private async process(
    inner: GraphQLDataSource<GatewayContext>,
    options: ProcessOptions,
  ): Promise<GatewayResponse> {
    if (!this.options.userChanges?.live || this.options.keepMs <= 0) return inner.process(options);
    const text = this.publicText(options.request.query);
    const variables = options.request.variables ?? {};
    const representations = variables.representations;
    const ids = text === undefined ? undefined : userIdsOf(representations, true);
    // Only `representations` may travel in a batch: another variable could differ between fetches.
    if (text === undefined || ids === undefined || Object.keys(variables).length !== 1)
      return inner.process(options);

    const now = performance.now();
    /** Per representation: a kept entity, one in flight elsewhere, or its place among `missing`. */
    const slots: Array<Kept | Promise<Kept | undefined> | number> = [];
    const missing: Asked[] = [];
    const missingIndex = new Map<string, number>();
    for (const [i, id] of ids.entries()) {
      const own = missingIndex.get(id);
      if (own !== undefined) {
        slots.push(own);
        continue;
      }
      let byText = this.users.get(id);
      const slot = byText?.get(text);
      if (slot && "pending" in slot) slots.push(slot.pending);
      else if (slot && slot.expiresAt > now) slots.push(slot);
      else {
        let settle!: (kept: Kept | undefined) => void;
        const inFlight: InFlight = { pending: new Promise((resolve) => (settle = resolve)) };
        if (!byText) {
          this.users.set(id, (byText = new Map()));
          if (this.users.size > this.options.maxUsers) this.users.delete(this.users.keys().next().value!);
        }
        byText.set(text, inFlight);
        const place = missing.length;
        missing.push({
          id,
          representation: (representations as unknown[])[i],
          options,
          settle: settleOnce(settle),
        });
        missingIndex.set(id, place);
        slots.push(place);
      }
    }
    this.count("hit", ids.length - missing.length);
    this.count("miss", missing.length);

    let answers: Answered[] | undefined;
    if (missing.length > 0) {
      // Every fetch's misses of this turn of the loop go in one fetch (as the viewer's own fetch
      // would have, a failure to reach Users is thrown).
      const loader = this.loaderFor(inner, text);
      let answered: Answered[];
      try {
        answered = await Promise.all(missing.map((asked) => loader.load(asked)));
      } catch (error) {
        const partial = await keptDespite(error, slots);
        if (!partial) throw error;
        if ("incomingRequestContext" in options) {
          for (const header of partial.policies) restrictCachePolicy(options.incomingRequestContext, header);
        }
        return partial.response;
      }
      answers = answered;
      if (answered.some((answer) => !answer.batch.entities)) {
        // Asked as nobody and fetched whole: the answer is the one it would have had as it came.
        const whole = wholeBatch(answered, ids.length);
        const asked = options.context as Partial<GatewayContext>;
        if (!asked.authorization && whole) return whole.response;
        return this.asItCame(inner, options, ids.length);
      }
    }

    const viewerId = (options.context as GatewayContext).viewer?.userId.toLowerCase();
    const entities: Array<Entity | null> = [];
    const policies = new Set<string | null>();
    for (const [i, slot] of slots.entries()) {
      let kept: Kept | undefined;
      if (typeof slot === "number") {
        const { batch, place } = answers![slot]!;
        const entity = batch.entities![place]!;
        if (entity === null && ids[i] === viewerId) return this.asItCame(inner, options, ids.length);
        policies.add(batch.cacheControl);
        entities.push(entity);
        continue;
      }
      if (slot instanceof Promise) kept = await slot;
      else kept = slot;
      // Joined a fetch whose answer cannot be used (null, errors): this one is sent as it came.
      if (!kept) return this.asItCame(inner, options, ids.length);
      policies.add(kept.cacheControl);
      entities.push(copyJson(kept.entity));
    }
    if ("incomingRequestContext" in options) {
      for (const header of policies) restrictCachePolicy(options.incomingRequestContext, header);
    }
    // Every representation missed, in order, once, and the batch held nothing else: Users' own answer.
    const whole = answers && wholeBatch(answers, ids.length);
    if (whole) return whole.response;
    return { data: { _entities: entities } };
  }

  /** The loader gathering the misses of `text` sent through `inner` in this turn of the loop. */
  private loaderFor(inner: GraphQLDataSource<GatewayContext>, text: string): DataLoader<Asked, Answered> {
    let byText = this.loaders.get(inner);
    if (!byText) this.loaders.set(inner, (byText = new Map()));
    let loader = byText.get(text);
    if (!loader) {
      loader = new DataLoader<Asked, Answered>((asked) => this.fetchBatch(inner, text, asked), {
        cache: false,
        maxBatchSize: this.options.maxBatch ?? 100,
        // Misses of every request and event handled in this turn of the loop (not only this tick).
        batchScheduleFn: (send) => setImmediate(send),
      });
      byText.set(text, loader);
    }
    return loader;
  }

  /**
   * One fetch as nobody of the representations `asked`, with the first fetch's text: what it
   * answers non-null is kept, and every representation is told its place in the answer.
   */
  private async fetchBatch(
    inner: GraphQLDataSource<GatewayContext>,
    text: string,
    asked: readonly Asked[],
  ): Promise<Answered[]> {
    const settleAll = (kept?: Kept) => {
      for (const a of asked) a.settle(kept);
    };
    const first = asked[0]!.options;
    this.stats.fetches += 1;
    let response: GatewayResponse;
    try {
      response = await inner.process({
        ...first,
        request: {
          ...first.request,
          variables: { ...first.request.variables, representations: asked.map((a) => a.representation) },
        },
        context: asNobody(first.context as GatewayContext),
      });
    } catch (error) {
      this.forget(asked, text);
      settleAll(undefined);
      throw error;
    }
    const entities = response.errors?.length ? undefined : entitiesOf(response, asked.length);
    const cacheControl = response.http?.headers.get("cache-control") ?? null;
    const expiresAt = performance.now() + this.options.keepMs;
    for (const [place, a] of asked.entries()) {
      const entity = entities?.[place];
      const byText = this.users.get(a.id);
      const current = byText?.get(text);
      if (!entity) {
        if (current && "pending" in current) this.dropSlot(a.id, text);
        a.settle(undefined);
        continue;
      }
      const kept: Kept = { entity: copyJson(entity), cacheControl, expiresAt };
      // Dropped while in flight (the user changed, the channel was lost): answered, never kept.
      if (current && "pending" in current) byText!.set(text, kept);
      a.settle(kept);
    }
    const batch: Batch = { response, entities, cacheControl, size: asked.length };
    return asked.map((_, place) => ({ batch, place }));
  }

  /** The fetch as it came (with the viewer's token), answered as it answers. */
  private asItCame(
    inner: GraphQLDataSource<GatewayContext>,
    options: ProcessOptions,
    count: number,
  ): Promise<GatewayResponse> {
    this.count("owner", count);
    return inner.process(options);
  }

  private forget(missing: ReadonlyArray<{ id: string }>, text: string): void {
    for (const { id } of missing) {
      const current = this.users.get(id)?.get(text);
      if (current && "pending" in current) this.dropSlot(id, text);
    }
  }

  private dropSlot(id: string, text: string): void {
    const byText = this.users.get(id);
    byText?.delete(text);
    if (byText?.size === 0) this.users.delete(id);
  }

  private count(outcome: "hit" | "miss" | "owner", count: number): void {
    if (count === 0) return;
    if (outcome === "hit") this.stats.hits += count;
    else if (outcome === "miss") this.stats.misses += count;
    else this.stats.owner += count;
    this.options.metrics?.countUserCache(outcome, count);
  }

  /** The fetch's unnamed text when it selects only public fields of an entity, else undefined. */
  private publicText(query: string | undefined): string | undefined {
    const supergraph = this.supergraph;
    if (query === undefined || !supergraph) return undefined;
    let known = this.texts.get(query);
    if (known === undefined) {
      known = isPublicEntityFetch(query, supergraph.schema)
        ? `${supergraph.version}\0${withoutOperationName(query)}`
        : null;
      if (this.texts.size >= 5_000) this.texts.clear();
      this.texts.set(query, known);
    }
    return known ?? undefined;
  }
}

/** The batch when it was this fetch's alone and held all its `count` representations, in order. */
function wholeBatch(answers: readonly Answered[], count: number): Batch | undefined {
  const batch = answers[0]?.batch;
  if (!batch || answers.length !== count || batch.size !== count) return undefined;
  return answers.every((answer) => answer.batch === batch) ? batch : undefined;
}

/** A settle that only counts the first time (a forgotten fetch may be settled twice). */
function settleOnce(settle: (kept: Kept | undefined) => void): (kept: Kept | undefined) => void {
  let done = false;
  return (kept) => {
    if (done) return;
    done = true;
    settle(kept);
  };
}

/**
 * The context of a fetch sent as nobody: no token, no client address, a request id of its own
 * (an answer kept for everyone must not be tied to, or counted against, whoever asked first).
 */
function asNobody(context: GatewayContext): GatewayContext {
  const requestId = requestIdFrom(undefined);
  context.logger.debug({ publicFetchRequestId: requestId }, "public user fetch");
  return {
    requestId,
    logger: context.logger.child({ requestId }),
    viewer: null,
    authorization: null,
  } as Partial<GatewayContext> as GatewayContext;
}

/**
 * A warming fetch of `ids` as nobody: named so that Users' logs tell it from a client's, with
 * no token, address or client request id, and no logger (a failure is told once, by the cache).
 */
function warmingFetch(query: string, ids: readonly string[]): ProcessOptions {
  return {
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
    request: {
      query: query.replace(/^\s*query\b(\s+[_A-Za-z][_0-9A-Za-z]*)?/, "query WarmPublicUsers"),
      variables: { representations: ids.map((id) => ({ __typename: "User", id })) },
    },
    incomingRequestContext: {},
    context: { requestId: requestIdFrom(undefined), viewer: null, authorization: null },
  } as unknown as ProcessOptions;
}

/** The answer's entities when it holds one object or null per representation; else undefined. */
function entitiesOf(response: GatewayResponse, count: number): Array<Entity | null> | undefined {
  const entities = (response.data as { _entities?: unknown } | null | undefined)?._entities;
  if (!Array.isArray(entities) || entities.length !== count) return undefined;
  for (const entity of entities) {
    if (entity !== null && (typeof entity !== "object" || Array.isArray(entity))) return undefined;
  }
  return entities as Array<Entity | null>;
}

/** Failures to reach Users after which the users already kept are still answered. */
const UNREACHABLE: ReadonlySet<unknown> = new Set([
  ErrorCode.UPSTREAM_UNAVAILABLE,
  ErrorCode.UPSTREAM_TIMEOUT,
]);

/**
 * When Users could not be reached for the misses: the kept users answered, every other one null
 * with the failure's error at its `_entities` index (so a page shows the senders the gateway holds
 * and flags the rest). Undefined when nothing is kept or the failure is not a catalogued outage.
 */
async function keptDespite(
  error: unknown,
  slots: ReadonlyArray<Kept | Promise<Kept | undefined> | number>,
): Promise<{ response: GatewayResponse; policies: Set<string | null> } | undefined> {
  if (!(error instanceof GraphQLError) || !UNREACHABLE.has(error.extensions.code)) return undefined;
  const entities: Array<Entity | null> = [];
  const policies = new Set<string | null>();
  const errors: Array<{
    message: string;
    path: Array<string | number>;
    extensions: Record<string, unknown>;
  }> = [];
  for (const [i, slot] of slots.entries()) {
    const kept = typeof slot === "number" ? undefined : await slot;
    entities.push(kept ? copyJson(kept.entity) : null);
    if (kept) policies.add(kept.cacheControl);
    else errors.push({ message: error.message, path: ["_entities", i], extensions: { ...error.extensions } });
  }
  if (errors.length === slots.length) return undefined;
  return { response: { data: { _entities: entities }, errors }, policies };
}

import {
  executeQueryPlan,
  type GraphQLDataSource,
  type GraphQLDataSourceProcessOptions,
  type ServiceMap,
} from "@apollo/gateway";
import type { FetchNode, PlanNode, QueryPlan } from "@apollo/query-planner";
import type { Logger, Viewer } from "@hv/kit";
import { GraphQLError, type ExecutionResult, type GraphQLSchema } from "graphql";
import type { GatewayContext } from "../subgraph-data-source";
import { digestKey } from "./digest";
import {
  directPlanOf,
  requestKey,
  runDirect,
  type DirectPlan,
  type HeldAnswers,
  type PlanResult,
} from "./direct-entities";
import { PlanWalker, unsupportedNode, type RequestContext } from "../plan-walker";
import { compileShaping, completeCompiled, type CompiledShaping } from "../query-executor";
import type { PlannedSubscription } from "./planner";
import { SharedFetches, type SupergraphVersion } from "./shared-fetches";
import { ClientStream, type StreamOwner } from "./stream";
import type { UserChanges } from "./user-changes";
import { interrupted, type UpstreamEvent, type UpstreamListener, type UpstreamPool } from "./upstream";

/** The service name under which each upstream event enters the executor as if fetched. */
const EVENT_SOURCE = "__subscription_event__";

/** Who is subscribing: the verified viewer and the header their operations carry upstream. */
export interface Subscriber {
  viewer: Viewer | null;
  authorization: string | null;
  requestId: string;
  clientIp: string;
  /** The subscription's logger, made on first use (most subscriptions never log). */
  logger(): Logger;
}

/** A document's per-event plan (`primary` from the event, then `rest`) as PlanWalker runs it, and its shaping. */
interface EventShaping extends CompiledShaping {
  node: PlanNode;
}

/** A result computed once for every feed that got the same event, and who it may not be right for. */
export interface SharedRun {
  result: ExecutionResult;
  /** Owners of entities a public fetch of the run did not show (SharedFetches.watchOwners). */
  unsureOwners: ReadonlySet<string>;
}

/** Keeps a subscriber's public fields warm at one subgraph's data source while their feed is open. */
export interface SubscriberWarming {
  /** The subgraph whose entity fetches (in a feed's per-event plan) are kept warm. */
  readonly serviceName: string;
  hold(userId: string, queries: readonly string[]): void;
  release(userId: string): void;
}

export interface SubscriptionHubOptions {
  dataSources: Record<string, GraphQLDataSource<GatewayContext>>;
  upstream: UpstreamPool;
  /** How long a per-event entity fetch is shared after it answered. */
  fetchShareMs: number;
  /** How long a fetch of users' public fields is kept while `userChanges` is live (dropped when a user changes). */
  userCacheMs: number;
  /** Most per-event fetch answers held at once. */
  maxCachedFetches: number;
  /** Users' change channel; without it nothing is kept beyond `fetchShareMs`. */
  userChanges?: UserChanges | undefined;
  /** Told of each signed-in feed's viewer while the feed is open (their entity is the one they send as). */
  warming?: SubscriberWarming | undefined;
  /** false: every event through executeQueryPlan, never direct-entities.ts (for comparison in benches). */
  directEntities?: boolean;
  /** false: events shaped by computeResponse and run by executeQueryPlan, never PlanWalker (for comparison in benches). */
  compiledEvents?: boolean;
  /** Results queued for a client that does not read before its subscription is ended. */
  maxQueuedPerSubscription: number;
  /**
   * Events of one feed being resolved at once (a slow subgraph makes them pile up); one more ends
   * the feed's subscriptions with SUBSCRIPTION_INTERRUPTED (they resubscribe and catch up).
   */
  maxInFlightPerFeed: number;
  logger: Logger;
}

export interface HubStats {
  feeds: number;
  clientSubscriptions: number;
  /** Upstream events received since start (one per shared upstream subscription and event). */
  events: number;
  /** Plans run for events (feeds with a viewer-independent plan share one run per distinct event). */
  eventRuns: number;
  /** Of those, runs resolved without @apollo/gateway's executor (direct-entities.ts). */
  eventRunsDirect: number;
  /** Runs through PlanWalker and the compiled shaper / through executeQueryPlan (what the other two do not take). */
  eventRunsWalked: number;
  eventRunsApollo: number;
  /** Shapings left to computeResponse (an answer the compiled shaper does not take). */
  eventShapingsApollo: number;
  /** Per-event entity fetches sent to subgraphs / answered from another subscriber's fetch. */
  fetchesSent: number;
  fetchesShared: number;
  /** Fetch answers dropped because their user changed; answers held now. */
  fetchesInvalidated: number;
  fetchesHeld: number;
  /** Whether Users' change channel is subscribed (users' public fields are kept only then). */
  userChangesLive: boolean;
}

/**
 * A feed is one client operation (document, variables) for one identity: subscribers with the same
 * feed get the very same results. It listens to an upstream subscription (shared further between
 * feeds whose `primary` fetch is identical) and, per event, runs the plan's `rest` once through
 * @apollo/gateway's own executor. It is its upstream's listener and its streams' owner itself (no
 * closures per subscription).
 */
class Feed implements UpstreamListener, StreamOwner {
  readonly streams = new Set<ClientStream>();
  private tail: Promise<void> = Promise.resolve();
  private leaveUpstream: () => void = () => undefined;
  private readonly plan: QueryPlan;
  private readonly subscriber: Subscriber;
  private closed = false;
  /** Whether the viewer is held warm (SubscriberWarming) until the feed closes. */
  warmHeld = false;
  /** Events whose `rest` is running now. */
  private inFlight = 0;

  constructor(
    readonly key: string,
    private readonly hub: SubscriptionHub,
    private readonly planned: PlannedSubscription,
    subscriber: Subscriber,
  ) {
    this.plan = hub.planOf(planned);
    this.subscriber = subscriber;
  }

  /** The context this feed's own runs carry (its logger made now, on first use). */
  private context(): GatewayContext {
    const { subscriber } = this;
    return {
      requestId: subscriber.requestId,
      logger: subscriber.logger(),
      viewer: subscriber.viewer,
      clientIp: subscriber.clientIp,
      authorization: subscriber.authorization,
    };
  }

  start(): void {
    const viewerId = this.subscriber.viewer?.userId;
    if (viewerId !== undefined) this.warmHeld = this.hub.holdWarm(viewerId, this.planned);
    const { primary } = this.planned;
    const variables: Record<string, unknown> = {};
    for (const name of primary.variableUsages ?? []) {
      if (this.planned.variables[name] !== undefined) variables[name] = this.planned.variables[name];
    }
    this.leaveUpstream = this.hub.upstream.subscribe(
      {
        serviceName: primary.serviceName,
        query: primary.operation,
        operationName: primary.operationName,
        variables,
        authorization: this.subscriber.authorization,
        requestId: this.subscriber.requestId,
      },
      this,
    );
  }

  error(errors: GraphQLError[]): void {
    const error = errors[0] ?? interrupted("unknown");
    this.finish((stream) => stream.fail(error));
  }

  // Chat's streams never end by themselves: a subgraph that completes one (an instance shutting
  // down, a redeploy) has not told the client everything, so the client must catch up.
  complete(): void {
    const error = interrupted(`the ${this.planned.primary.serviceName} subgraph ended the stream`);
    this.finish((stream) => stream.fail(error));
  }

  overflowError(): GraphQLError {
    return interrupted("the client did not read its events fast enough");
  }

  returned(stream: ClientStream): void {
    this.hub.streamReturned();
    this.remove(stream);
  }

  /** Results are delivered in event order, though `rest` runs concurrently for successive events. */
  next(event: UpstreamEvent): void {
    if (this.closed) return;
    this.hub.counters.events += 1;
    if (this.inFlight >= this.hub.maxInFlightPerFeed) {
      // A subgraph that stops answering must not make the gateway hold an unbounded pile of
      // pending plans: give up on this feed now (what is pending is dropped; the client catches up).
      this.subscriber
        .logger()
        .warn(
          { inFlight: this.inFlight },
          "subscription feed interrupted: too many events waiting to be resolved",
        );
      this.closed = true;
      this.hub.forget(this);
      this.leaveUpstream();
      const error = interrupted("too many events were waiting to be resolved");
      for (const stream of [...this.streams]) stream.fail(error);
      this.streams.clear();
      return;
    }
    this.inFlight += 1;
    const result = this.execute(event).finally(() => (this.inFlight -= 1));
    this.tail = Promise.all([this.tail, result]).then(([, value]) => {
      for (const stream of this.streams) stream.push(value);
    });
  }

  private finish(action: (stream: ClientStream) => void): void {
    if (this.closed && this.streams.size === 0) return;
    this.closed = true;
    this.hub.forget(this);
    void this.tail.then(() => {
      for (const stream of [...this.streams]) action(stream);
      this.streams.clear();
    });
  }

  /**
   * One event's result. When every fetch of `rest` selects only public fields, the result is the
   * same for every viewer who owns no entity the event names: it is computed once, as nobody, for
   * all feeds that get the same event. An owner (the sender's own echo) takes it too when every
   * public fetch showed their entity (PUBLIC_FIELDS: an owner then sees what everyone sees) and
   * nothing failed; otherwise (a hidden profile, shown to its owner only) their feed runs its own.
   */
  private async execute(event: UpstreamEvent): Promise<ExecutionResult> {
    if (!this.hub.isViewerIndependent(this.planned)) return this.run(event, this.context());
    const text = JSON.stringify(event);
    const key = `${this.planned.supergraph.version}\0${this.planned.planKey}\0${JSON.stringify(this.planned.variables)}\0${text}`;
    const shared = await this.hub.runOnce(key, async () => {
      const context: GatewayContext = {
        ...this.context(),
        viewer: null,
        authorization: null,
      };
      const unsureOwners = this.hub.watchOwners(context);
      return { result: await this.run(event, context), unsureOwners };
    });
    const viewerId = this.subscriber.viewer?.userId.toLowerCase();
    if (viewerId === undefined || !text.toLowerCase().includes(viewerId)) return shared.result;
    if (!shared.result.errors?.length && !shared.unsureOwners.has(viewerId)) return shared.result;
    return this.run(event, this.context());
  }

  viewerId(): string | undefined {
    return this.subscriber.viewer?.userId;
  }

  private run(event: UpstreamEvent, context: GatewayContext): Promise<ExecutionResult> {
    return this.hub.resolve(this.planned, this.plan, event, context);
  }

  add(stream: ClientStream): void {
    this.streams.add(stream);
  }

  remove(stream: ClientStream): void {
    this.streams.delete(stream);
    if (this.streams.size === 0 && !this.closed) {
      this.closed = true;
      this.hub.forget(this);
      this.leaveUpstream();
    }
  }
}

/**
 * The executor's services for one event: the event itself as `EVENT_SOURCE`, and the shared data
 * sources, which answer what a direct attempt already asked from there (never fetched twice).
 */
function executorServices(
  sources: Record<string, GraphQLDataSource<GatewayContext>>,
  event: UpstreamEvent,
  held: HeldAnswers,
): ServiceMap {
  const serviceMap: ServiceMap = Object.create(null) as ServiceMap;
  Object.assign(serviceMap, sources);
  serviceMap[EVENT_SOURCE] = {
    process: async () => {
      const response: Awaited<ReturnType<GraphQLDataSource["process"]>> = {};
      if (event.data !== undefined) response.data = event.data;
      if (event.errors) response.errors = event.errors;
      return response;
    },
  };
  for (const [name, source] of held.size > 0 ? Object.entries(sources) : []) {
    serviceMap[name] = {
      process: (options: GraphQLDataSourceProcessOptions<GatewayContext>) => {
        const key = requestKey(name, options.request.query ?? "", options.request.variables ?? {});
        const answer = held.get(key);
        if (!answer) return source.process(options);
        held.delete(key);
        return answer;
      },
    };
  }
  return serviceMap;
}

/** The executor's null-propagation errors, which it returns in `extensions` when nothing else failed. */
function valueCompletionErrors(extensions: Record<string, unknown> | undefined): GraphQLError[] {
  const completion = extensions?.valueCompletion;
  return Array.isArray(completion)
    ? completion.filter((e): e is GraphQLError => e instanceof GraphQLError)
    : [];
}

/** Client subscriptions → shared feeds → shared upstream subscriptions. */
export class SubscriptionHub {
  readonly upstream: UpstreamPool;
  readonly maxInFlightPerFeed: number;
  readonly counters = { events: 0, runs: 0, directRuns: 0, walkedRuns: 0, apolloRuns: 0, apolloShapings: 0 };
  private readonly countApolloShaping = (): void => {
    this.counters.apolloShapings += 1;
  };
  /** Results of events shared by feeds (viewer-independent plans), while in flight and `fetchShareMs` to twice that after. */
  private readonly eventRuns = new Map<string, Promise<SharedRun>>();
  /** Runs settled since the last sweep, and in the sweep before: the next sweep drops the older ones. */
  private settledRuns: Array<[string, Promise<SharedRun>]> = [];
  private expiringRuns: Array<[string, Promise<SharedRun>]> = [];
  /** One timer for all kept runs, every `fetchShareMs` while any is kept. */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly independentPlans = new WeakMap<PlanNode, boolean>();
  /** Per planned document (its `primary` node): the direct plan of its `rest`, or null when it has none. */
  private readonly directPlans = new WeakMap<FetchNode, DirectPlan | null>();
  /** The shared data sources of the current supergraph version. */
  private sources: { version: string; map: Record<string, GraphQLDataSource<GatewayContext>> } | undefined;
  /** A plan walker per supergraph (each keeps its fetch nodes' representation builders). */
  private readonly walkers = new WeakMap<GraphQLSchema, PlanWalker>();
  /** Per planned document (its `primary` node): its per-event plan and compiled shaping, or null when Apollo runs it. */
  private readonly compiledPlans = new WeakMap<FetchNode, EventShaping | null>();
  /** The plan each feed runs per event, one per planned document (its `primary` node). */
  private readonly plans = new WeakMap<FetchNode, QueryPlan>();
  /** Per planned document (its `primary` node): the fetch texts its subscribers are held warm for. */
  private readonly warmQueries = new WeakMap<FetchNode, readonly string[]>();
  private readonly fetches: SharedFetches;
  private readonly feeds = new Map<string, Feed>();
  private clientSubscriptions = 0;

  constructor(private readonly options: SubscriptionHubOptions) {
    this.upstream = options.upstream;
    this.maxInFlightPerFeed = options.maxInFlightPerFeed;
    this.fetches = new SharedFetches({
      shareMs: options.fetchShareMs,
      userCacheMs: options.userCacheMs,
      maxEntries: options.maxCachedFetches,
      userChanges: options.userChanges,
    });
    // A shared event result holds users' fields: a change must show on the next event.
    options.userChanges?.onChange(() => {
      this.eventRuns.clear();
      this.settledRuns = [];
      this.expiringRuns = [];
    });
  }

  /** `primary` (answered by the event itself) then `rest`: what runs per event, shared by the document's feeds. */
  planOf(planned: PlannedSubscription): QueryPlan {
    let plan = this.plans.get(planned.primary);
    if (!plan) {
      const primary: FetchNode = { ...planned.primary, serviceName: EVENT_SOURCE };
      const node: PlanNode = planned.rest ? { kind: "Sequence", nodes: [primary, planned.rest] } : primary;
      plan = { kind: "QueryPlan", node };
      this.plans.set(planned.primary, plan);
    }
    return plan;
  }

  watchOwners(context: GatewayContext): ReadonlySet<string> {
    return this.fetches.watchOwners(context);
  }

  /** The gateway's data sources (made when it loads the supergraph), each behind the sharing map. */
  sharedDataSources(supergraph: SupergraphVersion): Record<string, GraphQLDataSource<GatewayContext>> {
    if (this.sources?.version === supergraph.version) return this.sources.map;
    const map: Record<string, GraphQLDataSource<GatewayContext>> = {};
    for (const [name, source] of Object.entries(this.options.dataSources))
      map[name] = this.fetches.wrap(name, source, supergraph);
    this.sources = { version: supergraph.version, map };
    return map;
  }

  /**
   * The document's per-event plan for PlanWalker and its compiled shaping, made once; undefined
   * when executeQueryPlan runs it (a node the walker does not run, an operation not compiled).
   */
  compiledOf(planned: PlannedSubscription, plan: QueryPlan): EventShaping | undefined {
    let known = this.compiledPlans.get(planned.primary);
    if (known === undefined) {
      const node = plan.node;
      const shaping =
        !node || node.kind === "Subscription" || unsupportedNode(node)
          ? undefined
          : compileShaping(planned.supergraph.pieces.apiSchema, planned.operationContext);
      known = shaping && node && node.kind !== "Subscription" ? { node, ...shaping } : null;
      this.compiledPlans.set(planned.primary, known);
    }
    return known ?? undefined;
  }

  private walkerOf(planned: PlannedSubscription): PlanWalker {
    const schema = planned.supergraph.pieces.supergraphGraphQLSchema;
    let walker = this.walkers.get(schema);
    if (!walker) {
      // Its own service map is never used: each run passes the event's (executorServices).
      walker = new PlanWalker({}, schema);
      this.walkers.set(schema, walker);
    }
    return walker;
  }

  /** The document's direct plan (direct-entities.ts), made once; undefined when its `rest` has none. */
  directPlanOf(planned: PlannedSubscription): DirectPlan | undefined {
    let known = this.directPlans.get(planned.primary);
    if (known === undefined) {
      const supergraph = {
        version: planned.supergraph.version,
        schema: planned.supergraph.pieces.supergraphGraphQLSchema,
      };
      known =
        directPlanOf({
          primary: planned.primary,
          rest: planned.rest,
          operationContext: planned.operationContext,
          apiSchema: planned.supergraph.pieces.apiSchema,
          isPublic: (fetch) => this.fetches.isPublicOperation(fetch.operation, supergraph),
        }) ?? null;
      if (known && this.options.compiledEvents === false) known = { ...known, shaper: undefined };
      this.directPlans.set(planned.primary, known);
    }
    return known ?? undefined;
  }

  /** Whether `rest` fetches only public fields (nothing in it depends on who subscribed, unless they are named in the event). */
  isViewerIndependent(planned: PlannedSubscription): boolean {
    const rest = planned.rest;
    if (!rest) return false;
    let known = this.independentPlans.get(rest);
    if (known === undefined) {
      const supergraph = {
        version: planned.supergraph.version,
        schema: planned.supergraph.pieces.supergraphGraphQLSchema,
      };
      const publicOnly = (node: PlanNode | undefined): boolean => {
        if (!node) return true;
        switch (node.kind) {
          case "Fetch":
            return this.fetches.isPublicOperation(node.operation, supergraph);
          case "Flatten":
            return publicOnly(node.node);
          case "Sequence":
          case "Parallel":
            return node.nodes.every(publicOnly);
          case "Condition":
            return publicOnly(node.ifClause) && publicOnly(node.elseClause);
          default:
            return false;
        }
      };
      known = publicOnly(rest);
      this.independentPlans.set(rest, known);
    }
    return known;
  }

  /** The result under `key`: joined while in flight (and `fetchShareMs` to twice that after), else computed by `run`. */
  runOnce(key: string, run: () => Promise<SharedRun>): Promise<SharedRun> {
    const held = this.eventRuns.get(key);
    if (held) return held;
    const result = run();
    this.eventRuns.set(key, result);
    const drop = () => this.dropRun(key, result);
    void result.then((value) => {
      if (value.result.errors?.length || this.options.fetchShareMs <= 0) return drop();
      this.settledRuns.push([key, result]);
      if (!this.sweepTimer) {
        this.sweepTimer = setInterval(() => this.sweepRuns(), this.options.fetchShareMs);
        this.sweepTimer.unref();
      }
    }, drop);
    return result;
  }

  private dropRun(key: string, result: Promise<SharedRun>): void {
    if (this.eventRuns.get(key) === result) this.eventRuns.delete(key);
  }

  /** Drops the runs settled before the previous sweep; stops when none is kept. */
  private sweepRuns(): void {
    for (const [key, result] of this.expiringRuns) this.dropRun(key, result);
    this.expiringRuns = this.settledRuns;
    this.settledRuns = [];
    if (this.expiringRuns.length === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /** One event's result for `planned`, resolved as `context`'s viewer (who is null for a shared run). */
  async resolve(
    planned: PlannedSubscription,
    plan: QueryPlan,
    event: UpstreamEvent,
    context: GatewayContext,
  ): Promise<ExecutionResult> {
    this.counters.runs += 1;
    const { version, pieces } = planned.supergraph;
    const sources = this.sharedDataSources({ version, schema: pieces.supergraphGraphQLSchema });
    const requestContext = {
      request: {
        variables: planned.variables,
        ...(planned.operationName ? { operationName: planned.operationName } : {}),
      },
      context,
      logger: context.logger,
      metrics: {},
      document: planned.document,
      operationName: planned.operationName ?? null,
      operation: planned.operationContext.operation,
    } as unknown as Parameters<typeof executeQueryPlan>[2];
    try {
      const direct = this.options.directEntities === false ? undefined : this.directPlanOf(planned);
      const held: HeldAnswers = new Map();
      let result: PlanResult | undefined;
      if (direct) {
        result = await runDirect(
          direct,
          event,
          planned.variables,
          (name, options) => sources[name]!.process(options),
          { context, incomingRequestContext: requestContext },
          held,
          this.countApolloShaping,
        );
        if (result) this.counters.directRuns += 1;
      }
      const compiled =
        result || this.options.compiledEvents === false ? undefined : this.compiledOf(planned, plan);
      if (!result && compiled) {
        this.counters.walkedRuns += 1;
        const data = Object.create(null) as Record<string, unknown>;
        const services = executorServices(sources, event, held);
        const errors = await this.walkerOf(planned).run(
          compiled.node,
          compiled.operation,
          requestContext as unknown as RequestContext,
          data,
          services,
        );
        result = completeCompiled(compiled, data, planned.variables, errors, {
          logger: context.logger,
          onApolloShaping: this.countApolloShaping,
        }) as PlanResult;
      }
      if (!result) {
        this.counters.apolloRuns += 1;
        result = await executeQueryPlan(
          plan,
          executorServices(sources, event, held),
          requestContext,
          planned.operationContext,
          pieces.supergraphGraphQLSchema,
          pieces.apiSchema,
        );
      }
      const out: ExecutionResult = { data: (result.data ?? null) as Record<string, unknown> | null };
      // A null where the schema promises none (a hidden sender) is reported, as the spec wants,
      // not silently propagated: the executor returns those errors as `valueCompletion` alone.
      const errors = [...(result.errors ?? []), ...valueCompletionErrors(result.extensions)];
      // A fetch that threw (a subgraph unreachable) arrives as a plain Error: an internal error to clients.
      if (errors.length) {
        out.errors = errors.map((e) =>
          e instanceof GraphQLError
            ? e
            : new GraphQLError(String((e as Error).message), { originalError: e as Error }),
        );
      }
      return out;
    } catch (error) {
      context.logger.error({ err: error }, "could not resolve a subscription event");
      return {
        data: null,
        errors: [new GraphQLError("Could not resolve this event", { originalError: error as Error })],
      };
    }
  }

  forget(feed: Feed): void {
    if (this.feeds.get(feed.key) === feed) this.feeds.delete(feed.key);
    const viewerId = feed.viewerId();
    if (feed.warmHeld && viewerId !== undefined) this.options.warming?.release(viewerId);
    feed.warmHeld = false;
  }

  /** Holds `userId` warm for the Users fetches of the document's per-event plan; false when it has none. */
  holdWarm(userId: string, planned: PlannedSubscription): boolean {
    const warming = this.options.warming;
    if (!warming) return false;
    const queries = this.warmQueriesOf(planned, warming.serviceName);
    if (queries.length === 0) return false;
    warming.hold(userId, queries);
    return true;
  }

  /** The fetch texts to `serviceName` in the document's `rest`, found once per document. */
  private warmQueriesOf(planned: PlannedSubscription, serviceName: string): readonly string[] {
    let known = this.warmQueries.get(planned.primary);
    if (!known) {
      const found = new Set<string>();
      const collect = (node: PlanNode | undefined): void => {
        if (!node) return;
        switch (node.kind) {
          case "Fetch":
            if (node.serviceName === serviceName) found.add(node.operation);
            return;
          case "Flatten":
            return collect(node.node);
          case "Sequence":
          case "Parallel":
            return node.nodes.forEach(collect);
          case "Condition":
            collect(node.ifClause);
            return collect(node.elseClause);
          default:
            return;
        }
      };
      collect(planned.rest);
      known = [...found];
      this.warmQueries.set(planned.primary, known);
    }
    return known;
  }

  /** The client's results; the stream leaves its feed (and the feed its upstream) when returned. */
  subscribe(planned: PlannedSubscription, subscriber: Subscriber): ClientStream {
    // The supergraph version: after a reload, new subscribers get plans of the new one.
    const key = digestKey([
      planned.supergraph.version,
      planned.planKey,
      planned.variables,
      subscriber.authorization,
    ]);
    let feed = this.feeds.get(key);
    const isNew = !feed;
    if (!feed) {
      feed = new Feed(key, this, planned, subscriber);
      this.feeds.set(key, feed);
    }
    this.clientSubscriptions += 1;
    const stream = new ClientStream(this.options.maxQueuedPerSubscription, feed);
    feed.add(stream);
    if (isNew) feed.start();
    return stream;
  }

  /** A client stream left its feed. */
  streamReturned(): void {
    this.clientSubscriptions -= 1;
  }

  stats(): HubStats {
    return {
      feeds: this.feeds.size,
      clientSubscriptions: this.clientSubscriptions,
      events: this.counters.events,
      eventRuns: this.counters.runs,
      eventRunsDirect: this.counters.directRuns,
      eventRunsWalked: this.counters.walkedRuns,
      eventRunsApollo: this.counters.apolloRuns,
      eventShapingsApollo: this.counters.apolloShapings,
      fetchesSent: this.fetches.stats.sent,
      fetchesShared: this.fetches.stats.shared,
      fetchesInvalidated: this.fetches.stats.invalidated,
      fetchesHeld: this.fetches.size(),
      userChangesLive: this.options.userChanges?.live ?? false,
    };
  }

  async stop(): Promise<void> {
    await this.upstream.stop();
    this.fetches.clear();
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}

import { readFileSync } from "node:fs";
import { ApolloGateway, type GraphQLDataSource } from "@apollo/gateway";
import {
  apolloLogger,
  bearerAuthenticator,
  closeRedis,
  createAccessTokenVerifier,
  createProcessMetrics,
  createRedis,
  redisReadiness,
  revocationAssertions,
  SessionRevocations,
  shippedFile,
  SUBGRAPH_NAMES,
  startMetricsServer,
  startService,
  type GatewayConfig,
  type GatewayInterface,
  type Logger,
  type ProcessMetrics,
  type RunningService,
  type SubgraphName,
} from "@hv/kit";
import { createEdgeProtection, type PersistedQueryManifest } from "./protection";
import { socketOperations } from "./socket-operations";
import { SubgraphDataSource, vouchForRevocation, type GatewayContext } from "./subgraph-data-source";
import { createSubgraphFetcher } from "./subgraph-fetcher";
import { withQueryExecutor } from "./query-executor";
import { directOperations } from "./direct-operations";
import { PublicUserCache, type PublicUserCacheStats } from "./public-user-cache";
import { unauthenticatedStatusPlugin } from "./unauthenticated-status";
import { SubscriptionHub } from "./subscriptions/hub";
import { SubscriptionPlanner } from "./subscriptions/planner";
import { startSubscriptionEndpoint, type SubscriptionEndpoint } from "./subscriptions/server";
import { UpstreamPool } from "./subscriptions/upstream";
import { listenToUserChanges } from "./subscriptions/user-changes";

/** Composed from the subgraphs' SDL by `pnpm run compose`; CI fails when it is stale. */
export const SUPERGRAPH_PATH = shippedFile("gateway/supergraph.graphql");

function isSubgraphName(name: string): name is SubgraphName {
  return (SUBGRAPH_NAMES as readonly string[]).includes(name);
}

/** Tuning of subscriptions through the gateway (see the README, "Subscriptions through the gateway"). */
export const SUBSCRIPTION_DEFAULTS = {
  /** How long a per-event entity fetch (e.g. a sender's profile) is shared after it answered: the most it can be stale. */
  fetchShareMs: 1_000,
  /**
   * How long a fetch of users' public fields (a sender's displayName) is kept while Users' change
   * channel is subscribed: it is dropped as soon as one of its users changes, so this only bounds
   * what a lost publish could leave stale.
   */
  userCacheMs: 300_000,
  /**
   * How long a subscriber's warmed public fields are kept (fetched again at half of it while their
   * feed is open): a change drops them at once, so this too only bounds a lost publish.
   */
  heldUserCacheMs: 1_800_000,
  /** Most per-event fetch answers held at once (the oldest goes first). */
  maxCachedFetches: 100_000,
  /**
   * Most users whose public fields the gateway keeps for every Users entity fetch (queries,
   * mutations, events: gateway/src/public-user-cache.ts), each for `userCacheMs`; the first kept goes first.
   */
  maxCachedUsers: 100_000,
  /**
   * Whether a signed-in subscriber's own public fields are fetched into the user cache when their
   * feed opens, and kept fresh while it is open (their sends and their partners' events then need
   * no Users fetch).
   */
  warmSubscribers: true,
  /**
   * Ping interval to clients; a client that has not answered the previous ping by the next one is
   * dropped (found dead 25 to 50 s after it went). Why 25 s: docs/client-contract.md.
   */
  keepAliveMs: 25_000,
  /** Ping interval to the subgraphs (a few connections): one that misses a pong for this long is dropped. */
  upstreamKeepAliveMs: 12_000,
  /** How often an open connection's access token is verified again (logout, password change, ban). */
  revalidateMs: 60_000,
  maxSubscriptionsPerConnection: 50,
  /**
   * Queries and mutations over all sockets at once (admission to answer); one more is refused with
   * SERVICE_UNAVAILABLE, as a burst must not pile up on the subgraphs (HTTP's bound is the clients' pools).
   */
  maxSocketOperationsInFlight: 512,
  /** Results queued for a client that does not read before its subscription ends with SUBSCRIPTION_INTERRUPTED. */
  maxQueuedPerSubscription: 1_000,
  /** Events of one feed resolved at once (a slow subgraph piles them up); one more ends it with SUBSCRIPTION_INTERRUPTED. */
  maxInFlightPerFeed: 100,
  maxPayloadBytes: 64 * 1024,
  closeGraceMs: 1_000,
};

export interface GatewayOptions {
  /** Tests: serve this supergraph instead of gateway/supergraph.graphql. */
  supergraphSdl?: string;
  subscriptions?: Partial<typeof SUBSCRIPTION_DEFAULTS>;
  /** Tests: Redis key prefix of the blocklist, budgets and persisted queries (default `<EVENTS_PREFIX>:gw`). */
  protectionKeyPrefix?: string;
  /** Tests: the safelist's manifest instead of operations/persisted-query-manifest.json. */
  safelistManifest?: PersistedQueryManifest;
  /**
   * Conformance runs (scripts/federation-audit): serve any supergraph, fetching each subgraph at
   * the URL the supergraph names, whatever its name.
   */
  supergraphUrls?: boolean;
  /**
   * Tests: false has Apollo Server answer every operation (default: seen operations are answered
   * without its pipeline, gateway/src/direct-operations.ts).
   */
  directOperations?: boolean;
}

export interface RunningGateway extends RunningService {
  metrics: ProcessMetrics;
  /** GET /metrics on GATEWAY_METRICS_PORT (the private interface), e.g. http://127.0.0.1:4009/metrics. */
  metricsUrl: string;
  /** Counters of the subscription machinery (feeds, upstream subscriptions, shared fetches). */
  subscriptionStats(): ReturnType<SubscriptionHub["stats"]> & {
    upstream: ReturnType<UpstreamPool["stats"]>;
    connections: number;
    /** Queries and mutations over the sockets being run now. */
    socketOperationsInFlight: number;
  };
  /** The user cache's counts (representations) and the users it holds. */
  userCacheStats(): PublicUserCacheStats & { users: number; heldUsers: number };
  /** HTTP requests run before their admission answered, and how many of those it then refused. */
  admissionStats(): { early: number; earlyRefused: number };
  /** Operations answered without Apollo Server's pipeline (gateway/src/direct-operations.ts). */
  directAnswers(): number;
}

export async function start(
  config: GatewayConfig,
  logger: Logger,
  options: GatewayOptions = {},
): Promise<RunningGateway> {
  const supergraphSdl = options.supergraphSdl ?? readFileSync(SUPERGRAPH_PATH, "utf8");
  const tuning = { ...SUBSCRIPTION_DEFAULTS, ...options.subscriptions };
  let schemaLoaded = false;
  const dataSources: Record<string, GraphQLDataSource<GatewayContext>> = {};
  const metrics = createProcessMetrics("gateway", { logger });
  const userChanges = tuning.userCacheMs > 0 ? listenToUserChanges(config.redis, logger) : undefined;
  // Users' public fields for every Users entity fetch (README "Users' public fields kept at the gateway").
  const userCache = new PublicUserCache({
    keepMs: tuning.userCacheMs,
    heldKeepMs: tuning.heldUserCacheMs,
    maxUsers: tuning.maxCachedUsers,
    userChanges,
    metrics,
    logger: logger.child({ component: "user-cache" }),
  });
  const fetcher = createSubgraphFetcher(config.protection.subgraphTimeoutMs);
  // Unless this is set when it is constructed, @apollo/gateway reports usage to Apollo's servers
  // and, to label the report, probes the Alibaba, AWS, GCP and Azure metadata endpoints
  // (100.100.100.200, 169.254.169.254, metadata.google.internal). The gateway talks to its own
  // subgraphs and nothing else (test/e2e/gateway/no-phone-home.test.ts).
  process.env.APOLLO_TELEMETRY_DISABLED = "true";
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger: apolloLogger(logger),
    // The committed supergraph names default URLs; the configured ones win, so the same file
    // serves every environment.
    buildService: ({ name, url }) => {
      if (options.supergraphUrls && url) {
        return (dataSources[name] = new SubgraphDataSource({
          subgraphName: name,
          metrics,
          url,
          fetcher: fetcher.fetch,
        }));
      }
      if (!isSubgraphName(name)) throw new Error(`supergraph.graphql names an unknown subgraph "${name}"`);
      const source = new SubgraphDataSource({
        subgraphName: name,
        metrics,
        url: config.subgraphUrls[name],
        fetcher: fetcher.fetch,
      });
      // Conformance runs (above) serve other supergraphs, whose types PUBLIC_FIELDS does not describe.
      return (dataSources[name] = name === "users" ? userCache.wrap(source) : source);
    },
  });
  // Subscriptions are planned by Apollo's query planner on the same supergraph the gateway serves,
  // rebuilt whenever the gateway loads a new one.
  let planner: SubscriptionPlanner | undefined;
  const currentPlanner = (): SubscriptionPlanner => {
    if (!planner) throw new Error("the supergraph is not loaded yet");
    return planner;
  };
  let supergraphLoads = 0;
  gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl, apiSchema }) => {
    planner = new SubscriptionPlanner(coreSupergraphSdl);
    supergraphLoads += 1;
    userCache.setSupergraph({ version: String(supergraphLoads), schema: apiSchema });
    schemaLoaded = true;
  });
  const upstream = new UpstreamPool({
    urls: config.subgraphUrls,
    connectionsPerSubgraph: config.upstreamConnections,
    keepAliveMs: tuning.upstreamKeepAliveMs,
    logger: logger.child({ component: "upstream-subscriptions" }),
  });
  const hub = new SubscriptionHub({
    dataSources,
    upstream,
    fetchShareMs: tuning.fetchShareMs,
    userCacheMs: tuning.userCacheMs,
    maxCachedFetches: tuning.maxCachedFetches,
    userChanges,
    warming: tuning.warmSubscribers
      ? {
          serviceName: "users",
          hold: (userId, queries) => userCache.hold(userId, queries),
          release: (userId) => userCache.release(userId),
        }
      : undefined,
    maxQueuedPerSubscription: tuning.maxQueuedPerSubscription,
    maxInFlightPerFeed: tuning.maxInFlightPerFeed,
    logger,
  });
  let endpoint: SubscriptionEndpoint | undefined;
  metrics.observeSubscriptions(() => {
    const clients = hub.stats();
    const upstreams = upstream.stats();
    return {
      subscriptions: { client: clients.clientSubscriptions, upstream: upstreams.subscriptions },
      connections: { client: endpoint?.connections() ?? 0, upstream: upstreams.openConnections },
    };
  });
  // Tokens are verified once here at the edge (a bad one never reaches a subgraph) with the keys
  // the users subgraph publishes; revocations live in Redis.
  const redis = createRedis(config.redis, logger);
  const verifier = createAccessTokenVerifier({
    jwks: new URL(config.auth.jwksUrl),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    revocations: new SessionRevocations(redis),
  });
  const authenticate = bearerAuthenticator(verifier);
  // Subgraphs that share the secret skip their own revocation lookup for what the admission checked.
  const assertions =
    config.auth.revocationAssertionSecret === null
      ? undefined
      : revocationAssertions(config.auth.revocationAssertionSecret);
  metrics.observeRedis("main", redis);
  // Blocklist, budgets, query limits, persisted operations: README "Protection".
  const protection = createEdgeProtection({
    config,
    redis,
    logger,
    verifier,
    ...(options.protectionKeyPrefix === undefined ? {} : { keyPrefix: options.protectionKeyPrefix }),
    ...(options.safelistManifest === undefined ? {} : { manifest: options.safelistManifest }),
  });
  await protection.start();
  const executing = withQueryExecutor(gateway as unknown as GatewayInterface, dataSources);
  const direct =
    options.directOperations === false
      ? undefined
      : directOperations({
          executor: () => executing.executor(),
          validationRules: protection.validationRules,
          maxTokens: protection.parseOptions.maxTokens,
          mutationSettled: (context, known, request) =>
            protection.mutationSettled(context, known.document, known.operation, request),
          logger: apolloLogger(logger),
          persisted: protection.persistedTexts,
        });
  const service = await startService<GatewayContext>({
    name: "gateway",
    logger,
    host: config.host,
    port: config.port,
    isProduction: config.isProduction,
    // @apollo/gateway 2.x is typed against gateway-interface 1.x; at run time it is the same contract.
    // Its planner and executeQueryPlan run queries and mutations, with a plan cached per document.
    graphql: { gateway: executing },
    ...(direct === undefined ? {} : { directOperations: direct }),
    trustProxy: config.trustProxy,
    // HTTP: the caller guardRequest admitted (token, revocation and budgets in one Redis round trip).
    authenticate: protection.authenticate,
    metrics,
    beforeBody: protection.beforeBody,
    beforeGraphQL: protection.beforeGraphQL,
    plugins: [...protection.plugins, unauthenticatedStatusPlugin()],
    validationRules: protection.validationRules,
    parseOptions: protection.parseOptions,
    persistedQueries: protection.persistedQueries,
    maxBodyBytes: protection.maxBodyBytes,
    readiness: [
      redisReadiness(redis),
      {
        name: "supergraph",
        check: async () => {
          if (!schemaLoaded) throw new Error("supergraph not loaded");
        },
      },
    ],
    context: async ({ req, requestId, logger: requestLogger, viewer, clientIp }) => {
      const context: GatewayContext = {
        requestId,
        logger: requestLogger,
        viewer,
        clientIp,
        authorization: req.headers.authorization ?? null,
        admission: protection.admissionOf(req),
        precounted: protection.precountedOf(req),
      };
      if (assertions) vouchForRevocation(context, assertions);
      return context;
    },
    // graphql-ws on the same port and path: clients open one connection for all their subscriptions.
    onHttpServer: (httpServer, runOperation) => {
      endpoint = startSubscriptionEndpoint({
        httpServer,
        planner: currentPlanner,
        hub,
        authenticate,
        logger,
        isProduction: config.isProduction,
        keepAliveMs: tuning.keepAliveMs,
        revalidateMs: tuning.revalidateMs,
        maxSubscriptionsPerConnection: tuning.maxSubscriptionsPerConnection,
        maxOperationsInFlight: tuning.maxSocketOperationsInFlight,
        maxPayloadBytes: tuning.maxPayloadBytes,
        closeGraceMs: tuning.closeGraceMs,
        clientIp: protection.clientIp,
        admitUpgrade: (ip) => protection.admitUpgrade(ip),
        takeUserSocket: (userId) => protection.takeUserSocket(userId),
        checkSubscribe: protection.checkSubscribe,
        // Queries and mutations over the socket: the HTTP path's protections and executor (docs/client-contract.md).
        resolveQuery: protection.resolveQuery,
        runOperation: socketOperations({ protection, runOperation, direct, metrics, assertions, logger }),
        maxTokens: protection.parseOptions.maxTokens,
      });
      protection.onBlocklistChange(() => endpoint?.closeBlocked(protection.isBlocked));
    },
    // Phones are told to reconnect (1001, possibly to another replica) before HTTP drains.
    onStopping: async () => {
      await endpoint?.stop();
      await hub.stop();
      userCache.stop();
      await userChanges?.stop();
    },
    onStopped: async () => {
      await protection.stop();
      await closeRedis(redis);
      await fetcher.close();
    },
  });
  // Prometheus scrapes on the private interface: the public port never serves /metrics.
  const metricsServer = await startMetricsServer({
    metrics,
    host: config.metricsHost,
    port: config.metricsPort,
    logger,
  });
  return {
    ...service,
    metrics,
    metricsUrl: metricsServer.url,
    stop: async () => {
      await service.stop();
      await metricsServer.stop();
    },
    userCacheStats: () => ({ ...userCache.stats, users: userCache.size(), heldUsers: userCache.heldUsers() }),
    admissionStats: () => protection.admissionStats(),
    directAnswers: () => direct?.answered() ?? 0,
    subscriptionStats: () => ({
      ...hub.stats(),
      upstream: upstream.stats(),
      connections: endpoint?.connections() ?? 0,
      socketOperationsInFlight: endpoint?.operationsInFlight() ?? 0,
    }),
  };
}

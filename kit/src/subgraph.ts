import { readFileSync } from "node:fs";
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import { parse, type DocumentNode } from "graphql";
import {
  bearerAuthenticator,
  createAccessTokenVerifier,
  JWKS_PATH,
  type AccessTokenIssuer,
} from "./auth/access-tokens";
import { SessionRevocations } from "./auth/revocations";
import { revocationAssertions } from "./auth/revocation-assertions";
import type { SubgraphConfig } from "./config";
import { sendJson } from "./http-server";
import type { Logger } from "./logger";
import { createProcessMetrics, type ProcessMetrics } from "./metrics";
import type { ReadinessCheck } from "./readiness";
import { closeRedis, createRedis, redisReadiness, type Redis } from "./redis";
import { startService, type RequestContextBase, type RunningService } from "./service";
import type { SharedWhen } from "./shared-execution";
import { startSubscriptionServer, type SubscriptionServer } from "./subscriptions";

export function loadTypeDefs(path: string): DocumentNode {
  return parse(readFileSync(path, "utf8"));
}

/** What a subgraph needs from its database: a cheap round trip and a way to close the pool. */
export interface SubgraphDatabase {
  ping(): Promise<unknown>;
  close(): Promise<void>;
}

/** Any generated `Resolvers` map; its field signatures are checked where it is written. */
export type SubgraphResolvers = { readonly [typeName: string]: object | undefined };

export interface SubgraphOptions<TContext extends RequestContextBase> {
  config: SubgraphConfig;
  logger: Logger;
  typeDefs: DocumentNode;
  /** The subgraph's resolver map, typed by its generated `Resolvers` (subgraphs/<name>/src/generated). */
  resolvers: SubgraphResolvers;
  database: SubgraphDatabase;
  /** Redis made by the caller (so its services can use it before start); created from config when absent. Closed on stop either way. */
  redis?: Redis;
  /** Builds the per-request context (DataLoaders live here, one set per request). */
  context(base: RequestContextBase & { redis: Redis }): TContext | Promise<TContext>;
  /**
   * Only the subgraph that issues access tokens (users): it serves `GET /.well-known/jwks.json`
   * and verifies against its own keys instead of fetching AUTH_JWKS_URL.
   */
  accessTokenIssuer?: AccessTokenIssuer;
  /**
   * Serve the schema's subscriptions over graphql-ws on the same port and `/graphql` path (see
   * kit/src/subscriptions.ts for authentication). Operations get the same `context` as HTTP requests.
   * On stop every socket is closed with 1001 (Going Away) before HTTP drains.
   */
  subscriptions?:
    | boolean
    | {
        keepAliveMs?: number;
        revalidateMs?: number;
        sharedFields?: ReadonlySet<string>;
        sharedWhen?: SharedWhen;
      };
  /**
   * The process's metrics (made by the caller so its pools, consumers and relay can report to
   * them; made here when absent). Served at GET /metrics on the subgraph's own, private port.
   */
  metrics?: ProcessMetrics;
}

export interface RunningSubgraph extends RunningService {
  redis: Redis;
  metrics: ProcessMetrics;
  /** Present when started with `subscriptions`. */
  subscriptions?: SubscriptionServer;
}

/**
 * A federation subgraph with its database and Redis, health endpoints and graceful stop. It
 * verifies the caller's access token itself (the same one the gateway verified): no identity
 * header from the gateway is trusted, so reaching a subgraph directly grants nothing. Only the
 * revocation lookup is skipped when the gateway's signed assertion vouches for the token.
 */
export async function startSubgraph<TContext extends RequestContextBase>(
  options: SubgraphOptions<TContext>,
): Promise<RunningSubgraph> {
  const { config, logger, database } = options;
  const redis = options.redis ?? createRedis(config.redis, logger);
  const metrics = options.metrics ?? createProcessMetrics(config.name, { logger });
  metrics.observeRedis("main", redis);
  const readiness: ReadinessCheck[] = [
    { name: "database", check: () => database.ping() },
    redisReadiness(redis),
  ];
  const issuer = options.accessTokenIssuer;
  const verifier = createAccessTokenVerifier({
    jwks: issuer ? issuer.publicJwks() : new URL(config.auth.jwksUrl),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    revocations: new SessionRevocations(redis),
    ...(config.auth.revocationAssertionSecret === null
      ? {}
      : { revocationAssertions: revocationAssertions(config.auth.revocationAssertionSecret) }),
  });
  const schema = buildSubgraphSchema([
    {
      typeDefs: options.typeDefs,
      resolvers: options.resolvers as GraphQLResolverMap<unknown>,
    },
  ]);
  const subscriptionOptions = options.subscriptions === true ? {} : options.subscriptions || undefined;
  let subscriptions: SubscriptionServer | undefined;
  const service = await startService<TContext>({
    name: config.name,
    logger,
    host: config.host,
    port: config.port,
    isProduction: config.isProduction,
    graphql: { schema },
    trustProxy: config.trustProxy,
    answerKnownQueries: config.knownOperations,
    authenticate: bearerAuthenticator(verifier),
    metrics,
    getRoutes: {
      "/metrics": metrics.handler,
      ...(issuer
        ? {
            [JWKS_PATH]: (req, res) => {
              res.setHeader("cache-control", "public, max-age=300");
              sendJson(req, res, 200, issuer.publicJwks());
            },
          }
        : {}),
    },
    readiness,
    context: async ({ requestId, logger: requestLogger, viewer, clientIp }) =>
      options.context({ requestId, logger: requestLogger, viewer, clientIp, redis }),
    ...(subscriptionOptions
      ? {
          onHttpServer: (httpServer) => {
            subscriptions = startSubscriptionServer<TContext>({
              httpServer,
              schema,
              verifier,
              logger,
              isProduction: config.isProduction,
              // Not a spread: it would make the operation's lazy logger at once.
              context: (base) => options.context(Object.assign(base, { redis })),
              ...subscriptionOptions,
            });
            const server = subscriptions;
            metrics.observeSubscriptions(() => ({
              subscriptions: { operations: server.operations() },
              connections: { client: server.connections() },
            }));
          },
          onStopping: async () => {
            await subscriptions?.stop();
          },
        }
      : {}),
    onStopped: async () => {
      await database.close();
      await closeRedis(redis);
    },
  });
  return { ...service, redis, metrics, ...(subscriptions ? { subscriptions } : {}) };
}

/** Anything that works in the background on the database pool (event consumers, outbox relays). */
export interface BackgroundWorker {
  stop(): Promise<void>;
}

/**
 * Any Prisma client is a subgraph database. `workers` use its pool: on close they are stopped
 * first, in order, so none is cut off mid-transaction.
 */
export function prismaDatabase(
  client: { $queryRawUnsafe(query: string): Promise<unknown>; $disconnect(): Promise<void> },
  workers: BackgroundWorker[] = [],
): SubgraphDatabase {
  return {
    ping: () => client.$queryRawUnsafe("SELECT 1"),
    close: async () => {
      for (const worker of workers) await worker.stop();
      await client.$disconnect();
    },
  };
}

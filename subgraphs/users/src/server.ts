import { Gauge } from "prom-client";
import {
  createAccessTokenIssuer,
  createProcessMetrics,
  createRedis,
  loadTypeDefs,
  shippedFile,
  prismaDatabase,
  outboxNotifications,
  prismaOutboxStore,
  SessionRevocations,
  startEventConsumer,
  startOutboxRelay,
  startSubgraph,
  type Logger,
  type RunningSubgraph,
  type UsersConfig,
} from "@hv/kit";
import type { UsersServices } from "./context";
import { createUsersDatabase, type DatabaseObserver } from "./db";
import { createLoaders } from "./loaders";
import { createMailOutbox } from "./mail/jobs";
import { AfterResponse } from "./modules/after-response";
import { KnownDevices } from "./modules/known-devices";
import { ProfileCache } from "./modules/profile-cache";
import { createAccountRateLimits } from "./modules/rate-limits";
import { SessionService } from "./modules/sessions";
import { usersEventHandlers } from "./moderation-events";
import { oldestOpenCaseAgeSeconds } from "./modules/moderation-queue";
import { resolvers, type UsersContext } from "./resolvers";

export const typeDefs = loadTypeDefs(shippedFile("subgraphs/users/src/schema.graphql"));

export interface UsersStartOptions {
  database?: DatabaseObserver;
}

export async function start(
  config: UsersConfig,
  logger: Logger,
  options: UsersStartOptions = {},
): Promise<RunningSubgraph> {
  const metrics = createProcessMetrics(config.name, { logger });
  const { db, sql } = createUsersDatabase(
    config.databaseUrl,
    { ...options.database, metrics },
    { min: config.databasePoolMin },
  );
  const accessTokens = createAccessTokenIssuer({
    keys: config.accessTokens.signingKeys,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    ttlSeconds: config.accessTokens.ttlSeconds,
  });
  // Events written in the same transactions as the changes, relayed to the consumers' queues.
  const relay = startOutboxRelay({
    store: prismaOutboxStore(db),
    wakeUps: outboxNotifications({ connectionString: config.listenDatabaseUrl, logger }),
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
  });
  // The moderation queue's intake: reports and signals from Chat and Media.
  const events = startEventConsumer({
    consumer: "users",
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
    handlers: usersEventHandlers(db, logger),
  });
  new Gauge({
    name: "hv_moderation_oldest_open_case_age_seconds",
    help: "Seconds since the oldest open moderation case was opened (its first report); 0 when none is open",
    registers: [metrics.registry],
    async collect() {
      try {
        this.set(await oldestOpenCaseAgeSeconds(db));
      } catch (error) {
        logger.debug({ err: error }, "metrics: could not read the moderation queue");
      }
    },
  });
  const redis = createRedis(config.redis, logger);
  const limits = createAccountRateLimits(redis);
  const mail = createMailOutbox({
    redis: config.redis,
    prefix: config.eventsPrefix,
    logger,
    perRecipient: limits.mailPerRecipient,
    maxAttempts: config.mailMaxAttempts,
  });
  const afterResponse = new AfterResponse(logger);
  const services: UsersServices = {
    db,
    sessions: new SessionService(
      db,
      redis,
      accessTokens,
      new SessionRevocations(redis),
      {
        refreshTokenTtlDays: config.refreshTokens.ttlDays,
        reuseGraceSeconds: config.refreshTokens.reuseGraceSeconds,
      },
      logger,
    ),
    profiles: new ProfileCache(sql, redis),
    limits,
    knownDevices: new KnownDevices(db),
    mail,
    afterResponse,
    moderation: { claimSeconds: config.moderationClaimSeconds },
    flushEvents: () => void relay.flush(),
  };
  return startSubgraph<UsersContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    // Stopped in order before the pool closes: pending after-response work, then the queue, then the relay.
    database: prismaDatabase(db, [events, afterResponse, { stop: () => mail.close() }, relay]),
    redis,
    metrics,
    // Serves GET /.well-known/jwks.json and verifies tokens against these keys locally.
    accessTokenIssuer: accessTokens,
    context: (base) => ({ ...base, services, loaders: createLoaders(services.profiles) }),
  });
}

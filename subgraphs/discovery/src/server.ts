import {
  createProcessMetrics,
  createRateLimiter,
  createRedis,
  loadTypeDefs,
  shippedFile,
  prismaDatabase,
  outboxNotifications,
  prismaOutboxStore,
  startEventConsumer,
  startOutboxRelay,
  startSubgraph,
  type DiscoveryConfig,
  type Logger,
  type RunningSubgraph,
} from "@hv/kit";
import type { DiscoveryServices } from "./context";
import { createDiscoveryDatabase, type DatabaseObserver } from "./db";
import { discoveryEventHandlers } from "./events";
import { createLoaders } from "./loaders";
import { createSearchPool } from "./modules/search-pool";
import { resolvers, type DiscoveryContext } from "./resolvers";

export const typeDefs = loadTypeDefs(shippedFile("subgraphs/discovery/src/schema.graphql"));

export interface DiscoveryStartOptions {
  database?: DatabaseObserver;
}

export async function start(
  config: DiscoveryConfig,
  logger: Logger,
  options: DiscoveryStartOptions = {},
): Promise<RunningSubgraph> {
  const metrics = createProcessMetrics(config.name, { logger });
  const observer = { ...options.database, metrics };
  const { db, sql } = createDiscoveryDatabase(config.databaseUrl, observer, {
    min: config.databasePoolMin,
  });
  // Events from the other subgraphs' outboxes: the same Redis (and default prefix) as their relays.
  const events = startEventConsumer({
    consumer: "discovery",
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
    handlers: discoveryEventHandlers(db, logger),
  });
  // match.created / match.ended leave through the outbox, relayed to the consumers' queues.
  const relay = startOutboxRelay({
    store: prismaOutboxStore(db),
    wakeUps: outboxNotifications({ connectionString: config.listenDatabaseUrl, logger }),
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
  });
  const redis = createRedis(config.redis, logger);
  const searchPool = createSearchPool(config.databaseUrl, 10, observer);
  // A read replica for nearby's candidates (DISCOVERY_READ_DATABASE_URL); the primary keeps the rest.
  const replicaSearchPool =
    config.readDatabaseUrl === null
      ? null
      : createSearchPool(config.readDatabaseUrl, 10, observer, "search_replica");
  const services: DiscoveryServices = {
    db,
    sql,
    searchPool,
    replicaSearchPool,
    config,
    locationUpdates: createRateLimiter(redis, { name: "location-update", points: 30, durationSeconds: 60 }),
    swipes: createRateLimiter(redis, { name: "swipe", points: 300, durationSeconds: 60 * 60 }),
    flushEvents: () => void relay.flush(),
  };
  return startSubgraph<DiscoveryContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db, [
      events,
      relay,
      { stop: () => searchPool.close() },
      ...(replicaSearchPool ? [{ stop: () => replicaSearchPool.close() }] : []),
    ]),
    redis,
    metrics,
    context: (base) => ({
      ...base,
      services,
      loaders: createLoaders(db, sql, config.locationMaxAgeMinutes, base.viewer?.userId ?? null),
    }),
  });
}

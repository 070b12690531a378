import {
  closeRedis,
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
  type Logger,
  type RunningSubgraph,
} from "@hv/kit";
import type { MediaConfig } from "./config";
import type { MediaServices } from "./context";
import { createMediaDatabase, type DatabaseObserver } from "./db";
import { mediaEventHandlers } from "./events";
import { createLoaders } from "./loaders";
import { startMediaUpdateHub } from "./live";
import { ReusedDownloadUrls } from "./modules/download-urls";
import { PhotoCache } from "./modules/photo-cache";
import { createMaintenanceQueue, createMediaQueue } from "./queue";
import { resolvers, type MediaContext } from "./resolvers";
import { createStorage } from "./storage/create";
import { parseSourceKey } from "./storage";
import { LocalStorage } from "./storage/local";
import { startFileServer, type RunningFileServer } from "./storage/local-server";

export const typeDefs = loadTypeDefs(shippedFile("subgraphs/media/src/schema.graphql"));

export interface RunningMedia extends RunningSubgraph {
  /** The local driver's public file endpoint (null with S3). */
  files: RunningFileServer | null;
  services: MediaServices;
}

export interface MediaStartOptions {
  /** Tests and benchmarks: see every SQL statement the subgraph sends. */
  database?: DatabaseObserver;
}

export async function start(
  config: MediaConfig,
  logger: Logger,
  options: MediaStartOptions = {},
): Promise<RunningMedia> {
  const metrics = createProcessMetrics(config.name, { logger });
  const { db, sql } = createMediaDatabase(
    config.databaseUrl,
    { ...options.database, metrics },
    { min: config.databasePoolMin },
  );
  let files: RunningFileServer | null = null;
  const storage = createStorage(config.storage, () => {
    if (config.storage.driver === "local" && config.storage.publicUrl) return config.storage.publicUrl;
    if (!files) throw new Error("the media file endpoint is not listening yet");
    return files.localUrl;
  });
  if (storage instanceof LocalStorage) {
    await storage.ping();
    files = await startFileServer({
      storage,
      // Phones reach it (unlike the subgraph): it binds where the gateway does (HOST).
      host: config.storage.driver === "local" ? config.storage.filesHost : "0.0.0.0",
      port: config.storage.driver === "local" ? config.storage.filesPort : 0,
      logger,
      // An upload URL stores an original only while its item waits for it: never after
      // completeUpload, processing or deletion, even if the URL has not expired yet.
      acceptsUpload: async (key) => {
        const parsed = parseSourceKey(key);
        if (!parsed) return false;
        const row = await db.media.findUnique({
          where: { id: parsed.mediaId },
          select: { ownerId: true, status: true, uploadedAt: true },
        });
        return (
          row !== null &&
          row.ownerId === parsed.ownerId &&
          row.status === "PENDING" &&
          row.uploadedAt === null
        );
      },
    });
  }
  const queue = createMediaQueue(config.redis, config.eventsPrefix);
  const maintenance = createMaintenanceQueue(config.redis, config.eventsPrefix);
  const redis = createRedis(config.redis, logger);
  // A connection of its own: a Redis connection in subscriber mode can do nothing else.
  const subscriber = createRedis(config.redis, logger, "media-updates");
  const updates = await startMediaUpdateHub(subscriber, config.eventsPrefix, logger);
  metrics.observeRedis("media-updates", subscriber);
  // media.reported leaves through the outbox, relayed to the moderation queue's consumer.
  const relay = startOutboxRelay({
    store: prismaOutboxStore(db),
    wakeUps: outboxNotifications({ connectionString: config.listenDatabaseUrl, logger }),
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
  });
  const services: MediaServices = {
    db,
    storage,
    queue,
    maintenance,
    config,
    uploads: createRateLimiter(redis, { name: "media-upload", points: 120, durationSeconds: 60 * 60 }),
    updates,
    photos: new PhotoCache(sql, redis, logger),
    downloadUrls: new ReusedDownloadUrls(storage),
    flushEvents: () => void relay.flush(),
  };
  // Events from the other subgraphs' outboxes: the same Redis (and default prefix) as their relays.
  const events = startEventConsumer({
    consumer: "media",
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
    handlers: mediaEventHandlers(
      db,
      logger,
      storage,
      { queue: maintenance, graceSeconds: config.uploadGraceSeconds },
      services.photos,
    ),
  });
  const running = await startSubgraph<MediaContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db, [
      events,
      relay,
      {
        stop: async () => {
          await updates.stop();
          await closeRedis(subscriber);
          await files?.stop();
          await queue.close();
          await maintenance.close();
          await storage.close();
        },
      },
    ]),
    redis,
    metrics,
    subscriptions: true,
    // Not a spread: a subscription's base has its lazy `logger` on its prototype (kit/src/subscriptions.ts).
    context: (base) =>
      Object.assign(base, {
        services,
        loaders: createLoaders(sql, base.viewer?.userId ?? null, services.photos),
      }),
  });
  return { ...running, files, services };
}

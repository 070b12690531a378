import {
  createProcessMetrics,
  createRateLimiter,
  createRedis,
  groupCommit,
  loadTypeDefs,
  outboxNotifications,
  shippedFile,
  prismaDatabase,
  sqlOutboxStore,
  startEventConsumer,
  startOutboxRelay,
  startSubgraph,
  type BackgroundWorker,
  type Logger,
  type RunningSubgraph,
} from "@hv/kit";
import type { ChatConfig } from "./config";
import { createChatDatabase } from "./db";
import { chatEventHandlers } from "./events";
import { createChatBus } from "./modules/bus";
import { PresenceBeats } from "./modules/presence";
import { SendAdmission } from "./modules/send-admission";
import { SendPrechecks } from "./modules/send-precheck";
import type { ChatServices } from "./modules/context";
import { ChatRequestContext } from "./modules/request-context";
import { resolvers, sharedEventFields, sharedEventFieldsWhen, type ChatContext } from "./resolvers";

export const typeDefs = loadTypeDefs(shippedFile("subgraphs/chat/src/schema.graphql"));

/** Close code telling graphql-ws clients to reconnect and catch up (the fan-out may have missed events). */
export const CATCH_UP_CLOSE_CODE = 1012;

export async function start(config: ChatConfig, logger: Logger): Promise<RunningSubgraph> {
  const metrics = createProcessMetrics(config.name, { logger });
  const { db, sql, pool } = createChatDatabase(config.databaseUrl, metrics, {
    min: config.databasePoolMin,
  });
  const stores = groupCommit({
    databaseUrl: config.databaseUrl,
    metrics,
    poolName: "store",
    maxBatch: config.store.groupMax,
    maxRunning: config.store.running,
    min: config.databasePoolMin,
  });
  const redis = createRedis(config.redis, logger);
  const bus = createChatBus(config.pubsubRedis, config.eventsPrefix, logger);
  // message.created leaves through the outbox, relayed to the consumers' queues (push). Each send
  // hands its committed event to the relay (publishCommitted: those of CHAT_PUSH_BATCH_MS in one
  // job); the poll is the safety net.
  const relay = startOutboxRelay({
    store: sqlOutboxStore(pool),
    handOverWindowMs: config.pushBatchMs,
    wakeUps: outboxNotifications({ connectionString: config.listenDatabaseUrl, logger }),
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
    // Enqueued events are marked published once a second (100 at once sooner): one UPDATE per
    // second at low rates; an unmarked one the poll finds is only marked.
    markDelayMs: 1_000,
  });
  const services: ChatServices = {
    db,
    sql,
    stores,
    config,
    redis,
    bus,
    presence: new PresenceBeats(redis, config.eventsPrefix, config.presenceTtlSeconds, (error) =>
      logger.warn({ err: error }, "presence heartbeat failed"),
    ),
    sendPrechecks: new SendPrechecks(sql),
    sendAdmission: new SendAdmission(redis, {
      burst: { name: "chat-send-burst", points: config.sendBurst, durationSeconds: 10 },
      sustained: { name: "chat-send-sustained", points: config.sendSustained, durationSeconds: 3600 },
    }),
    invitationsPerDay: createRateLimiter(redis, {
      name: "chat-invitations",
      points: config.invitationsPerDay,
      durationSeconds: 24 * 3600,
    }),
    flushEvents: () => void relay.flush(),
    publishEvents: (records) => relay.publishCommitted(records),
    markEventsPublished: (ids) => relay.markCommitted(ids),
  };
  // Events from the other subgraphs' outboxes: the same Redis (and prefix) as their relays.
  const events = startEventConsumer({
    consumer: "chat",
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics,
    handlers: chatEventHandlers(db, logger, services),
  });
  const busWorker: BackgroundWorker = {
    stop: () => {
      services.presence.stop();
      return bus.close();
    },
  };
  const running = await startSubgraph<ChatContext>({
    config,
    logger,
    typeDefs,
    resolvers,
    database: prismaDatabase(db, [events, relay, busWorker, { stop: () => stores.end() }]),
    redis,
    metrics,
    subscriptions: { sharedFields: sharedEventFields, sharedWhen: sharedEventFieldsWhen },
    context: (base) => new ChatRequestContext(base, services),
  });
  // Lost or regained the Redis subscription: events may have been missed. Every client reconnects,
  // resubscribes and catches up with messages(after: seq).
  bus.onGap(() => {
    logger.warn("chat fan-out: redis subscription interrupted; asking clients to reconnect and catch up");
    running.subscriptions?.closeAll(CATCH_UP_CLOSE_CODE, "Service restart: reconnect and catch up");
  });
  return running;
}

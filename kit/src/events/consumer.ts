import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from "bullmq";
import type { Logger } from "../logger";
import type { ProcessMetrics } from "../metrics";
import {
  DEFAULT_EVENTS_PREFIX,
  eventQueueName,
  InvalidEventError,
  isEventType,
  parseEventPayload,
  SUBSCRIPTIONS,
  type EventConsumer,
  type EventPayload,
  type EventType,
  type SubscribedEvent,
} from "./catalogue";
import type { EventJobData, EventsConnection } from "./relay";

export interface EventMeta<T extends EventType = EventType> {
  /** The same on every delivery of this event: the key for idempotency. */
  eventId: string;
  type: T;
  /** When the event was written, in the publisher's transaction. */
  occurredAt: Date;
  /** 1 on the first delivery, 2 on the first retry, … */
  attempt: number;
}

/**
 * Handles one event. Delivery is at least once, and in no guaranteed order, so a handler must be
 * idempotent: running it twice with the same event (a retry after it failed half-way, a
 * re-publish, a worker that died before acknowledging) must leave the same state as running it
 * once. Use upserts and deletes rather than inserts and counters, or record `meta.eventId` in the
 * same transaction as the effect. An event carrying state (`user.profile_changed`, blocked /
 * unblocked) may arrive after a newer one: keep `meta.occurredAt` with what you store and ignore
 * older events. Throwing retries with exponential backoff; an `UnrecoverableError` (from bullmq)
 * fails the event at once.
 */
export type EventHandler<T extends EventType> = (
  payload: EventPayload<T>,
  meta: EventMeta<T>,
) => Promise<void>;

/** One handler for every event type the consumer subscribes to (see `SUBSCRIPTIONS`). */
export type EventHandlers<C extends EventConsumer> = { [T in SubscribedEvent<C>]: EventHandler<T> };

export interface EventConsumerOptions<C extends EventConsumer> {
  consumer: C;
  connection: EventsConnection;
  logger: Logger;
  handlers: EventHandlers<C>;
  /** Events handled at the same time by this process. Default 10. */
  concurrency?: number;
  /** BullMQ key prefix; must be the relay's. Default `hv`. */
  prefix?: string;
  /** Counts handled events (duration, outcome) and reads the queue's depth on every scrape. */
  metrics?: ProcessMetrics;
}

export interface EventConsumerHandle {
  /** Stops taking events and waits for the ones being handled (BullMQ `worker.close()`). */
  stop(): Promise<void>;
}

/** Runs a consumer's handlers on its queue, `events.<consumer>`. */
export function startEventConsumer<C extends EventConsumer>(
  options: EventConsumerOptions<C>,
): EventConsumerHandle {
  const { consumer, logger } = options;
  const subscribed: readonly string[] = SUBSCRIPTIONS[consumer];
  const handlers = options.handlers as unknown as Record<string, EventHandler<EventType> | undefined>;
  const missing = subscribed.filter((type) => typeof handlers[type] !== "function");
  if (missing.length > 0)
    throw new Error(`event consumer ${consumer} has no handler for ${missing.join(", ")}`);

  const connection: ConnectionOptions =
    typeof options.connection === "string" ? { url: options.connection } : options.connection;

  const processor = async (job: Job<Partial<EventJobData>>): Promise<void> => {
    const { type, payload, occurredAt } = job.data;
    const handler = isEventType(type) && subscribed.includes(type) ? handlers[type] : undefined;
    if (!isEventType(type) || !handler) {
      throw new UnrecoverableError(`${consumer} does not handle events of type ${String(type)}`);
    }
    let parsed: EventPayload<EventType>;
    try {
      parsed = parseEventPayload(type, payload);
    } catch (error) {
      if (error instanceof InvalidEventError) throw new UnrecoverableError(error.message);
      throw error;
    }
    await handler(parsed, {
      eventId: job.id ?? "",
      type,
      occurredAt: new Date(occurredAt ?? job.timestamp),
      attempt: job.attemptsMade + 1,
    });
  };

  const worker = new Worker<Partial<EventJobData>>(eventQueueName(consumer), processor, {
    connection,
    prefix: options.prefix ?? DEFAULT_EVENTS_PREFIX,
    concurrency: options.concurrency ?? 10,
  });
  worker.on("error", (error: Error) => logger.error({ err: error, consumer }, "event consumer error"));
  let depth: Queue | undefined;
  if (options.metrics) {
    options.metrics.observeWorker(worker);
    depth = new Queue(eventQueueName(consumer), { connection, prefix: options.prefix ?? DEFAULT_EVENTS_PREFIX });
    depth.on("error", (error: Error) => logger.debug({ err: error, consumer }, "event queue (metrics) error"));
    options.metrics.observeQueue(depth);
  }
  worker.on("failed", (job, error) => {
    const context = { err: error, consumer, eventId: job?.id, type: job?.name, attempt: job?.attemptsMade };
    // finishedOn is set only when the job will not run again.
    if (job?.finishedOn === undefined) logger.warn(context, "event handler failed; will retry");
    else logger.error(context, "event handler failed for good");
  });

  return {
    stop: async () => {
      await worker.close();
      await depth?.close();
    },
  };
}

/**
 * The handler of an event a consumer subscribes to but has nowhere to keep yet (a later feature
 * stores it; say which where it is used): it logs the delivery at debug and changes nothing.
 */
export function notStoredYet<T extends EventType>(logger: Logger): EventHandler<T> {
  return async (_payload, meta) => {
    logger.debug({ eventId: meta.eventId, type: meta.type }, "event consumer: nothing stores this event yet");
  };
}

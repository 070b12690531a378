import { Queue, UnrecoverableError, Worker, type Job, type JobsOptions } from "bullmq";
import Redis, { type RedisOptions } from "ioredis";
import type { Logger } from "../logger";
import { redisOptions } from "../redis";
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
import { EVENT_BATCH_JOB, type EventBatchJobData, type EventJobData, type EventsConnection } from "./relay";

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
  /**
   * `stop()` waits this long for the events being handled, then disconnects regardless (BullMQ's
   * `close()` can wait forever while Redis is unreachable: bullmq #4656). Default 10 000 ms.
   */
  closeTimeoutMs?: number;
  /**
   * How often the watchdog looks for a stuck worker: events waiting, a free slot, and not one event
   * started since the previous look, twice in a row, while Redis answers. A stuck worker is closed
   * (bounded, as in stop) and replaced by a new one. Default 30 000 ms.
   */
  watchdogIntervalMs?: number;
  /** Called with every worker started: the first, and each one the watchdog puts in a stuck one's place. */
  onWorker?: (worker: Worker) => void;
}

export interface EventConsumerHandle {
  /**
   * Stops taking events and waits for the ones being handled (BullMQ `worker.close()`), at most
   * `closeTimeoutMs`; while Redis is unreachable it does not wait for them. Always returns.
   */
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

  const prefix = options.prefix ?? DEFAULT_EVENTS_PREFIX;
  const concurrency = options.concurrency ?? 10;
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const watchdogIntervalMs = options.watchdogIntervalMs ?? 30_000;
  const queueName = eventQueueName(consumer);
  const redisDefaults: RedisOptions = { retryStrategy: (times) => Math.min(times * 200, 5_000) };
  const newRedis = (extra: RedisOptions): Redis =>
    new Redis({ ...redisDefaults, ...redisOptions(options.connection), ...extra });
  const quiet = (role: string) => (error: Error) =>
    logger.debug({ err: error, consumer, role }, "event consumer: redis connection error");

  let inFlight = 0;
  let starts = 0;
  type AnyJobData = Partial<EventJobData> & Partial<EventBatchJobData>;
  const processor = async (job: Job<AnyJobData>): Promise<void> => {
    starts += 1;
    inFlight += 1;
    try {
      if (job.name === EVENT_BATCH_JOB) await handleBatch(job);
      else await handle(job.data, job.id ?? "", job);
    } finally {
      inFlight -= 1;
    }
  };
  const handle = async (event: Partial<EventJobData>, eventId: string, job: Job): Promise<void> => {
    const { type, payload, occurredAt } = event;
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
      eventId,
      type,
      occurredAt: new Date(occurredAt ?? job.timestamp),
      attempt: job.attemptsMade + 1,
    });
  };
  /**
   * Each event of a batch job at once, as its own; each that fails goes on as its own job (the
   * relay's form and the batch's options, after the first backoff). Throws (the batch is retried
   * whole) only when those jobs cannot be added.
   */
  const handleBatch = async (job: Job<AnyJobData>): Promise<void> => {
    const events = Array.isArray(job.data.events) ? job.data.events : [];
    const outcomes = await Promise.allSettled(events.map((event) => handle(event, event.id, job)));
    const failed: Array<EventJobData & { id: string }> = [];
    outcomes.forEach((outcome, index) => {
      const event = events[index]!;
      if (outcome.status === "fulfilled") return;
      failed.push(event);
      logger.warn(
        { err: outcome.reason as unknown, consumer, eventId: event.id, type: event.type, batch: job.id },
        "event handler failed in a batch; retrying it as its own job",
      );
    });
    if (failed.length === 0) return;
    const opts = ownJobOptions(job.opts);
    await probe.addBulk(
      failed.map(({ id, type, payload, occurredAt }) => ({
        name: type,
        data: { type, payload, occurredAt } satisfies EventJobData,
        opts: { ...opts, jobId: id },
      })),
    );
  };

  /**
   * One BullMQ worker on Redis clients this module owns: the connection given to the worker, and
   * the blocking connection BullMQ makes with its `duplicate()`. Owning them is what lets a close
   * that hangs be ended by disconnecting them.
   */
  interface Generation {
    worker: Worker<AnyJobData>;
    clients: Redis[];
  }
  const startGeneration = (): Generation => {
    const clients: Redis[] = [];
    const base = newRedis({ maxRetriesPerRequest: null }); // BullMQ workers require null
    base.on("error", quiet("worker"));
    const duplicate = base.duplicate.bind(base);
    base.duplicate = ((override?: Partial<RedisOptions>) => {
      const copy = duplicate(override);
      copy.on("error", quiet("worker blocking"));
      clients.push(copy);
      return copy;
    }) as typeof base.duplicate;
    clients.push(base);
    const worker = new Worker<AnyJobData>(queueName, processor, {
      connection: base,
      prefix,
      concurrency,
    });
    worker.on("error", (error: Error) => logger.error({ err: error, consumer }, "event consumer error"));
    worker.on("failed", (job, error) => {
      const context = { err: error, consumer, eventId: job?.id, type: job?.name, attempt: job?.attemptsMade };
      // finishedOn is set only when the job will not run again.
      if (job?.finishedOn === undefined) logger.warn(context, "event handler failed; will retry");
      else logger.error(context, "event handler failed for good");
    });
    options.metrics?.observeWorker(worker);
    options.onWorker?.(worker as unknown as Worker);
    return { worker, clients };
  };

  /** Closes a worker: waits for its events up to closeTimeoutMs (not at all while Redis is away), then disconnects. */
  const closeGeneration = async (generation: Generation): Promise<void> => {
    const connected = generation.clients[0]?.status === "ready";
    // Without Redis nothing being handled could be acknowledged anyway: close without waiting for it.
    const closing = generation.worker.close(!connected).then(
      () => true,
      (error: unknown) => {
        logger.warn({ err: error, consumer }, "event consumer: worker close failed");
        return false;
      },
    );
    const closed =
      (await within(closing, connected ? closeTimeoutMs : Math.min(closeTimeoutMs, 1_000))) === true;
    if (!closed)
      logger.warn(
        { consumer, closeTimeoutMs },
        "event consumer: worker did not close in time; disconnecting it",
      );
    for (const client of generation.clients) {
      if (closed && client.status === "ready") await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    }
  };

  let current = startGeneration();

  // The watchdog's (and the metrics') view of the queue, on a client that fails fast when Redis is away.
  const probeRedis = newRedis({ enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  probeRedis.on("error", quiet("probe"));
  const probe = new Queue(queueName, { connection: probeRedis, prefix });
  probe.on("error", (error: Error) => logger.debug({ err: error, consumer }, "event queue (probe) error"));
  options.metrics?.observeQueue(probe);

  let stopping = false;
  let suspicious = 0;
  let startsSeen = starts;
  let watchdog: NodeJS.Timeout | undefined;
  const look = async (): Promise<void> => {
    if (probeRedis.status !== "ready") {
      suspicious = 0; // Redis away: the worker is waiting for it like everyone else
      return;
    }
    const waiting = await probe.getWaitingCount().catch(() => 0);
    const started = starts !== startsSeen;
    startsSeen = starts;
    suspicious = waiting > 0 && !started && inFlight < concurrency ? suspicious + 1 : 0;
    if (suspicious < 2 || stopping) return;
    suspicious = 0;
    logger.warn(
      { consumer, waiting },
      "event consumer: worker takes no events although some wait; replacing it",
    );
    const stuck = current;
    current = startGeneration();
    await closeGeneration(stuck);
  };
  const schedule = () => {
    watchdog = setTimeout(() => {
      void look()
        .catch((error: unknown) => logger.warn({ err: error, consumer }, "event consumer: watchdog failed"))
        .finally(() => {
          if (!stopping) schedule();
        });
    }, watchdogIntervalMs);
    watchdog.unref();
  };
  schedule();

  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(watchdog);
        await closeGeneration(current);
        const connected = probeRedis.status === "ready";
        if (connected)
          await within(
            probe.close().catch(() => undefined),
            closeTimeoutMs,
          );
        if (connected)
          await within(
            probeRedis.quit().catch(() => undefined),
            closeTimeoutMs,
          );
        probeRedis.disconnect();
      })();
      return stopped;
    },
  };
}

/** A batch's options for one of its events on its own: the same retries and retention, starting after the first backoff. */
function ownJobOptions(batch: JobsOptions): JobsOptions {
  const { attempts, backoff, removeOnComplete, removeOnFail } = batch;
  const firstBackoff = typeof backoff === "number" ? backoff : (backoff?.delay ?? 0);
  return {
    ...(attempts !== undefined ? { attempts } : {}),
    ...(backoff !== undefined ? { backoff } : {}),
    ...(removeOnComplete !== undefined ? { removeOnComplete } : {}),
    ...(removeOnFail !== undefined ? { removeOnFail } : {}),
    ...(firstBackoff > 0 ? { delay: firstBackoff } : {}),
  };
}

/** `promise`'s value, or undefined once `ms` have passed without one. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

import { Queue, type JobsOptions } from "bullmq";
import Redis, { type RedisOptions } from "ioredis";
import type { Logger } from "../logger";
import type { ProcessMetrics } from "../metrics";
import type { RedisTarget } from "../config";
import { closeRedis, redisOptions } from "../redis";
import { holdRedisWrites, turnWrites } from "../turn-writes";
import {
  DEFAULT_EVENTS_PREFIX,
  eventQueueName,
  isEventType,
  subscribersOf,
  type EventConsumer,
} from "./catalogue";
import type { OutboxRecord, OutboxStore } from "./outbox";
import type { OutboxWakeUps } from "./outbox-notify";

/** The configured Redis target (REDIS_URL or sentinels; see `redisOptions`) or a `redis://` URL. */
export type EventsConnection = RedisTarget | string;

/** What a consumer's job carries; the job id is the event id. */
export interface EventJobData {
  type: string;
  payload: unknown;
  /** ISO time the event was written (its outbox row's `created_at`). */
  occurredAt: string;
}

/** The name of a job carrying several events (`EventBatchJobData`); its id is `batch.<first event id>`. */
export const EVENT_BATCH_JOB = "event.batch";

/**
 * What a job of several events handed over together (`publishCommitted`) carries. The consumer
 * handles each as its own event (its id is `id`); one that fails goes on as its own job.
 */
export interface EventBatchJobData {
  events: Array<EventJobData & { id: string }>;
}

export interface OutboxRelayOptions {
  store: OutboxStore;
  connection: EventsConnection;
  logger: Logger;
  /**
   * How often to look for unpublished events without `wakeUps`, and with them while they are not
   * listening or after a failure (a pass, or a direct publish left to the poll). Default 1000 ms.
   */
  pollIntervalMs?: number;
  /**
   * Wakes the relay when events are committed (`outboxNotifications`: PostgreSQL LISTEN/NOTIFY).
   * While they listen and nothing failed, the poll is only a safety net (`safetyPollIntervalMs`).
   * Stopped with the relay.
   */
  wakeUps?: OutboxWakeUps;
  /** How often to poll while `wakeUps` listen. Default 30 000 ms. */
  safetyPollIntervalMs?: number;
  /** Events claimed per round trip. Default 100. */
  batchSize?: number;
  /** BullMQ key prefix; producers and consumers must agree. Default `hv`. */
  prefix?: string;
  /**
   * Retries of a consumer's handler: `attempts` in all, waiting `backoffMs`, 2×, 4×, … (±20 %)
   * between them. Default 15 attempts from 1 s: about 4.5 hours before an event fails for good.
   */
  retry?: { attempts: number; backoffMs: number };
  /**
   * How long a consumer's completed job is kept. Re-publishing the same event (after a crash
   * between enqueue and markPublished) is dropped as a duplicate only while the job exists, so
   * this is the deduplication window. Default 24 h. Failed jobs are kept 7 days.
   */
  keepCompletedSeconds?: number;
  /** Gives up on one publishing attempt (Redis hung) after this. Default 10 000 ms. */
  publishTimeoutMs?: number;
  /** Counts published events and failed passes. */
  metrics?: ProcessMetrics;
  /**
   * Events given to `publishCommitted` are marked published this long after they were enqueued,
   * many in one statement. Default 100 ms.
   */
  markDelayMs?: number;
  /**
   * Events given to `publishCommitted` wait at most this long for others: the ones given meanwhile
   * go to each consumer as one job (`EVENT_BATCH_JOB`; a lone event as its usual job). Default 0:
   * the events of one event-loop turn go together.
   */
  handOverWindowMs?: number;
}

export interface FlushResult {
  /** Events enqueued for all their consumers and marked published. */
  published: number;
  /** Why publishing stopped early (already logged; the next poll retries). */
  error?: Error;
}

export interface OutboxRelay {
  /**
   * Publishes what is unpublished now, e.g. right after a transaction that wrote an event commits.
   * Resolves when done, never rejects: failures are logged and retried on the next poll.
   */
  flush(): Promise<FlushResult>;
  /**
   * Enqueues events whose rows the caller has just committed, as they were written, without
   * claiming them (the ones given within `handOverWindowMs` go together, one job per consumer), and
   * marks them published in batches (`markDelayMs`). A failure leaves them in the outbox for the
   * next poll; a poll that claims one already enqueued here only marks it, one still waiting here
   * it enqueues itself. Returns at once.
   */
  publishCommitted(records: readonly OutboxRecord[]): void;
  /**
   * Marks published, in the same batches and without a job, events whose rows the caller has just
   * committed and that no consumer needs now; a poll that claims one first only marks it.
   */
  markCommitted(ids: readonly string[]): void;
  /** Stops polling, waits for the publishing in progress, closes the Redis connection. */
  stop(): Promise<void>;
}

interface EventJob {
  name: string;
  data: EventJobData;
  opts: JobsOptions;
}

/** An event's job or a batch's. */
interface QueuedJob {
  name: string;
  data: EventJobData | EventBatchJobData;
  opts: JobsOptions;
}

const READY_TIMEOUT_MS = 2_000;
const KEEP_FAILED_SECONDS = 7 * 24 * 3600;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Moves events from a subgraph's outbox to the BullMQ queue of every consumer subscribed to them
 * (`events.<consumer>`; BullMQ has no fan-out, so one job per consumer), then marks them
 * published. At least once: the job id is the event id, so an event enqueued again (the relay
 * died before marking it, or two replicas raced) is dropped by BullMQ while the first job is kept
 * (`keepCompletedSeconds`). Runs on every replica of the owning subgraph.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { store, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const safetyPollIntervalMs = options.safetyPollIntervalMs ?? 30_000;
  const batchSize = options.batchSize ?? 100;
  const prefix = options.prefix ?? DEFAULT_EVENTS_PREFIX;
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  const jobOptions: JobsOptions = {
    attempts: options.retry?.attempts ?? 15,
    backoff: { type: "exponential", delay: options.retry?.backoffMs ?? 1_000, jitter: 0.2 },
    removeOnComplete: { age: options.keepCompletedSeconds ?? 24 * 3600 },
    removeOnFail: { age: KEEP_FAILED_SECONDS },
  };

  // Fail fast while Redis is away (no offline queue, one retry) instead of hanging a poll: the
  // events stay in the outbox and the next poll tries again.
  const failFast = { enableOfflineQueue: false, maxRetriesPerRequest: 1 } satisfies RedisOptions;
  // disconnectTimeout: stopping while Redis is away should not keep the process alive for 2 s.
  const defaults: RedisOptions = {
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    disconnectTimeout: 200,
  };
  const redis = new Redis({ ...defaults, ...redisOptions(options.connection), ...failFast });
  let lastRedisError: Error | undefined;
  let everReady = false;
  redis.once("ready", () => (everReady = true));
  redis.on("error", (error: Error) => {
    lastRedisError = error;
    logger.debug({ err: error }, "outbox relay: redis connection error");
  });

  const queues = new Map<EventConsumer, Queue>();
  function queueOf(consumer: EventConsumer): Queue {
    let queue = queues.get(consumer);
    if (!queue) {
      queue = new Queue(eventQueueName(consumer), { connection: redis, prefix });
      queue.on("error", (error: Error) =>
        logger.debug({ err: error, consumer }, "outbox relay: queue error"),
      );
      queues.set(consumer, queue);
    }
    return queue;
  }

  /**
   * Each job by `add` (BullMQ's script alone), the connection held to the turn's end so a batch
   * leaves in one write: `addBulk` builds an ioredis pipeline per call, copying every script BullMQ
   * defines on the connection.
   */
  const writes = turnWrites();
  async function addJobs(queue: Queue, list: QueuedJob[]): Promise<void> {
    holdRedisWrites(writes, redis);
    await Promise.all(list.map((job) => queue.add(job.name, job.data, job.opts)));
  }

  async function redisReady(): Promise<void> {
    if (redis.status === "ready") return;
    if (redis.status === "end") throw new Error("outbox relay: redis connection closed");
    let onReady: () => void = () => undefined;
    try {
      await withTimeout(
        new Promise<void>((resolve) => {
          onReady = resolve;
          redis.once("ready", onReady);
        }),
        READY_TIMEOUT_MS,
        `redis not ready (${lastRedisError?.message ?? redis.status})`,
      );
    } finally {
      redis.removeListener("ready", onReady);
    }
  }

  /**
   * Enqueues `records` for their consumers: one job per event, or with `together`, one job per
   * consumer carrying all its events (a lone event as its usual job).
   */
  async function enqueue(records: OutboxRecord[], together = false): Promise<void> {
    const jobs = new Map<EventConsumer, EventJob[]>();
    for (const record of records) {
      const consumers = subscribersOf(record.type);
      if (consumers.length === 0) {
        // Delivered to all of its (no) subscribers: marked published, the row stays for inspection.
        const known = isEventType(record.type);
        logger[known ? "info" : "error"](
          { eventId: record.id, type: record.type },
          known
            ? "outbox relay: no consumer subscribes to this event type"
            : "outbox relay: unknown event type",
        );
      }
      const data: EventJobData = {
        type: record.type,
        payload: record.payload,
        occurredAt: record.createdAt.toISOString(),
      };
      for (const consumer of consumers) {
        const list = jobs.get(consumer) ?? [];
        list.push({ name: record.type, data, opts: { ...jobOptions, jobId: record.id } });
        jobs.set(consumer, list);
      }
    }
    await Promise.all(
      [...jobs].map(([consumer, list]) =>
        addJobs(queueOf(consumer), together && list.length > 1 ? [batchJob(list)] : list),
      ),
    );
  }

  function batchJob(list: EventJob[]): QueuedJob {
    const events = list.map((job) => ({ id: String(job.opts.jobId), ...job.data }));
    const data: EventBatchJobData = { events };
    return { name: EVENT_BATCH_JOB, data, opts: { ...jobOptions, jobId: `batch.${events[0]!.id}` } };
  }

  let stopping = false;
  let failing = false;
  /** A direct publish or mark failed: its events wait for a pass (the short poll until one succeeds). */
  let leftToPoll = false;
  let failedPasses = 0;

  /** Claims, enqueues and marks batches until the outbox is empty or something fails. */
  async function pass(): Promise<FlushResult> {
    let published = 0;
    try {
      await redisReady();
      while (!stopping) {
        const records = await store.claimUnpublished(batchSize);
        if (records.length === 0) break;
        // Still waiting for the hand-over window: enqueued here instead.
        if (pending.length > 0) {
          const claimed = new Set(records.map((record) => record.id));
          pending = pending.filter((record) => !claimed.has(record.id));
        }
        // Enqueued by publishCommitted and not marked yet: only marked here.
        const fresh = records.filter((record) => !enqueuedUnmarked.has(record.id));
        try {
          if (fresh.length > 0) await withTimeout(enqueue(fresh), publishTimeoutMs, "enqueueing events");
        } catch (error) {
          await store.markPublished([]).catch(() => undefined); // ends the claim
          throw error;
        }
        await store.markPublished(records.map((record) => record.id));
        published += fresh.length;
        logger.debug({ count: fresh.length }, "outbox relay: events published");
        if (records.length < batchSize) break;
      }
      if (failing) logger.info({ failedPasses }, "outbox relay: publishing again");
      failing = false;
      leftToPoll = false;
      failedPasses = 0;
      options.metrics?.observeOutbox({ published, failed: false });
      return { published };
    } catch (caught) {
      const error = asError(caught);
      // The first pass starts with the process, before its connection is up: a start-up busy
      // enough to hold the event loop past the ready timeout is not an outage (no connection error
      // seen, never connected yet). A warning, and the next failure is an error as usual.
      const slowStart = failedPasses === 0 && !everReady && lastRedisError === undefined;
      failedPasses += 1;
      if (slowStart)
        logger.warn(
          { err: error },
          "outbox relay: redis not connected yet at start-up; retrying on the next poll",
        );
      else if (!failing)
        logger.error({ err: error }, "outbox relay: publishing failed; retrying on every poll");
      else logger.debug({ err: error, failedPasses }, "outbox relay: publishing still failing");
      failing = !slowStart;
      options.metrics?.observeOutbox({ published, failed: true });
      return { published, error };
    }
  }

  // One pass at a time; a flush during a pass runs one more pass after it (so it sees every event
  // committed before it was called), shared by all flushes that arrive meanwhile.
  let running: Promise<FlushResult> | undefined;
  let next: Promise<FlushResult> | undefined;
  function flush(): Promise<FlushResult> {
    if (stopping) return Promise.resolve({ published: 0, error: new Error("outbox relay stopped") });
    if (!running) {
      running = pass().finally(() => {
        running = undefined;
      });
      return running;
    }
    next ??= running.then(() => {
      next = undefined;
      return flush();
    });
    return next;
  }

  // publishCommitted: events waiting to be enqueued, and those enqueued but not yet marked.
  const markDelayMs = options.markDelayMs ?? 100;
  const handOverWindowMs = options.handOverWindowMs ?? 0;
  let pending: OutboxRecord[] = [];
  let windowOpen = false;
  /** Ends the open window at once (stop). */
  let closeWindow: () => void = () => undefined;
  let sending: Promise<void> | undefined;
  const enqueuedUnmarked = new Set<string>();
  let marking: Promise<void> | undefined;
  let markTimer: NodeJS.Timeout | undefined;

  /** Enqueues what waited for the window, at most `batchSize` events to a job. */
  async function sendPending(): Promise<void> {
    const waiting = pending;
    pending = [];
    // Stopping: sent while Redis answers, else left to the poll.
    const more = () => !stopping || redis.status === "ready";
    for (let start = 0; start < waiting.length && more(); start += batchSize) {
      const batch = waiting.slice(start, start + batchSize);
      try {
        await redisReady();
        await withTimeout(enqueue(batch, true), publishTimeoutMs, "enqueueing events");
      } catch (error) {
        // Still unpublished in the outbox: the next poll enqueues them (and logs if Redis is away).
        logger.debug(
          { err: error, count: batch.length },
          "outbox relay: direct publish failed; left to the poll",
        );
        leftToPoll = true;
        schedule();
        continue;
      }
      options.metrics?.observeOutbox({ published: batch.length, failed: false });
      markSoon(batch.map((record) => record.id));
    }
  }

  /** Marks these events published with the next batch (at once when a batch is full). */
  function markSoon(ids: readonly string[]): void {
    for (const id of ids) enqueuedUnmarked.add(id);
    if (enqueuedUnmarked.size >= batchSize) void markEnqueued();
    else {
      markTimer ??= setTimeout(() => void markEnqueued(), markDelayMs);
      markTimer.unref();
    }
  }

  /**
   * Opens a hand-over window unless one is open: what is given until it closes leaves together. It
   * closes `handOverWindowMs` later (at the turn's end for 0) and not before the send before it is
   * done; at once on stop.
   */
  function startSending(): void {
    if (windowOpen || stopping) return;
    windowOpen = true;
    const waited = new Promise<void>((resolve) => {
      closeWindow = resolve;
      if (handOverWindowMs > 0) setTimeout(resolve, handOverWindowMs);
      else setImmediate(resolve);
    });
    const sendingBefore = sending;
    const sent: Promise<void> = Promise.all([waited, sendingBefore])
      .then(() => {
        windowOpen = false;
        return sendPending();
      })
      .finally(() => {
        if (sending === sent) sending = undefined;
      });
    sending = sent;
  }

  /** Marks what publishCommitted enqueued; on failure they are left to the poll (enqueued again, dropped as duplicates). */
  async function markEnqueued(): Promise<void> {
    clearTimeout(markTimer);
    markTimer = undefined;
    while (marking) await marking;
    const ids = [...enqueuedUnmarked];
    if (ids.length === 0) return;
    marking = store
      .markPublishedUnclaimed(ids)
      .catch((error: unknown) => {
        logger.debug({ err: error, count: ids.length }, "outbox relay: marking failed; left to the poll");
        leftToPoll = true;
        schedule();
      })
      .finally(() => {
        for (const id of ids) enqueuedUnmarked.delete(id);
        marking = undefined;
      });
    await marking;
  }

  // One poll timer at a time, re-armed after each poll and whenever the interval it should have changes.
  let listening = false;
  let timer: NodeJS.Timeout | undefined;
  let timerMs = 0;
  const intervalNow = () => (listening && !failing && !leftToPoll ? safetyPollIntervalMs : pollIntervalMs);
  function schedule(): void {
    if (stopping) return;
    const ms = intervalNow();
    if (timer && ms >= timerMs) return;
    clearTimeout(timer);
    timerMs = ms;
    timer = setTimeout(() => {
      timer = undefined;
      void flush().then(schedule);
    }, ms);
  }
  options.wakeUps?.start({
    wake: () => void flush().then(schedule),
    listening: (up) => {
      listening = up;
      // Back: what was committed while nobody listened is published now.
      if (up) void flush().then(schedule);
      else schedule();
    },
  });
  void flush().then(schedule);

  let stopped: Promise<void> | undefined;
  return {
    flush,
    publishCommitted(records) {
      if (stopping || records.length === 0) return;
      pending.push(...records);
      startSending();
    },
    markCommitted(ids) {
      if (stopping || ids.length === 0) return;
      markSoon(ids);
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(timer);
        await options.wakeUps?.stop();
        await next;
        await running;
        closeWindow(); // what waits for it leaves now
        await sending;
        await markEnqueued();
        await Promise.all([...queues.values()].map((queue) => queue.close().catch(() => undefined)));
        await closeRedis(redis);
      })();
      return stopped;
    },
  };
}

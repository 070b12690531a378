import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import {
  createProcessMetrics,
  createRedis,
  closeRedis,
  redisOptions,
  redisReadiness,
  startEventConsumer,
  startWorkerService,
  type Logger,
  type RunningService,
} from "@hv/kit";
import { createUsersDb, type UsersDb } from "../db";
import type { MailJob } from "../mail/jobs";
import { startMailWorker } from "../mail/worker";
import type { PushConfig } from "./config";
import { deliver, pushBackoff, RetryLaterError, type DeliveryOutcome, type Platform } from "./deliver";
import { fanOutHandlers, PUSH_QUEUE, type PushJob } from "./jobs";
import { createPushMetrics, type PushMetrics } from "./metrics";
import { apnsProvider } from "./providers/apns";
import { fcmProvider } from "./providers/fcm";
import { logProvider } from "./providers/log";
import type { PushProvider } from "./providers/types";

export interface RunningPushWorker extends RunningService {
  metrics: PushMetrics;
}

export interface PushWorkerOptions {
  /** Called when a job is finished: done, or failed for good (tests wait on it). */
  onJobDone?: (job: PushJob, outcome: DeliveryOutcome | Error) => void;
  /** Called when an account mail is sent, or given up. */
  onMailDone?: (job: MailJob, outcome: "sent" | Error) => void;
  /** The clock send-time decisions use (max age, quiet hours, session expiry); tests fix it. */
  now?: () => Date;
}

const CLEANUP_INTERVAL_MS = 3_600_000;

/**
 * A running job's BullMQ lock, renewed every half of it while the process lives. One job sends to
 * up to 20 devices at once, each send bounded by a 10 s request timeout (plus an OAuth token
 * fetch): a minute leaves room on a loaded machine, and a dead worker's job is taken over within a
 * minute or so (BullMQ's stalled check runs every 30 s).
 */
const LOCK_DURATION_MS = 60_000;
/**
 * A job whose worker died (deploys, OOM) is taken over; one that stalls a third time is failed
 * rather than crash-looping workers. Take-overs cannot double-send: devices are claimed in
 * `push_deliveries` first, and a dead run's claims are released only after their lease.
 */
const MAX_STALLED_COUNT = 2;

function providersFor(config: PushConfig, logger: Logger): Record<Platform, PushProvider> {
  const android =
    config.androidProvider === "fcm" && config.fcm ? fcmProvider(config.fcm) : logProvider(logger, "ANDROID");
  const ios =
    config.iosProvider === "apns" && config.apns ? apnsProvider(config.apns) : logProvider(logger, "IOS");
  return { ANDROID: android, IOS: ios };
}

/**
 * The users worker (named push-worker): account mails (subgraphs/users/src/mail), and push. The
 * push part is the users domain's process that turns `match.created` and `message.created`
 * (the `push` consumer's event queue) into one `push.deliveries` job per recipient, and sends
 * each job's notification to the recipient's devices through FCM or APNs. `/metrics` serves the
 * counters (Prometheus text format) beside `/healthz` and `/readyz`.
 */
export async function startPushWorker(
  config: PushConfig,
  logger: Logger,
  options: PushWorkerOptions = {},
): Promise<RunningPushWorker> {
  const processMetrics = createProcessMetrics("push-worker", { logger });
  const db: UsersDb = createUsersDb(config.databaseUrl, { metrics: processMetrics });
  const redis = createRedis(config.redis, logger, "push-worker");
  processMetrics.observeRedis("main", redis);
  const metrics = createPushMetrics(processMetrics.registry);
  const providers = providersFor(config, logger);
  const connection = redisOptions(config.redis);
  const policy = { maxAttempts: config.maxAttempts, maxAgeMinutes: config.maxAgeMinutes };
  const maxAgeMs = {
    message: config.maxAgeMinutes.message * 60_000,
    match: config.maxAgeMinutes.match * 60_000,
  };

  const queue = new Queue<PushJob>(PUSH_QUEUE, { connection, prefix: config.eventsPrefix });
  queue.on("error", (error: Error) => logger.warn({ err: error }, "push queue error"));
  processMetrics.observeQueue(queue);
  const consumer = startEventConsumer({
    consumer: "push",
    connection: config.redis,
    prefix: config.eventsPrefix,
    logger,
    metrics: processMetrics,
    handlers: fanOutHandlers(queue, policy, logger),
  });

  const processor = async (job: Job<PushJob>): Promise<DeliveryOutcome> => {
    try {
      return await deliver(job.data, job.attemptsMade + 1, {
        db,
        providers,
        metrics,
        logger,
        maxAttempts: job.opts.attempts ?? 1,
        maxAgeMs,
        ...(options.now ? { now: options.now } : {}),
      });
    } catch (error) {
      // deliver's own verdicts are counted per device; anything else is the database failing.
      if (!(error instanceof RetryLaterError) && !(error instanceof UnrecoverableError)) {
        metrics.failed.inc({ provider: "none", reason: "database" });
      }
      throw error;
    }
  };
  const worker = new Worker<PushJob, DeliveryOutcome>(PUSH_QUEUE, processor, {
    connection,
    prefix: config.eventsPrefix,
    concurrency: config.concurrency,
    lockDuration: LOCK_DURATION_MS,
    maxStalledCount: MAX_STALLED_COUNT,
    settings: {
      backoffStrategy: pushBackoff(config.retryBaseMs, (jobId, attemptsMade, retryInMs) =>
        logger.info({ jobId, attempt: attemptsMade, retryInMs }, "push job retry scheduled"),
      ),
    },
  });
  worker.on("error", (error: Error) => logger.error({ err: error }, "push worker error"));
  processMetrics.observeWorker(worker);
  worker.on("completed", (job, outcome) => options.onJobDone?.(job.data, outcome));
  worker.on("failed", (job, error) => {
    if (!job) return;
    const willRetry = job.finishedOn === undefined;
    logger[willRetry ? "info" : "error"](
      { err: error, jobId: job.id, attempt: job.attemptsMade },
      willRetry ? "push job will be retried" : "push job failed for good",
    );
    // Given up without deliver's verdict (attempts used up on database errors, stalled too often):
    // deliver counted its own verdicts per device already.
    if (!willRetry && !(error instanceof UnrecoverableError))
      metrics.failed.inc({ provider: "none", reason: "exhausted" });
    if (!willRetry) options.onJobDone?.(job.data, error);
  });

  // Deliveries are remembered for the retention window, as long as finished jobs are kept.
  const cleanup = async () => {
    try {
      const cutoff = new Date(Date.now() - config.deliveryRetentionHours * 3_600_000);
      const removed = await db.pushDelivery.deleteMany({ where: { createdAt: { lt: cutoff } } });
      if (removed.count > 0) logger.info({ removed: removed.count }, "push: old deliveries forgotten");
    } catch (error) {
      logger.warn({ err: error }, "push: cleaning old deliveries failed");
    }
  };
  const cleanupTimer = setInterval(() => void cleanup(), CLEANUP_INTERVAL_MS);
  cleanupTimer.unref();
  void cleanup();

  const mail = startMailWorker({
    mail: config.mail,
    redis: config.redis,
    prefix: config.eventsPrefix,
    logger: logger.child({ part: "mail" }),
    metrics: processMetrics,
    ...(options.onMailDone ? { onMailDone: options.onMailDone } : {}),
  });

  const running = await startWorkerService({
    name: "push-worker",
    logger,
    host: config.host,
    port: config.port,
    readiness: [{ name: "database", check: () => db.$queryRawUnsafe("SELECT 1") }, redisReadiness(redis)],
    metrics: processMetrics,
    onStopped: async () => {
      clearInterval(cleanupTimer);
      await consumer.stop();
      await worker.close();
      await mail.close();
      await queue.close();
      await Promise.all(Object.values(providers).map((provider) => provider.close()));
      await closeRedis(redis);
      await db.$disconnect();
    },
  });
  return { ...running, metrics };
}

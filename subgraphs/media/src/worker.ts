import path from "node:path";
import { Worker, type Job } from "bullmq";
import { closeRedis, createRedis, redisReadiness, startWorkerService, type Logger, type RunningService } from "@hv/kit";
import type { MediaWorkerConfig } from "./config";
import { createMediaDb } from "./db";
import { publishMediaUpdate } from "./live";
import { connectionOf, MEDIA_QUEUE, PROCESSOR_CONFIG_ENV, type MediaJobData, type MediaJobResult } from "./queue";
import { createStorage } from "./storage/create";

export interface RunningMediaWorker extends RunningService {
  worker: Worker<MediaJobData, MediaJobResult>;
}

/**
 * The media worker process: a BullMQ worker on the `media.process` queue whose processor runs
 * sandboxed in child processes (processor.js → processor.ts), plus `/healthz` and `/readyz`.
 * A job's lock is renewed while it runs; if this process dies, the lock lapses after
 * MEDIA_WORKER_LOCK_SECONDS and another worker's stalled-job check takes the job over (twice at
 * most: a file that kills its worker every time ends FAILED rather than looping forever).
 */
export async function startMediaWorker(config: MediaWorkerConfig, logger: Logger): Promise<RunningMediaWorker> {
  const db = createMediaDb(config.databaseUrl);
  const storage = createStorage(config.storage, () => "http://127.0.0.1");
  const redis = createRedis(config.redisUrl, logger, "media-worker");
  const lockMs = config.lockSeconds * 1000;
  const worker = new Worker<MediaJobData, MediaJobResult>(MEDIA_QUEUE, path.join(__dirname, "processor.js"), {
    connection: connectionOf(config.redisUrl),
    prefix: config.eventsPrefix,
    concurrency: config.concurrency,
    useWorkerThreads: false,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: 2,
    workerForkOptions: { env: { ...process.env, [PROCESSOR_CONFIG_ENV]: JSON.stringify(config) } },
  });
  worker.on("error", (error) => logger.warn({ err: error }, "media worker error"));
  worker.on("completed", (job: Job<MediaJobData, MediaJobResult>, result: MediaJobResult) => {
    logger.info({ mediaId: job.data.mediaId, status: result.status, attempts: job.attemptsMade }, "media job completed");
    if (result.ownerId && result.status !== "GONE") void publishMediaUpdate(redis, config.eventsPrefix, { mediaId: result.mediaId, ownerId: result.ownerId }, logger);
  });
  worker.on("failed", (job: Job<MediaJobData, MediaJobResult> | undefined, error: Error) => {
    if (!job) return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than/i.test(error.message);
    logger.warn({ err: error, mediaId: job.data.mediaId, attempts: job.attemptsMade, final }, "media job failed");
    if (!final) return;
    // The processor records PROCESSING_ERROR itself on its last attempt, unless it died doing it.
    void (async () => {
      const { count } = await db.media.updateMany({
        where: { id: job.data.mediaId, status: { in: ["PENDING", "PROCESSING"] } },
        data: { status: "FAILED", failureReason: "PROCESSING_ERROR", processedAt: new Date() },
      });
      const row = await db.media.findUnique({ where: { id: job.data.mediaId }, select: { ownerId: true } });
      if (row && count > 0) await publishMediaUpdate(redis, config.eventsPrefix, { mediaId: job.data.mediaId, ownerId: row.ownerId }, logger);
    })().catch((err: unknown) => logger.error({ err, mediaId: job.data.mediaId }, "could not record a failed media job"));
  });
  await worker.waitUntilReady();

  const service = await startWorkerService({
    name: "media-worker",
    logger,
    host: config.host,
    port: config.port,
    readiness: [
      { name: "database", check: () => db.$queryRawUnsafe("SELECT 1") },
      redisReadiness(redis),
      { name: "storage", check: () => storage.ping() },
    ],
    onStopped: async () => {
      await worker.close();
      await db.$disconnect();
      await storage.close();
      await closeRedis(redis);
    },
  });
  return { ...service, worker };
}

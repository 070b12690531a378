import { readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Worker, type Job } from "bullmq";
import {
  closeRedis,
  createProcessMetrics,
  createRedis,
  FORCE_EXIT_MS,
  redisReadiness,
  startWorkerService,
  type Logger,
  type RunningService,
} from "@hv/kit";
import type { MediaWorkerConfig } from "./config";
import { createMediaDatabase, type MediaDb } from "./db";
import { WORK_DIR_PREFIX } from "./job";
import { keysOf } from "./keys";
import { publishMediaUpdate } from "./live";
import { PhotoCache } from "./modules/photo-cache";
import { checkMediaTools } from "./processing";
import { processorEnvironment } from "./processor-settings";
import {
  connectionOf,
  createMaintenanceQueue,
  createMediaQueue,
  MAINTENANCE_QUEUE,
  MEDIA_QUEUE,
  PROCESSOR_CONFIG_ENV,
  type MaintenanceJobData,
  type MediaJobData,
  type MediaJobResult,
} from "./queue";
import type { MediaStorage } from "./storage";
import { createStorage } from "./storage/create";

export interface RunningMediaWorker extends RunningService {
  worker: Worker<MediaJobData, MediaJobResult>;
  maintenance: Worker<MaintenanceJobData>;
}

/** The worker's stop deadline for runMain: running jobs get MEDIA_WORKER_DRAIN_SECONDS, the rest the usual 15 s. */
export function mediaWorkerStopDeadlineMs(config: Pick<MediaWorkerConfig, "drainSeconds">): number {
  return config.drainSeconds * 1000 + FORCE_EXIT_MS;
}

/**
 * Deletes uploads never completed: PENDING, no `completeUpload`, and their upload URL expired more
 * than `graceSeconds` ago. Bytes first (the derived original key too), then the row, so nothing
 * stays behind; a `completeUpload` racing the sweep ends FAILED `EMPTY`. Returns how many went.
 */
export async function sweepAbandonedUploads(
  db: MediaDb,
  storage: MediaStorage,
  graceSeconds: number,
  logger: Logger,
  now = new Date(),
): Promise<number> {
  const cutoff = new Date(now.getTime() - graceSeconds * 1000);
  let swept = 0;
  for (;;) {
    const rows = await db.media.findMany({
      where: { status: "PENDING", uploadedAt: null, uploadExpiresAt: { lt: cutoff } },
      select: { id: true, ownerId: true, sourceKey: true, variants: true },
      take: 200,
    });
    for (const row of rows) {
      await storage.delete(keysOf(row));
      const { count } = await db.media.deleteMany({
        where: { id: row.id, status: "PENDING", uploadedAt: null },
      });
      swept += count;
    }
    if (rows.length < 200) break;
  }
  if (swept > 0) logger.info({ swept }, "abandoned uploads swept");
  return swept;
}

/**
 * Temp folders of jobs whose process is gone (a sandbox child killed mid-job leaves its
 * `hv-media-<pid>-…` behind): removed at start-up. Folders of live processes (other workers on
 * this host) stay.
 */
export async function removeStaleWorkDirs(logger: Logger, dir = os.tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || !entry.name.startsWith(WORK_DIR_PREFIX)) continue;
    const pid = Number(/^hv-media-(\d+)-/.exec(entry.name)?.[1]);
    if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) continue;
    await rm(path.join(dir, entry.name), { recursive: true, force: true });
    removed.push(entry.name);
  }
  if (removed.length > 0) logger.info({ removed: removed.length }, "stale media temp folders removed");
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The media worker process: a BullMQ worker on the `media.process` queue whose processor runs
 * sandboxed in child processes (processor.js → processor.ts), plus `/healthz` and `/readyz`.
 * A job's lock is renewed while it runs; if this process dies, the lock lapses after
 * MEDIA_WORKER_LOCK_SECONDS and another worker's stalled-job check takes the job over (twice at
 * most: a file that kills its worker every time ends FAILED rather than looping forever).
 */
export async function startMediaWorker(
  config: MediaWorkerConfig,
  logger: Logger,
  options: { sweepEveryMs?: number } = {},
): Promise<RunningMediaWorker> {
  // Fail fast: a worker without ffmpeg would take jobs only to fail them.
  const tools = await checkMediaTools(config);
  logger.info(tools, "media tools found");
  await removeStaleWorkDirs(logger);
  const metrics = createProcessMetrics("media-worker", { logger });
  const { db, sql } = createMediaDatabase(config.databaseUrl, { metrics });
  const storage = createStorage(config.storage, () => "http://127.0.0.1");
  const redis = createRedis(config.redis, logger, "media-worker");
  metrics.observeRedis("main", redis);
  const photos = new PhotoCache(sql, redis, logger);
  // A finished item changes what its owner's profile photo list holds: the cache goes first, so
  // the owner's nudge (and anyone's next read) finds it fresh.
  const finished = async (mediaId: string, ownerId: string) => {
    await photos
      .invalidate(ownerId)
      .catch((error: unknown) =>
        logger.error({ err: error, mediaId }, "could not invalidate the profile photo cache"),
      );
    await publishMediaUpdate(redis, config.eventsPrefix, { mediaId, ownerId }, logger);
  };
  const lockMs = config.lockSeconds * 1000;
  const worker = new Worker<MediaJobData, MediaJobResult>(MEDIA_QUEUE, path.join(__dirname, "processor.js"), {
    connection: connectionOf(config.redis),
    prefix: config.eventsPrefix,
    concurrency: config.concurrency,
    useWorkerThreads: false,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: 2,
    // The child gets what a job needs, not this process's environment (secrets of other parts).
    workerForkOptions: { env: processorEnvironment(config, process.env, PROCESSOR_CONFIG_ENV) },
  });
  worker.on("error", (error) => logger.warn({ err: error }, "media worker error"));
  metrics.observeWorker(worker);
  worker.on("completed", (job: Job<MediaJobData, MediaJobResult>, result: MediaJobResult) => {
    logger.info(
      { mediaId: job.data.mediaId, status: result.status, attempts: job.attemptsMade },
      "media job completed",
    );
    if (result.ownerId && result.status !== "GONE") void finished(result.mediaId, result.ownerId);
  });
  worker.on("failed", (job: Job<MediaJobData, MediaJobResult> | undefined, error: Error) => {
    if (!job) return;
    const unrecoverable = error.name === "UnrecoverableError";
    const final =
      unrecoverable ||
      job.attemptsMade >= (job.opts.attempts ?? 1) ||
      /stalled more than/i.test(error.message);
    logger.warn(
      { err: error, mediaId: job.data.mediaId, attempts: job.attemptsMade, final },
      "media job failed",
    );
    if (!final) return;
    // The processor records PROCESSING_ERROR itself on its last attempt, unless it died doing it.
    void (async () => {
      const { count } = await db.media.updateMany({
        where: { id: job.data.mediaId, status: { in: ["PENDING", "PROCESSING"] } },
        data: { status: "FAILED", failureReason: "PROCESSING_ERROR", processedAt: new Date() },
      });
      const row = await db.media.findUnique({ where: { id: job.data.mediaId }, select: { ownerId: true } });
      if (row && (count > 0 || unrecoverable)) await finished(job.data.mediaId, row.ownerId);
    })().catch((err: unknown) =>
      logger.error({ err, mediaId: job.data.mediaId }, "could not record a failed media job"),
    );
  });
  await worker.waitUntilReady();

  // Housekeeping in this process (light work, no sandbox): the sweep on a schedule, purges when due.
  const maintenanceQueue = createMaintenanceQueue(config.redis, config.eventsPrefix);
  const sweepEveryMs = options.sweepEveryMs ?? Math.min(60_000, config.uploadGraceSeconds * 1000);
  await maintenanceQueue.upsertJobScheduler(
    "sweep-abandoned-uploads",
    { every: sweepEveryMs },
    { name: "sweep", data: {}, opts: { removeOnComplete: true, removeOnFail: 100 } },
  );
  const maintenance = new Worker<MaintenanceJobData>(
    MAINTENANCE_QUEUE,
    async (job) => {
      if (job.name === "sweep") return sweepAbandonedUploads(db, storage, config.uploadGraceSeconds, logger);
      if (job.name === "purge" && "keys" in job.data && Array.isArray(job.data.keys)) {
        await storage.delete(job.data.keys);
        return job.data.keys.length;
      }
      return null;
    },
    { connection: connectionOf(config.redis), prefix: config.eventsPrefix, concurrency: 1 },
  );
  maintenance.on("error", (error) => logger.warn({ err: error }, "media maintenance worker error"));
  metrics.observeWorker(maintenance);
  // Depths of both queues on every scrape (the processing queue is what KEDA scales the workers on).
  const depthQueue = createMediaQueue(config.redis, config.eventsPrefix);
  metrics.observeQueue(depthQueue);
  metrics.observeQueue(maintenanceQueue);
  maintenance.on("failed", (job, error) =>
    logger.warn({ err: error, job: job?.name }, "media maintenance job failed"),
  );
  await maintenance.waitUntilReady();

  const service = await startWorkerService({
    name: "media-worker",
    logger,
    host: config.host,
    port: config.port,
    metrics,
    readiness: [
      { name: "database", check: () => db.$queryRawUnsafe("SELECT 1") },
      redisReadiness(redis),
      { name: "storage", check: () => storage.ping() },
    ],
    onStopped: async () => {
      // Running jobs may finish for MEDIA_WORKER_DRAIN_SECONDS; then they are cancelled: each kills
      // its ffmpeg and moves its job back to the waiting list (no attempt, no stall counted), and
      // close() ends the sandbox children.
      const closing = worker.close();
      const drain = setTimeout(() => {
        logger.warn(
          { drainSeconds: config.drainSeconds },
          "media jobs still running: handing them back to the queue",
        );
        worker.cancelAllJobs("shutdown");
      }, config.drainSeconds * 1000);
      await closing.finally(() => clearTimeout(drain));
      await maintenance.close();
      await maintenanceQueue.close();
      await depthQueue.close();
      await db.$disconnect();
      await storage.close();
      await closeRedis(redis);
    },
  });
  return { ...service, worker, maintenance };
}

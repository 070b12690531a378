import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import { redisOptions, type RedisTarget } from "@hv/kit";

/** The transcoding queue: one job per media item, its id the media id (so a job is never queued twice). */
export const MEDIA_QUEUE = "media.process";

/** The worker hands its settings to the sandboxed processor (a child process) in this variable. */
export const PROCESSOR_CONFIG_ENV = "HV_MEDIA_PROCESSOR_CONFIG";

export interface MediaJobData {
  mediaId: string;
}

/** What a finished job returns (BullMQ keeps it as the job's return value). */
export interface MediaJobResult {
  mediaId: string;
  ownerId: string | null;
  status: "READY" | "FAILED" | "GONE";
  failureReason: string | null;
}

export const MEDIA_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: "exponential", delay: 2_000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** BullMQ's connection options for the configured Redis (REDIS_URL or sentinels) or a `redis://` URL. */
export function connectionOf(redis: RedisTarget | string): ConnectionOptions {
  return redisOptions(redis);
}

export function createMediaQueue(
  redis: RedisTarget | string,
  prefix: string,
): Queue<MediaJobData, MediaJobResult> {
  return new Queue<MediaJobData, MediaJobResult>(MEDIA_QUEUE, { connection: connectionOf(redis), prefix });
}

/** Queues processing; a second call for the same media while its job exists is a no-op. */
export async function enqueueProcessing(
  queue: Queue<MediaJobData, MediaJobResult>,
  mediaId: string,
): Promise<void> {
  await queue.add("process", { mediaId }, { ...MEDIA_JOB_OPTIONS, jobId: mediaId });
}

/**
 * Housekeeping, run by the media worker process itself (not sandboxed): `sweep` (a BullMQ job
 * scheduler, every minute or so) deletes uploads never completed; `purge` (delayed) deletes an
 * original's key once more when its upload URL can no longer be used, so a PUT after processing or
 * deletion (S3 accepts it while the URL lives) leaves nothing behind.
 */
export const MAINTENANCE_QUEUE = "media.maintenance";

export type MaintenanceJobData = { keys: string[] } | Record<string, never>;

export function createMaintenanceQueue(
  redis: RedisTarget | string,
  prefix: string,
): Queue<MaintenanceJobData> {
  return new Queue<MaintenanceJobData>(MAINTENANCE_QUEUE, { connection: connectionOf(redis), prefix });
}

/** Deletes `keys` at `at` (or now, if that has passed). */
export async function schedulePurge(
  queue: Queue<MaintenanceJobData>,
  keys: string[],
  at: Date,
): Promise<void> {
  if (keys.length === 0) return;
  await queue.add(
    "purge",
    { keys },
    {
      delay: Math.max(0, at.getTime() - Date.now()),
      attempts: 10,
      backoff: { type: "exponential", delay: 5_000 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  );
}

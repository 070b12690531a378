import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";

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

export function connectionOf(redisUrl: string): ConnectionOptions {
  return { url: redisUrl };
}

export function createMediaQueue(redisUrl: string, prefix: string): Queue<MediaJobData, MediaJobResult> {
  return new Queue<MediaJobData, MediaJobResult>(MEDIA_QUEUE, { connection: connectionOf(redisUrl), prefix });
}

/** Queues processing; a second call for the same media while its job exists is a no-op. */
export async function enqueueProcessing(queue: Queue<MediaJobData, MediaJobResult>, mediaId: string): Promise<void> {
  await queue.add("process", { mediaId }, { ...MEDIA_JOB_OPTIONS, jobId: mediaId });
}

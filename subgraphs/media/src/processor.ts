import { WaitingError, type SandboxedJob } from "bullmq";
import { createLogger } from "@hv/kit";
import { createMediaDb } from "./db";
import { JobHandedBack, runMediaJob, type JobRuntime } from "./job";
import { purgeSourceLater } from "./keys";
import { processMedia } from "./processing";
import {
  createMaintenanceQueue,
  PROCESSOR_CONFIG_ENV,
  type MediaJobData,
  type MediaJobResult,
} from "./queue";
import type { ProcessorSettings } from "./processor-settings";
import { createStorage } from "./storage/create";

/**
 * The sandboxed processor: BullMQ runs it in a child process of the worker (through
 * processor.js, which registers tsx), so decoding and transcoding never block the worker's
 * event loop, and a crash here (a decoder bug, memory blow-up) kills only the child. Its settings
 * come from the parent in one environment variable (only what a job needs: processor-settings.ts);
 * each child keeps one database pool and one storage client for the jobs it runs.
 */

let runtime: JobRuntime | undefined;

function runtimeOf(): JobRuntime {
  if (runtime) return runtime;
  const text = process.env[PROCESSOR_CONFIG_ENV];
  if (!text)
    throw new Error(
      `${PROCESSOR_CONFIG_ENV} is not set: the media worker passes it to its sandboxed processor`,
    );
  const settings = JSON.parse(text) as ProcessorSettings;
  const logger = createLogger({ service: "media-processor", level: settings.logLevel });
  const maintenance = createMaintenanceQueue(settings.redis, settings.eventsPrefix);
  const timeoutMs = settings.processingTimeoutSeconds * 1000;
  runtime = {
    db: createMediaDb(settings.databaseUrl),
    storage: createStorage(settings.storage, () => "http://127.0.0.1"),
    logger,
    limits: settings.limits,
    processOptions: {
      ffmpegPath: settings.ffmpegPath,
      ffprobePath: settings.ffprobePath,
      ffmpegTimeoutMs: timeoutMs,
      sharpTimeoutSeconds: settings.processingTimeoutSeconds,
    },
    processMedia,
    timeoutMs,
    purgeSourceLater: (media) => purgeSourceLater(maintenance, media, settings.uploadGraceSeconds),
  };
  // The worker is gone (killed): nothing will collect this child's results, so it goes too.
  process.once("disconnect", () => process.exit(1));
  return runtime;
}

export default async function processMediaJob(
  job: SandboxedJob<MediaJobData, MediaJobResult>,
  token?: string,
  signal?: AbortSignal,
): Promise<MediaJobResult> {
  const mediaId = job.data.mediaId;
  try {
    return await runMediaJob(runtimeOf(), mediaId, {
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if (error instanceof JobHandedBack && token) {
      // Back to the waiting list, lock released, no attempt counted: another worker starts it afresh.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    throw error;
  }
}

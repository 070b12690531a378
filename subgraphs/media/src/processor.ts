import type { SandboxedJob } from "bullmq";
import { createLogger } from "@hv/kit";
import type { MediaWorkerConfig } from "./config";
import { createMediaDb } from "./db";
import { runMediaJob, type JobRuntime } from "./job";
import { processMedia } from "./processing";
import { PROCESSOR_CONFIG_ENV, type MediaJobData, type MediaJobResult } from "./queue";
import { createStorage } from "./storage/create";

/**
 * The sandboxed processor: BullMQ runs it in a child process of the worker (through
 * processor.js, which registers tsx), so decoding and transcoding never block the worker's
 * event loop, and a crash here (a decoder bug, memory blow-up) kills only the child. Its settings
 * come from the parent in one environment variable; each child keeps one database pool and one
 * storage client for the jobs it runs.
 */

let runtime: JobRuntime | undefined;

function runtimeOf(): JobRuntime {
  if (runtime) return runtime;
  const text = process.env[PROCESSOR_CONFIG_ENV];
  if (!text) throw new Error(`${PROCESSOR_CONFIG_ENV} is not set: the media worker passes it to its sandboxed processor`);
  const config = JSON.parse(text) as MediaWorkerConfig;
  const logger = createLogger({ service: "media-processor", level: config.logLevel });
  runtime = {
    db: createMediaDb(config.databaseUrl),
    storage: createStorage(config.storage, () => "http://127.0.0.1"),
    logger,
    limits: config.limits,
    processOptions: { ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath },
    processMedia,
  };
  return runtime;
}

export default async function processMediaJob(job: SandboxedJob<MediaJobData, MediaJobResult>): Promise<MediaJobResult> {
  const mediaId = job.data.mediaId;
  return runMediaJob(runtimeOf(), mediaId, { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1 });
}

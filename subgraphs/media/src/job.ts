import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "@hv/kit";
import { UnrecoverableError } from "bullmq";
import type { MediaDb } from "./db";
import type { MediaFailureReason as DbFailureReason } from "./generated/prisma/client";
import {
  MediaToolError,
  type MediaLimits,
  type ProcessOptions,
  type ProcessResult,
  type ProcessInput,
} from "./processing";
import type { MediaJobResult } from "./queue";
import { sourceKey, variantKey, type MediaStorage } from "./storage";
import type { StoredVariant } from "./variants";

export interface JobRuntime {
  db: MediaDb;
  storage: MediaStorage;
  logger: Logger;
  limits: { IMAGE: MediaLimits; VIDEO: MediaLimits };
  processOptions: ProcessOptions;
  processMedia: (input: ProcessInput, options: ProcessOptions) => Promise<ProcessResult>;
  /** The watchdog: one job's whole processing ends after this long (PROCESSING_TIMEOUT). */
  timeoutMs: number;
  /** Deletes the original's key once more when its upload URL can no longer be used (see keys.ts). */
  purgeSourceLater?: (media: { id: string; ownerId: string; uploadExpiresAt: Date | null }) => Promise<void>;
}

/** Prefix of a job's temp folder: `hv-media-<pid>-<mediaId>-…`, so a worker can tell stale ones (dead pid). */
export const WORK_DIR_PREFIX = "hv-media-";

/** The job was given back to the queue (the worker is stopping): not a failure, no attempt counted. */
export class JobHandedBack extends Error {
  constructor() {
    super("the worker is stopping: job handed back to the queue");
    this.name = "JobHandedBack";
  }
}

class WatchdogTimeout extends Error {
  constructor(ms: number) {
    super(`processing ran longer than ${ms} ms`);
    this.name = "WatchdogTimeout";
  }
}

export interface JobAttempt {
  /** 1 on the first attempt. */
  attempt: number;
  maxAttempts: number;
  /** BullMQ's cancellation of this job (the worker is stopping): kills ffmpeg, hands the job back. */
  signal?: AbortSignal;
}

/**
 * Processes one media item, idempotently: a job that runs again (a retry, a stalled job taken
 * over by another worker) finds the row READY or FAILED and only tidies up, or redoes the work
 * and overwrites the same variant keys. Problems with the file itself end in FAILED with the
 * processor's reason and are not retried; anything else (storage, database, ffmpeg missing)
 * throws, so BullMQ retries with backoff, and the last attempt records PROCESSING_ERROR.
 */
export async function runMediaJob(
  runtime: JobRuntime,
  mediaId: string,
  attempt: JobAttempt,
): Promise<MediaJobResult> {
  const { db, storage, logger } = runtime;
  const media = await db.media.findUnique({ where: { id: mediaId } });
  if (!media) return { mediaId, ownerId: null, status: "GONE", failureReason: null };
  if (media.status === "READY" || media.status === "FAILED") {
    await dropSource(runtime, media);
    return { mediaId, ownerId: media.ownerId, status: media.status, failureReason: media.failureReason };
  }
  if (!media.sourceKey || media.contentType === null || media.byteSize === null) {
    return finish(runtime, mediaId, media.ownerId, "FAILED", { failureReason: "EMPTY" });
  }
  await db.media.updateMany({
    where: { id: mediaId, status: { in: ["PENDING", "PROCESSING"] } },
    data: { status: "PROCESSING" },
  });

  const workDir = await mkdtemp(path.join(os.tmpdir(), `${WORK_DIR_PREFIX}${process.pid}-${mediaId}-`));
  const watchdog = new AbortController();
  const timer = setTimeout(() => watchdog.abort(new WatchdogTimeout(runtime.timeoutMs)), runtime.timeoutMs);
  const signal = attempt.signal ? AbortSignal.any([watchdog.signal, attempt.signal]) : watchdog.signal;
  try {
    const sourcePath = path.join(workDir, "source");
    const outputDir = path.join(workDir, "out");
    await mkdir(outputDir);
    if ((await storage.stat(media.sourceKey)) === null) {
      return finish(runtime, mediaId, media.ownerId, "FAILED", { failureReason: "EMPTY" });
    }
    await storage.download(media.sourceKey, sourcePath);
    const result = await runtime.processMedia(
      {
        kind: media.kind,
        declaredContentType: media.contentType,
        declaredByteSize: media.byteSize,
        sourcePath,
        workDir: outputDir,
        limits: runtime.limits[media.kind],
      },
      { ...runtime.processOptions, signal },
    );
    if (watchdog.signal.aborted) throw watchdog.signal.reason;
    if (!result.ok) {
      logger.info({ mediaId, reason: result.reason, detail: result.detail }, "media refused by processing");
      return finish(
        runtime,
        mediaId,
        media.ownerId,
        "FAILED",
        { failureReason: result.reason },
        media.sourceKey,
        media.uploadExpiresAt,
      );
    }
    const variants: StoredVariant[] = [];
    for (const variant of result.variants) {
      const key = variantKey(media.ownerId, mediaId, variant.name);
      await storage.upload(key, variant.path, variant.contentType);
      variants.push({
        name: variant.name,
        contentType: variant.contentType,
        width: variant.width,
        height: variant.height,
        byteSize: variant.byteSize,
        key,
      });
    }
    return finish(
      runtime,
      mediaId,
      media.ownerId,
      "READY",
      {
        width: result.width,
        height: result.height,
        durationMs: result.durationMs,
        blurhash: result.blurhash,
        variants: variants as object[],
      },
      media.sourceKey,
      media.uploadExpiresAt,
    );
  } catch (error) {
    const timedOut = watchdog.signal.aborted || (error instanceof MediaToolError && error.kind === "timeout");
    if (timedOut) {
      // Slow is how this file is: running it again would only take as long. Fail it, no retries.
      logger.warn({ mediaId, err: error }, "media processing timed out");
      await finish(
        runtime,
        mediaId,
        media.ownerId,
        "FAILED",
        { failureReason: "PROCESSING_TIMEOUT" },
        media.sourceKey,
        media.uploadExpiresAt,
      );
      throw new UnrecoverableError(
        `PROCESSING_TIMEOUT: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (attempt.signal?.aborted) throw new JobHandedBack();
    if (attempt.attempt >= attempt.maxAttempts) {
      logger.error({ err: error, mediaId, attempt: attempt.attempt }, "media processing failed for good");
      await finish(
        runtime,
        mediaId,
        media.ownerId,
        "FAILED",
        { failureReason: "PROCESSING_ERROR" },
        media.sourceKey,
        media.uploadExpiresAt,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    await rm(workDir, { recursive: true, force: true });
  }
}

async function finish(
  runtime: JobRuntime,
  mediaId: string,
  ownerId: string,
  status: "READY" | "FAILED",
  data: {
    failureReason?: DbFailureReason;
    width?: number;
    height?: number;
    durationMs?: number | null;
    blurhash?: string | null;
    variants?: object[];
  },
  source?: string | null,
  uploadExpiresAt?: Date | null,
): Promise<MediaJobResult> {
  // The original's key as stored and as derived from owner and id (a late PUT writes the latter).
  const sources = source ? [...new Set([source, sourceKey(ownerId, mediaId)])] : [];
  // Only a row still in flight changes: a duplicate run never overwrites a finished one. The
  // original's key goes with the same write, and the object right after (a crash in between leaves
  // an unreferenced object that no URL can reach, never a READY row whose retry finds no source).
  const { count } = await runtime.db.media.updateMany({
    where: { id: mediaId, status: { in: ["PENDING", "PROCESSING"] } },
    data: { ...data, status, processedAt: new Date(), ...(source ? { sourceKey: null } : {}) },
  });
  const row = await runtime.db.media.findUnique({
    where: { id: mediaId },
    select: { status: true, failureReason: true },
  });
  if (!row) {
    // Deleted while it was processed: whatever was written for it goes too.
    const written = (data.variants ?? []).map((variant) => (variant as StoredVariant).key);
    await runtime.storage.delete([...written, ...sources]);
    return { mediaId, ownerId, status: "GONE", failureReason: null };
  }
  if (sources.length > 0) {
    await runtime.storage.delete(sources);
    await runtime.purgeSourceLater?.({ id: mediaId, ownerId, uploadExpiresAt: uploadExpiresAt ?? null });
  }
  runtime.logger.info({ mediaId, status: row.status, changed: count === 1 }, "media processed");
  return {
    mediaId,
    ownerId,
    status: row.status === "READY" ? "READY" : "FAILED",
    failureReason: row.failureReason,
  };
}

/** The original may carry GPS and other metadata: once processed, only the clean variants stay. */
async function dropSource(
  runtime: JobRuntime,
  media: { id: string; ownerId: string; sourceKey: string | null },
): Promise<void> {
  const derived = sourceKey(media.ownerId, media.id);
  await runtime.storage.delete(
    media.sourceKey && media.sourceKey !== derived ? [media.sourceKey, derived] : [derived],
  );
  if (media.sourceKey)
    await runtime.db.media.updateMany({
      where: { id: media.id, sourceKey: media.sourceKey },
      data: { sourceKey: null },
    });
}

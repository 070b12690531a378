/**
 * Media processing: bytes in, safe variants out. Pure functions over files on disk — no
 * database, no queue, no storage. The media worker downloads the upload to `sourcePath`, calls
 * `processMedia`, uploads the variants it returns and records the result.
 *
 * - The real type comes from the bytes, never from the declared content type.
 * - Limits are checked before decoding (file size, pixel count from the header, duration from
 *   the container), so a decompression bomb is refused without being decoded.
 * - Variants carry no metadata at all (EXIF, GPS, XMP, ICC, QuickTime location).
 */

import { stat } from "node:fs/promises";
import { processImage } from "./image";
import { MediaToolError, runTool } from "./run-tool";
import {
  formatOfContentType,
  IMAGE_FORMATS,
  promisedLength,
  readHead,
  sniffFormat,
  VIDEO_FORMATS,
} from "./sniff";
import { processVideo } from "./video";

export { MediaToolError } from "./run-tool";

export interface MediaLimits {
  /** Largest accepted upload, in bytes. */
  maxBytes: number;
  /** Largest accepted width × height (images, and each video frame). */
  maxPixels: number;
  /** Longest accepted video, in seconds. */
  maxVideoSeconds: number;
}

export interface ProcessInput {
  kind: "IMAGE" | "VIDEO";
  /** What the client said it uploads (e.g. `image/jpeg`); checked against the bytes. */
  declaredContentType: string;
  /** What the client said the size is; a bigger file is refused. */
  declaredByteSize: number;
  /** The uploaded bytes on local disk. */
  sourcePath: string;
  /** An existing, empty directory owned by this job; variants are written here. */
  workDir: string;
  limits: MediaLimits;
}

export interface ProcessedVariant {
  /** Stable name, one of IMAGE_VARIANT_NAMES or VIDEO_VARIANT_NAMES. */
  name: string;
  contentType: string;
  /** Inside `workDir`. */
  path: string;
  width: number;
  height: number;
  byteSize: number;
}

export type MediaFailureReason =
  | "EMPTY"
  | "TRUNCATED"
  | "TYPE_MISMATCH"
  | "UNSUPPORTED_TYPE"
  | "TOO_LARGE"
  | "TOO_MANY_PIXELS"
  | "TOO_LONG"
  | "CORRUPT";

export type ProcessResult =
  | {
      ok: true;
      /** Of the upright (orientation applied) original. */
      width: number;
      height: number;
      durationMs: number | null;
      blurhash: string | null;
      variants: ProcessedVariant[];
    }
  | { ok: false; reason: MediaFailureReason; detail: string };

export interface ProcessOptions {
  ffmpegPath: string;
  ffprobePath: string;
  /** Aborting kills a running ffmpeg/ffprobe and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Longest one ffmpeg run may take before it is killed (default 10 minutes). */
  ffmpegTimeoutMs?: number;
  /** sharp's own time limit for each image pipeline, in seconds (0 or unset: none). */
  sharpTimeoutSeconds?: number;
}

/**
 * Every image yields all six variants (the long side is at most 160, 640 or 1280 px and never
 * larger than the original, so a small image's larger variants have its own size).
 */
export const IMAGE_VARIANT_NAMES = [
  "160.webp",
  "160.jpg",
  "640.webp",
  "640.jpg",
  "1280.webp",
  "1280.jpg",
] as const;

/** Every video yields an MP4 (H.264/AAC, at most 720p, fast start) and a JPEG poster frame. */
export const VIDEO_VARIANT_NAMES = ["video.mp4", "poster.jpg"] as const;

/**
 * Checks and processes one upload. Resolves with `{ ok: false, reason }` for anything wrong
 * with the file itself (retrying cannot help); rejects only for environment failures (ffmpeg
 * missing or timed out, disk full, aborted — see `MediaToolError`), which a retry may fix.
 *
 * Order of checks: size (empty, over the limit, bigger or smaller than declared), the declared
 * type, the real type from the magic numbers, then the decoder's header (pixels, duration)
 * before anything is decoded, then a full decode.
 */
export async function processMedia(input: ProcessInput, options: ProcessOptions): Promise<ProcessResult> {
  const { limits } = input;
  const { size } = await stat(input.sourcePath);
  if (size === 0) return { ok: false, reason: "EMPTY", detail: "the file has no bytes" };
  if (size > limits.maxBytes) {
    return {
      ok: false,
      reason: "TOO_LARGE",
      detail: `${size} bytes, more than the limit of ${limits.maxBytes}`,
    };
  }
  if (size > input.declaredByteSize) {
    return {
      ok: false,
      reason: "TOO_LARGE",
      detail: `${size} bytes, more than the ${input.declaredByteSize} declared`,
    };
  }
  if (size < input.declaredByteSize) {
    return {
      ok: false,
      reason: "TRUNCATED",
      detail: `${size} bytes of the ${input.declaredByteSize} declared`,
    };
  }

  const declared = formatOfContentType(input.declaredContentType);
  const kindFormats = input.kind === "IMAGE" ? IMAGE_FORMATS : VIDEO_FORMATS;
  if (declared === null || !kindFormats.has(declared)) {
    return {
      ok: false,
      reason: "UNSUPPORTED_TYPE",
      detail: `${JSON.stringify(input.declaredContentType.slice(0, 100))} is not a supported ${input.kind === "IMAGE" ? "image" : "video"} type`,
    };
  }
  const head = await readHead(input.sourcePath);
  const actual = sniffFormat(head);
  if (actual === null) {
    return {
      ok: false,
      reason: "UNSUPPORTED_TYPE",
      detail: "the bytes are not a supported image or video format",
    };
  }
  if (actual !== declared) {
    return {
      ok: false,
      reason: "TYPE_MISMATCH",
      detail: `declared ${declared}, but the bytes are ${actual}`,
    };
  }
  const promised = promisedLength(actual, head);
  if (promised !== null && promised > size) {
    return {
      ok: false,
      reason: "TRUNCATED",
      detail: `the ${actual} header promises ${promised} bytes, the file has ${size}`,
    };
  }
  if (options.signal?.aborted) {
    throw new MediaToolError("processMedia", "aborted", "processing aborted", {
      cause: options.signal.reason,
    });
  }
  const result =
    input.kind === "IMAGE"
      ? await processImage(
          input.sourcePath,
          actual,
          limits,
          input.workDir,
          options.sharpTimeoutSeconds === undefined ? {} : { timeoutSeconds: options.sharpTimeoutSeconds },
        )
      : await processVideo(input.sourcePath, actual, limits, input.workDir, options);
  // Decoders name the file they read; the detail is for logs and says "upload" instead.
  return result.ok
    ? result
    : { ...result, detail: withoutPaths(result.detail, [input.sourcePath, input.workDir]) };
}

function withoutPaths(detail: string, paths: string[]): string {
  return paths.reduce(
    (text, path) => text.split(`file:${path}`).join("upload").split(path).join("upload"),
    detail,
  );
}

/**
 * For a worker's start-up: runs `ffmpeg -version` and `ffprobe -version` and rejects with a
 * message naming FFMPEG_PATH / FFPROBE_PATH when either cannot run.
 */
export async function checkMediaTools(
  options: Pick<ProcessOptions, "ffmpegPath" | "ffprobePath">,
): Promise<{ ffmpeg: string; ffprobe: string }> {
  const versionOf = async (path: string, variable: string) => {
    const run = await runTool(path, ["-version"], { timeoutMs: 10_000 }).catch((error: unknown) => {
      throw new Error(
        `${variable}=${path} cannot run: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    if (run.exitCode !== 0)
      throw new Error(`${variable}=${path} exited with ${run.exitCode}: ${run.stderrTail.trim()}`);
    return run.stdout.split("\n")[0] ?? "";
  };
  return {
    ffmpeg: await versionOf(options.ffmpegPath, "FFMPEG_PATH"),
    ffprobe: await versionOf(options.ffprobePath, "FFPROBE_PATH"),
  };
}

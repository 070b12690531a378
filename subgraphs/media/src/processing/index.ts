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
 * missing, disk full, aborted), which a retry may fix.
 */
export async function processMedia(_input: ProcessInput, _options: ProcessOptions): Promise<ProcessResult> {
  throw new Error("processMedia: implementation follows (contract committed first)");
}

import path from "node:path";
import { ConfigError, ENV_CATALOGUE, loadMediaGrantSecret, loadSubgraphConfig, MB, port, positiveInt, readVar, spec, url, type Env, type RedisTarget, type SubgraphConfig } from "@hv/kit";
import { z } from "zod";
import type { MediaLimits } from "./processing";

/** The media subgraph's and the media worker's own variables (docs/configuration.md is generated from them). */
export const MEDIA_ENV = {
  MEDIA_STORAGE_DRIVER: spec(
    z.enum(["local", "s3"]).default("local"),
    "Media: where uploads and variants are stored: `local` (a directory, served by the media process with signed URLs) or `s3` (any S3-compatible object storage, presigned URLs).",
  ),
  MEDIA_LOCAL_DIR: spec(z.string().min(1).default(".data/media"), "Media, local driver: the directory holding the files (relative to the working directory)."),
  MEDIA_FILES_PORT: spec(port.default(4005), "Media, local driver: port of the public file endpoint (`PUT`/`GET /files/…` with signed URLs), apart from the private subgraph port."),
  MEDIA_PUBLIC_URL: spec(
    url.optional(),
    "Media, local driver: the base URL phones reach the file endpoint at (e.g. `https://files.example.com`); default `http://127.0.0.1:<MEDIA_FILES_PORT>`.",
    { defaultText: "`http://127.0.0.1:<MEDIA_FILES_PORT>`" },
  ),
  MEDIA_URL_SECRET: spec(
    z.string().min(32).optional(),
    "Media, local driver: HMAC secret (32+ characters) signing upload and download URLs; the subgraph and the worker need the same. Required in production.",
    { secret: true, requiredWhen: "in production (local driver)", defaultText: "a fixed development value" },
  ),
  MEDIA_S3_BUCKET: spec(z.string().min(3).optional(), "Media, s3 driver: the bucket (required with `MEDIA_STORAGE_DRIVER=s3`).", { requiredWhen: "with `MEDIA_STORAGE_DRIVER=s3`" }),
  MEDIA_S3_REGION: spec(z.string().min(1).default("us-east-1"), "Media, s3 driver: the bucket's region."),
  MEDIA_S3_ENDPOINT: spec(url.optional(), "Media, s3 driver: endpoint of an S3-compatible service (MinIO, R2, …); unset for AWS S3.", { defaultText: "AWS S3" }),
  MEDIA_S3_FORCE_PATH_STYLE: spec(
    z.enum(["true", "false"]).default("false").transform((value) => value === "true"),
    "Media, s3 driver: `true` for path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible services need.",
  ),
  MEDIA_S3_ACCESS_KEY_ID: spec(z.string().min(1).optional(), "Media, s3 driver: access key id; unset to use the AWS SDK's default credential chain (instance roles…).", { secret: true, defaultText: "the AWS SDK's default credential chain" }),
  MEDIA_S3_SECRET_ACCESS_KEY: spec(z.string().min(1).optional(), "Media, s3 driver: secret access key, with `MEDIA_S3_ACCESS_KEY_ID`.", { secret: true, defaultText: "the AWS SDK's default credential chain" }),
  MEDIA_UPLOAD_URL_TTL_SECONDS: spec(positiveInt(900, 7 * 24 * 3600), "Media: how long an upload URL from `createUpload` stays valid."),
  MEDIA_DOWNLOAD_URL_TTL_SECONDS: spec(positiveInt(3600, 7 * 24 * 3600), "Media: how long a `Media.url` stays valid."),
  MEDIA_MAX_IMAGE_BYTES: spec(positiveInt(25 * MB), "Media: largest image upload, in bytes."),
  MEDIA_MAX_VIDEO_BYTES: spec(positiveInt(200 * MB), "Media: largest video upload, in bytes."),
  MEDIA_MAX_PIXELS: spec(positiveInt(50_000_000), "Media: largest width × height of an image or video frame."),
  MEDIA_MAX_VIDEO_SECONDS: spec(positiveInt(60, 3600), "Media: longest video, in seconds."),
  MEDIA_MAX_PROFILE_PHOTOS: spec(positiveInt(6, 50), "Media: most photos on one profile."),
  MEDIA_WORKER_PORT: spec(port.default(4006), "Media worker: port of its `/healthz`, `/readyz` and `/metrics`."),
  MEDIA_WORKER_CONCURRENCY: spec(positiveInt(1, 64), "Media worker: jobs processed at once by one worker process (each in its own sandboxed child process); about one per core."),
  MEDIA_WORKER_LOCK_SECONDS: spec(
    positiveInt(30, 3600),
    "Media worker: a job's lock; a worker that dies mid-job loses it after this long and another worker takes the job over (stalled-job check at the same interval).",
  ),
  MEDIA_MAX_PENDING_UPLOADS: spec(positiveInt(10, 1000), "Media: most unfinished uploads (PENDING or PROCESSING) one user may have at once; `createUpload` beyond it is `QUOTA_EXCEEDED`."),
  MEDIA_MAX_PENDING_BYTES: spec(
    positiveInt(1024 * MB),
    "Media: most declared bytes of one user's unfinished uploads at once (at least `MEDIA_MAX_VIDEO_BYTES`); beyond it `createUpload` is `QUOTA_EXCEEDED`.",
  ),
  MEDIA_UPLOAD_GRACE_SECONDS: spec(
    positiveInt(900, 7 * 24 * 3600),
    "Media: how long after its upload URL expires an item that was never completed is swept (row and bytes), and how long after that a processed or deleted item's original key is purged a last time.",
  ),
  MEDIA_PROCESSING_TIMEOUT_SECONDS: spec(
    positiveInt(600, 24 * 3600),
    "Media worker: longest processing of one item (each ffmpeg run, sharp, and a watchdog over the whole job); beyond it the item is FAILED with `PROCESSING_TIMEOUT`, not retried.",
  ),
  MEDIA_WORKER_DRAIN_SECONDS: spec(
    positiveInt(30, 3600),
    "Media worker: on SIGTERM, how long running jobs may still finish; then they are handed back to the queue (no attempt counted) and the process exits (it is killed 15 s after this at the latest).",
  ),
  FFMPEG_PATH: spec(z.string().min(1).default("ffmpeg"), "Media worker: the ffmpeg executable (default: from PATH)."),
  FFPROBE_PATH: spec(z.string().min(1).default("ffprobe"), "Media worker: the ffprobe executable (default: from PATH)."),
};

function read<K extends keyof typeof MEDIA_ENV>(env: Env, key: K) {
  return readVar(MEDIA_ENV, env, key);
}

export type StorageConfig =
  | {
      driver: "local";
      /** Absolute. */
      dir: string;
      /** Interface and port of the public file endpoint (HOST, as the gateway: phones reach it; port 0: a free one, tests). */
      filesHost: string;
      filesPort: number;
      /** Base URL phones use; null: `http://127.0.0.1:<actual port>`. */
      publicUrl: string | null;
      urlSecret: string;
    }
  | {
      driver: "s3";
      bucket: string;
      region: string;
      endpoint: string | null;
      forcePathStyle: boolean;
      credentials: { accessKeyId: string; secretAccessKey: string } | null;
    };

/** What the subgraph and the worker share: storage, limits, the job queue's Redis and prefix. */
export interface MediaSettings {
  storage: StorageConfig;
  uploadUrlTtlSeconds: number;
  downloadUrlTtlSeconds: number;
  limits: { IMAGE: MediaLimits; VIDEO: MediaLimits };
  maxProfilePhotos: number;
  /** Per user: unfinished (PENDING/PROCESSING) uploads and their declared bytes at once. */
  pendingQuota: { items: number; bytes: number };
  /** After an upload URL expires: when its never-completed item is swept, and originals purged a last time. */
  uploadGraceSeconds: number;
}

export interface MediaConfig extends SubgraphConfig, MediaSettings {
  /** Chat vouches for attachment readers with grants signed with this (kit/src/media-grants.ts). */
  grantSecret: string;
}

export interface MediaWorkerConfig extends MediaSettings {
  nodeEnv: SubgraphConfig["nodeEnv"];
  logLevel: string;
  host: string;
  port: number;
  databaseUrl: string;
  redis: RedisTarget;
  eventsPrefix: string;
  concurrency: number;
  lockSeconds: number;
  ffmpegPath: string;
  ffprobePath: string;
  /** Longest processing of one item (ffmpeg runs, sharp, the job's watchdog). */
  processingTimeoutSeconds: number;
  /** On SIGTERM: how long running jobs may finish before they are handed back to the queue. */
  drainSeconds: number;
}

const DEVELOPMENT_URL_SECRET = "development-only-media-url-secret-not-for-production";

function loadStorage(env: Env, isProduction: boolean): StorageConfig {
  const driver = read(env, "MEDIA_STORAGE_DRIVER");
  if (driver === "local") {
    const secret = read(env, "MEDIA_URL_SECRET");
    if (secret === undefined && isProduction) {
      throw new ConfigError("MEDIA_URL_SECRET is required in production with MEDIA_STORAGE_DRIVER=local (32+ random characters, the same for media and the media worker)");
    }
    return {
      driver,
      dir: path.resolve(read(env, "MEDIA_LOCAL_DIR")),
      filesHost: readVar(ENV_CATALOGUE, env, "HOST"),
      filesPort: read(env, "MEDIA_FILES_PORT"),
      publicUrl: read(env, "MEDIA_PUBLIC_URL")?.replace(/\/+$/, "") ?? null,
      urlSecret: secret ?? DEVELOPMENT_URL_SECRET,
    };
  }
  const bucket = read(env, "MEDIA_S3_BUCKET");
  if (!bucket) throw new ConfigError("MEDIA_S3_BUCKET is required with MEDIA_STORAGE_DRIVER=s3");
  const accessKeyId = read(env, "MEDIA_S3_ACCESS_KEY_ID");
  const secretAccessKey = read(env, "MEDIA_S3_SECRET_ACCESS_KEY");
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError("MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY go together: set both, or neither for the SDK's default chain");
  }
  return {
    driver,
    bucket,
    region: read(env, "MEDIA_S3_REGION"),
    endpoint: read(env, "MEDIA_S3_ENDPOINT") ?? null,
    forcePathStyle: read(env, "MEDIA_S3_FORCE_PATH_STYLE"),
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null,
  };
}

function loadSettings(env: Env, isProduction: boolean): MediaSettings {
  const maxPixels = read(env, "MEDIA_MAX_PIXELS");
  const maxVideoSeconds = read(env, "MEDIA_MAX_VIDEO_SECONDS");
  return {
    storage: loadStorage(env, isProduction),
    uploadUrlTtlSeconds: read(env, "MEDIA_UPLOAD_URL_TTL_SECONDS"),
    downloadUrlTtlSeconds: read(env, "MEDIA_DOWNLOAD_URL_TTL_SECONDS"),
    limits: {
      IMAGE: { maxBytes: read(env, "MEDIA_MAX_IMAGE_BYTES"), maxPixels, maxVideoSeconds },
      VIDEO: { maxBytes: read(env, "MEDIA_MAX_VIDEO_BYTES"), maxPixels, maxVideoSeconds },
    },
    maxProfilePhotos: read(env, "MEDIA_MAX_PROFILE_PHOTOS"),
    pendingQuota: { items: read(env, "MEDIA_MAX_PENDING_UPLOADS"), bytes: pendingBytes(env) },
    uploadGraceSeconds: read(env, "MEDIA_UPLOAD_GRACE_SECONDS"),
  };
}

function pendingBytes(env: Env): number {
  const bytes = read(env, "MEDIA_MAX_PENDING_BYTES");
  const maxVideo = read(env, "MEDIA_MAX_VIDEO_BYTES");
  const maxImage = read(env, "MEDIA_MAX_IMAGE_BYTES");
  if (bytes < Math.max(maxVideo, maxImage)) {
    throw new ConfigError(`MEDIA_MAX_PENDING_BYTES (${bytes}) must be at least MEDIA_MAX_VIDEO_BYTES and MEDIA_MAX_IMAGE_BYTES (${Math.max(maxVideo, maxImage)}), or no single upload of that size could start`);
  }
  return bytes;
}

export function loadMediaConfig(env: Env): MediaConfig {
  const base = loadSubgraphConfig("media", env);
  return { ...base, ...loadSettings(env, base.isProduction), grantSecret: loadMediaGrantSecret(env) };
}

export function loadMediaWorkerConfig(env: Env): MediaWorkerConfig {
  const base = loadSubgraphConfig("media", env);
  return {
    ...loadSettings(env, base.isProduction),
    nodeEnv: base.nodeEnv,
    logLevel: base.logLevel,
    host: base.host,
    port: read(env, "MEDIA_WORKER_PORT"),
    databaseUrl: base.databaseUrl,
    redis: base.redis,
    eventsPrefix: base.eventsPrefix,
    concurrency: read(env, "MEDIA_WORKER_CONCURRENCY"),
    lockSeconds: read(env, "MEDIA_WORKER_LOCK_SECONDS"),
    ffmpegPath: read(env, "FFMPEG_PATH"),
    ffprobePath: read(env, "FFPROBE_PATH"),
    processingTimeoutSeconds: read(env, "MEDIA_PROCESSING_TIMEOUT_SECONDS"),
    drainSeconds: read(env, "MEDIA_WORKER_DRAIN_SECONDS"),
  };
}

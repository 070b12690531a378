import path from "node:path";
import {
  ConfigError,
  ENV_CATALOGUE,
  loadMediaGrantSecret,
  loadSubgraphConfig,
  readVar,
  type Env,
  type RedisTarget,
  type SubgraphConfig,
} from "@hv/kit";
import { MEDIA_ENV } from "./env";
import type { MediaLimits } from "./processing";

export { MEDIA_ENV };

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
      throw new ConfigError(
        "MEDIA_URL_SECRET is required in production with MEDIA_STORAGE_DRIVER=local (32+ random characters, the same for media and the media worker)",
      );
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
    throw new ConfigError(
      "MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY go together: set both, or neither for the SDK's default chain",
    );
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
    throw new ConfigError(
      `MEDIA_MAX_PENDING_BYTES (${bytes}) must be at least MEDIA_MAX_VIDEO_BYTES and MEDIA_MAX_IMAGE_BYTES (${Math.max(maxVideo, maxImage)}), or no single upload of that size could start`,
    );
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

// Catalogue only (no other imports): start-prod and the docs read it without loading the process.
import { MB, port, positiveInt, spec, url } from "@hv/kit/config";
import { z } from "zod";

/** The media subgraph's and the media worker's own variables (docs/configuration.md is generated from them). */
export const MEDIA_ENV = {
  MEDIA_STORAGE_DRIVER: spec(
    z.enum(["local", "s3"]).default("local"),
    "Media: where uploads and variants are stored: `local` (a directory, served by the media process with signed URLs) or `s3` (any S3-compatible object storage, presigned URLs).",
  ),
  MEDIA_LOCAL_DIR: spec(
    z.string().min(1).default(".data/media"),
    "Media, local driver: the directory holding the files (relative to the working directory).",
  ),
  MEDIA_FILES_PORT: spec(
    port.default(4005),
    "Media, local driver: port of the public file endpoint (`PUT`/`GET /files/…` with signed URLs), apart from the private subgraph port.",
  ),
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
  MEDIA_S3_BUCKET: spec(
    z.string().min(3).optional(),
    "Media, s3 driver: the bucket (required with `MEDIA_STORAGE_DRIVER=s3`).",
    { requiredWhen: "with `MEDIA_STORAGE_DRIVER=s3`" },
  ),
  MEDIA_S3_REGION: spec(z.string().min(1).default("us-east-1"), "Media, s3 driver: the bucket's region."),
  MEDIA_S3_ENDPOINT: spec(
    url.optional(),
    "Media, s3 driver: endpoint of an S3-compatible service (MinIO, R2, …); unset for AWS S3.",
    { defaultText: "AWS S3" },
  ),
  MEDIA_S3_FORCE_PATH_STYLE: spec(
    z
      .enum(["true", "false"])
      .default("false")
      .transform((value) => value === "true"),
    "Media, s3 driver: `true` for path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible services need.",
  ),
  MEDIA_S3_ACCESS_KEY_ID: spec(
    z.string().min(1).optional(),
    "Media, s3 driver: access key id; unset to use the AWS SDK's default credential chain (instance roles…).",
    { secret: true, defaultText: "the AWS SDK's default credential chain" },
  ),
  MEDIA_S3_SECRET_ACCESS_KEY: spec(
    z.string().min(1).optional(),
    "Media, s3 driver: secret access key, with `MEDIA_S3_ACCESS_KEY_ID`.",
    { secret: true, defaultText: "the AWS SDK's default credential chain" },
  ),
  MEDIA_UPLOAD_URL_TTL_SECONDS: spec(
    positiveInt(900, 7 * 24 * 3600),
    "Media: how long an upload URL from `createUpload` stays valid.",
  ),
  MEDIA_DOWNLOAD_URL_TTL_SECONDS: spec(
    positiveInt(3600, 7 * 24 * 3600),
    "Media: how long a `Media.url` stays valid.",
  ),
  MEDIA_MAX_IMAGE_BYTES: spec(positiveInt(25 * MB), "Media: largest image upload, in bytes."),
  MEDIA_MAX_VIDEO_BYTES: spec(positiveInt(200 * MB), "Media: largest video upload, in bytes."),
  MEDIA_MAX_PIXELS: spec(
    positiveInt(50_000_000),
    "Media: largest width × height of an image or video frame.",
  ),
  MEDIA_MAX_VIDEO_SECONDS: spec(positiveInt(60, 3600), "Media: longest video, in seconds."),
  MEDIA_MAX_PROFILE_PHOTOS: spec(positiveInt(6, 50), "Media: most photos on one profile."),
  MEDIA_WORKER_PORT: spec(
    port.default(4006),
    "Media worker: port of its `/healthz`, `/readyz` and `/metrics`.",
  ),
  MEDIA_WORKER_CONCURRENCY: spec(
    positiveInt(1, 64),
    "Media worker: jobs processed at once by one worker process (each in its own sandboxed child process); about one per core.",
  ),
  MEDIA_WORKER_LOCK_SECONDS: spec(
    positiveInt(30, 3600),
    "Media worker: a job's lock; a worker that dies mid-job loses it after this long and another worker takes the job over (stalled-job check at the same interval).",
  ),
  MEDIA_MAX_PENDING_UPLOADS: spec(
    positiveInt(10, 1000),
    "Media: most unfinished uploads (PENDING or PROCESSING) one user may have at once; `createUpload` beyond it is `QUOTA_EXCEEDED`.",
  ),
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
  FFMPEG_PATH: spec(
    z.string().min(1).default("ffmpeg"),
    "Media worker: the ffmpeg executable (default: from PATH).",
  ),
  FFPROBE_PATH: spec(
    z.string().min(1).default("ffprobe"),
    "Media worker: the ffprobe executable (default: from PATH).",
  ),
};

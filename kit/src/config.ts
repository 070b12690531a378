import { isIP } from "node:net";
import { z } from "zod";
import { MAX_ACCESS_TOKEN_TTL_SECONDS } from "./auth/revocations";
import { loadSigningKeys, type SigningKeyJwk } from "./auth/signing-keys";
import { ConfigError } from "./config-error";
import { SUBGRAPH_NAMES, SUBGRAPHS, subgraphEntry, type SubgraphName } from "./subgraphs";

export { ConfigError };

/**
 * Every environment variable the system reads, in one catalogue. Each process picks its slice
 * (see `loadGatewayConfig` / `loadSubgraphConfig`), validated once at start-up; a bad value fails
 * fast with a message that names the variable. docs/configuration.md is generated from this list.
 */
const DEFAULT_PORTS: Record<SubgraphName | "gateway", number> = {
  gateway: 4000,
  ...(Object.fromEntries(SUBGRAPHS.map((entry) => [entry.name, entry.port])) as Record<SubgraphName, number>),
};

const port = z.coerce.number().int().min(0).max(65535);
const url = z.string().url();

/** One catalogued variable; docs/configuration.md is generated from these (`pnpm run docs:generate`). */
export interface EnvVarSpec {
  schema: z.ZodType;
  description: string;
  /** Never echoed in an error message. */
  secret?: boolean;
  /** When a variable the schema lets be unset must be set, e.g. "in production" (its loader enforces it). */
  requiredWhen?: string;
  /** The default in words, when it is not one fixed value of the schema. */
  defaultText?: string;
}

type SpecOptions = Pick<EnvVarSpec, "secret" | "requiredWhen" | "defaultText">;

function spec(schema: z.ZodType, description: string, options: SpecOptions = {}): EnvVarSpec {
  return { schema, description, ...options };
}

/** The fixed value an unset variable takes, as written in the schema (before any transform); undefined if none. */
export function envVarDefault(entry: EnvVarSpec): string | number | boolean | undefined {
  let schema: z.ZodType = entry.schema;
  while (schema instanceof z.ZodPipe) schema = schema.in as z.ZodType;
  if (!(schema instanceof z.ZodDefault)) return undefined;
  const value: unknown = schema.def.defaultValue;
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : undefined;
}

/** Express's `trust proxy`: true/false, a hop count, or a comma-separated list of loopback/linklocal/uniquelocal/IPs/CIDRs. */
export type TrustProxy = boolean | number | string;

const TRUST_PROXY_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

function isTrustedProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_NAMES.has(entry)) return true;
  const [address = "", prefix, ...rest] = entry.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (/^\d+$/.test(prefix)) return Number(prefix) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(prefix) === 4; // a netmask such as 255.255.255.0
}

const trustProxy = z
  .string()
  .default("loopback")
  .transform((value, context): TrustProxy => {
    const text = value.trim();
    if (text === "true") return true;
    if (text === "false") return false;
    if (/^\d+$/.test(text)) return Number(text);
    const entries = text.split(",").map((entry) => entry.trim());
    const bad = entries.filter((entry) => !isTrustedProxyEntry(entry));
    if (bad.length > 0) {
      context.addIssue({
        code: "custom",
        message: `expected true, false, a hop count, or loopback/linklocal/uniquelocal/IP/CIDR entries separated by commas; not understood: ${bad.join(", ")}`,
      });
      return z.NEVER;
    }
    return entries.join(",");
  });

/** One Sentinel's address. */
export interface RedisSentinelAddress {
  host: string;
  port: number;
}

/** A DNS name (letters, digits, hyphens, dots) or an IPv4 address; IPv6 comes in brackets. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function parseHostPort(entry: string): RedisSentinelAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(entry);
  if (!match) return undefined;
  const [, ipv6, name, portText] = match;
  const portNumber = Number(portText);
  if (portNumber < 1 || portNumber > 65535) return undefined;
  if (ipv6 !== undefined) return isIP(ipv6) === 6 ? { host: ipv6, port: portNumber } : undefined;
  return name !== undefined && HOST_NAME.test(name) ? { host: name, port: portNumber } : undefined;
}

const sentinelList = z
  .string()
  .optional()
  .transform((value, context): RedisSentinelAddress[] | undefined => {
    if (value === undefined) return undefined;
    const entries = value.split(",").map((entry) => entry.trim());
    const addresses = entries.map(parseHostPort);
    const bad = entries.filter((_, index) => addresses[index] === undefined);
    if (bad.length > 0) {
      context.addIssue({
        code: "custom",
        message: `expected host:port entries separated by commas ([address]:port for IPv6); not understood: ${bad.map((entry) => JSON.stringify(entry)).join(", ")}`,
      });
      return z.NEVER;
    }
    return addresses as RedisSentinelAddress[];
  });

/** A Redis server URL as ioredis reads it: `redis[s]://[[user]:password@]host[:port][/db]`, no query. */
const redisUrl = url.superRefine((value, context) => {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return; // reported by `url`
  }
  const problems: string[] = [];
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") problems.push("the scheme must be redis: or rediss:");
  if (!/^\/?(\d{1,4})?$/.test(parsed.pathname)) problems.push("the path is the database number (e.g. /0) or nothing");
  if (parsed.search !== "") problems.push("query parameters are not read: leave them out");
  if (problems.length > 0) context.addIssue({ code: "custom", message: problems.join("; ") });
});

const upper = (name: SubgraphName) => name.toUpperCase();

const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(1).max(max).default(fallback);
const MB = 1024 * 1024;

/** The media subgraph and the media worker (read by subgraphs/media/src/config.ts). */
const MEDIA_ENV: Record<string, EnvVarSpec> = {
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

/** The push worker (users domain; read by loadPushWorkerConfig, checked in subgraphs/users/src/push/config.ts). */
const PUSH_ENV: Record<string, EnvVarSpec> = {
  PUSH_WORKER_PORT: spec(port.default(4007), "Push worker: port of its `/healthz`, `/readyz` and `/metrics`."),
  PUSH_WORKER_CONCURRENCY: spec(
    z.coerce.number().int().min(1).max(500).default(20),
    "Push worker: notification jobs sent at once by one worker process.",
  ),
  PUSH_ANDROID_PROVIDER: spec(
    z.enum(["fcm", "log"]).optional(),
    "Push worker: how Android devices are reached: `fcm` (FCM HTTP v1) or `log` (writes the notification to the log). Default `fcm` in production, `log` otherwise.",
    { defaultText: "`fcm` in production, else `log`" },
  ),
  PUSH_IOS_PROVIDER: spec(
    z.enum(["apns", "log"]).optional(),
    "Push worker: how iOS devices are reached: `apns` (APNs over HTTP/2, token-based) or `log`. Default `apns` in production, `log` otherwise.",
    { defaultText: "`apns` in production, else `log`" },
  ),
  PUSH_MAX_ATTEMPTS: spec(
    z.coerce.number().int().min(1).max(50).default(10),
    "Push worker: tries of one notification job when providers answer 429/5xx or cannot be reached, before it fails for good.",
  ),
  PUSH_RETRY_BASE_MS: spec(
    z.coerce.number().int().min(1).max(3_600_000).default(2_000),
    "Push worker: first retry delay; it doubles each time (±20 %), or is the provider's `Retry-After` when that is longer.",
  ),
  PUSH_DELIVERY_RETENTION_HOURS: spec(
    z.coerce.number().int().min(1).max(24 * 90).default(72),
    "Push worker: how long a sent notification is remembered per device (and a finished job kept), so a repeated event does not notify twice.",
  ),
  PUSH_MESSAGE_MAX_AGE_MINUTES: spec(
    z.coerce.number().int().min(1).max(7 * 24 * 60).default(15),
    "Push worker: a message notification whose message is older than this is dropped (and the providers are told to drop it after this: APNs `apns-expiration`, FCM `ttl`).",
  ),
  PUSH_MATCH_MAX_AGE_MINUTES: spec(
    z.coerce.number().int().min(1).max(7 * 24 * 60).default(1440),
    "Push worker: a match notification whose match is older than this is dropped (and expires at the providers then).",
  ),
  FCM_SERVICE_ACCOUNT: spec(
    z.string().optional(),
    "Push worker, fcm: the Firebase service-account key, as its JSON text or the path of the JSON file. Required with the fcm provider.",
    { secret: true, requiredWhen: "with the fcm provider" },
  ),
  FCM_PROJECT_ID: spec(z.string().regex(/^[a-z][a-z0-9-]{3,62}$/).optional(), "Push worker, fcm: the Firebase project; default the service account's `project_id`.", { defaultText: "the service account's `project_id`" }),
  FCM_ENDPOINT: spec(url.default("https://fcm.googleapis.com"), "Push worker, fcm: base URL of the FCM HTTP v1 API (tests point it at a local server)."),
  FCM_TOKEN_URL: spec(
    url.optional(),
    "Push worker, fcm: the OAuth 2.0 token endpoint for the service account's JWT grant; default the service account's `token_uri` (Google's).",
    { defaultText: "the service account's `token_uri`" },
  ),
  APNS_KEY: spec(
    z.string().optional(),
    "Push worker, apns: the token-signing key (`AuthKey_<id>.p8`), as PEM text or the path of the file. Required with the apns provider.",
    { secret: true, requiredWhen: "with the apns provider" },
  ),
  APNS_KEY_ID: spec(z.string().regex(/^[A-Z0-9]{10}$/).optional(), "Push worker, apns: the key's 10-character id (the JWT `kid`).", { requiredWhen: "with the apns provider" }),
  APNS_TEAM_ID: spec(z.string().regex(/^[A-Z0-9]{10}$/).optional(), "Push worker, apns: the Apple developer team id (the JWT `iss`).", { requiredWhen: "with the apns provider" }),
  APNS_TOPIC: spec(z.string().regex(/^[A-Za-z0-9.-]{1,200}$/).optional(), "Push worker, apns: the app's bundle id (`apns-topic`).", { requiredWhen: "with the apns provider" }),
  APNS_ENDPOINT: spec(
    url.optional(),
    "Push worker, apns: `https://host[:port]` of APNs; default `https://api.push.apple.com` in production, `https://api.sandbox.push.apple.com` otherwise (tests point it at a local server).",
    { defaultText: "`https://api.push.apple.com` in production, else `https://api.sandbox.push.apple.com`" },
  ),
  APNS_CA: spec(
    z.string().optional(),
    "Push worker, apns: extra certificate authority (PEM text or path) to trust for APNS_ENDPOINT, for a local test server; unset in real use.",
  ),
};

/** Account mails (users domain: the users subgraph queues them, the users worker sends them). */
const MAIL_ENV: Record<string, EnvVarSpec> = {
  MAIL_SMTP_URL: spec(
    url
      .refine((value) => /^smtps?:$/.test(new URL(value).protocol), "the scheme must be smtp: (STARTTLS when offered) or smtps: (TLS from the start)")
      .optional(),
    "Users worker: the SMTP server account mails go through, `smtp[s]://[user:password@]host:port`. Required in production; in development `npm start` runs a local catch-all sink at `smtp://127.0.0.1:2525` (the default).",
    { secret: true },
  ),
  MAIL_FROM: spec(z.string().min(3).max(320).default("Haiyvee <no-reply@haiyvee.invalid>"), "Users worker: the `From` of account mails, e.g. `Haiyvee <no-reply@example.com>`."),
  APP_LINK_BASE_URL: spec(
    url.optional(),
    "Users worker: the app's public link base in mails (`<base>/verify-email?token=…`, `/reset-password?token=…`, `/confirm-email?token=…`), a universal/app link the phone opens. Required in production; default `http://localhost:8081` outside it.",
  ),
  MAIL_MAX_ATTEMPTS: spec(
    z.coerce.number().int().min(1).max(50).default(12),
    "Users subgraph (set on each mail it queues): tries of one mail while the SMTP server refuses it for now (4xx) or cannot be reached, before it is given up.",
  ),
  MODERATION_CLAIM_SECONDS: spec(
    z.coerce.number().int().min(30).max(86_400).default(900),
    "Users subgraph: how long a moderator's claim on a moderation case lasts (claiming again renews it).",
  ),
  MAIL_RETRY_BASE_MS: spec(
    z.coerce.number().int().min(1).max(3_600_000).default(5_000),
    "Users worker: first retry delay of a mail; it doubles each time (±20 %), at most 15 minutes.",
  ),
};

/** A rate budget written `<points>/<window>`, e.g. `30/15m`: 30 actions per 15 minutes (`s`, `m`, `h`). */
export interface RateBudget {
  points: number;
  durationSeconds: number;
}

const WINDOW_SECONDS = { s: 1, m: 60, h: 3600 } as const;

const rateBudget = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, context): RateBudget => {
      const match = /^\s*(\d{1,9})\s*\/\s*(\d{1,6})(s|m|h)\s*$/.exec(value);
      const points = Number(match?.[1]);
      const durationSeconds = Number(match?.[2]) * WINDOW_SECONDS[(match?.[3] ?? "s") as keyof typeof WINDOW_SECONDS];
      if (!match || points < 1 || durationSeconds < 1 || durationSeconds > 7 * 24 * 3600) {
        context.addIssue({ code: "custom", message: "expected <points>/<window> such as 30/15m (window in s, m or h, at most 7 days; points at least 1)" });
        return z.NEVER;
      }
      return { points, durationSeconds };
    });

/** The gateway's edge protection (gateway/src/protection; docs/gateway.md, "Protection"). */
const GATEWAY_PROTECTION_ENV: Record<string, EnvVarSpec> = {
  GATEWAY_OPERATIONS: spec(
    z.enum(["apq", "safelist"]).default("apq"),
    "Gateway: `apq`: any valid operation, with automatic persisted queries cached in Redis; `safelist`: only the app's operations in `operations/persisted-query-manifest.json` (by hash or exact text), anything else is `PERSISTED_QUERY_NOT_ALLOWED`, over HTTP and WebSocket.",
  ),
  GATEWAY_APQ_TTL_SECONDS: spec(positiveInt(24 * 3600, 30 * 24 * 3600), "Gateway, apq: how long a registered persisted query stays in Redis."),
  GATEWAY_MAX_BODY_BYTES: spec(positiveInt(256 * 1024, 16 * MB), "Gateway: largest HTTP request body; bigger is refused with 413 `PAYLOAD_TOO_LARGE`."),
  GATEWAY_SUBGRAPH_TIMEOUT_MS: spec(
    positiveInt(10_000, 300_000),
    "Gateway: longest wait for one subgraph fetch; then that part of the answer is `UPSTREAM_TIMEOUT`.",
  ),
  GATEWAY_MAX_DEPTH: spec(positiveInt(12, 100), "Gateway: deepest nesting of selections in one operation (fragments included)."),
  GATEWAY_MAX_ALIASES: spec(positiveInt(15, 1000), "Gateway: most aliases in one operation."),
  GATEWAY_MAX_DIRECTIVES: spec(positiveInt(30, 1000), "Gateway: most directives in one operation."),
  GATEWAY_MAX_TOKENS: spec(positiveInt(2_000, 100_000), "Gateway: most lexical tokens in one document."),
  GATEWAY_MAX_COST: spec(
    positiveInt(5_000, 1_000_000),
    "Gateway: highest cost of one operation (GraphQL Armor: 2 per object field and 1 per scalar, times 1.5 per level of depth).",
  ),
  GATEWAY_RATE_LIMIT_IP: spec(rateBudget("1200/1m"), "Gateway: HTTP requests to /graphql and subscribe messages per client address (IPv6 by /64)."),
  GATEWAY_RATE_LIMIT_USER: spec(rateBudget("600/1m"), "Gateway: operations per signed-in user."),
  GATEWAY_RATE_LIMIT_LOGIN: spec(rateBudget("60/15m"), "Gateway: `logIn` fields per client address (each alias counts)."),
  GATEWAY_RATE_LIMIT_SIGNUP: spec(rateBudget("20/1h"), "Gateway: `signUp` fields per client address (each alias counts)."),
  GATEWAY_RATE_LIMIT_SWIPE: spec(rateBudget("600/1h"), "Gateway: `like` and `superLike` fields per user (each alias counts)."),
  GATEWAY_RATE_LIMIT_SEND_MESSAGE: spec(rateBudget("120/1m"), "Gateway: `sendMessage` fields per user (each alias counts)."),
  GATEWAY_RATE_LIMIT_CREATE_UPLOAD: spec(rateBudget("120/1h"), "Gateway: `createUpload` fields per user (each alias counts)."),
  GATEWAY_RATE_LIMIT_SUBSCRIBE: spec(rateBudget("120/1m"), "Gateway: subscriptions started over WebSocket per user (per address when anonymous)."),
  GATEWAY_WS_MAX_PER_ADDRESS: spec(
    positiveInt(200, 1_000_000),
    "Gateway: most open graphql-ws connections from one client address (IPv6 by /64) on one replica; a further upgrade is refused with HTTP 429. Many phones may share one carrier NAT address: keep it well above one household.",
  ),
  GATEWAY_WS_MAX_PER_USER: spec(
    positiveInt(8, 10_000),
    "Gateway: most open graphql-ws connections of one signed-in user on one replica; one more is closed with 4429 at `connection_init`.",
  ),
  GATEWAY_BLOCKLIST_REFRESH_SECONDS: spec(
    positiveInt(30, 3600),
    "Gateway: how often each replica re-reads the IP blocklist from Redis besides the change notice it gets at once over pub/sub.",
  ),
};

/**
 * Metrics and traces (docs/observability.md). The OTEL_* variables are OpenTelemetry's own: the
 * SDK reads them (kit/src/tracing.ts); they are listed here to be documented and checked at start-up.
 */
const OBSERVABILITY_ENV: Record<string, EnvVarSpec> = {
  GATEWAY_METRICS_PORT: spec(
    port.default(4009),
    "Gateway: port of its Prometheus `/metrics`, on `SUBGRAPH_HOST` (the private interface), apart from the public port. Subgraphs serve `/metrics` on their own port, workers on their probe port.",
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: spec(
    url.optional(),
    "Tracing: base URL of an OTLP/HTTP collector (`/v1/traces` is appended). Setting it (or the next one) turns tracing on; unset: no tracing.",
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: spec(url.optional(), "Tracing: full URL for traces, instead of `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`."),
  OTEL_EXPORTER_OTLP_HEADERS: spec(z.string().optional(), "Tracing: headers sent to the collector, `key=value` pairs separated by commas (e.g. an API key).", { secret: true }),
  OTEL_TRACES_EXPORTER: spec(
    z.enum(["otlp", "console", "none"]).optional(),
    "Tracing: `otlp` (JSON over HTTP), `console` (spans to stdout, development) or `none`. Default `otlp` when an endpoint is set, else `none`.",
    { defaultText: "`otlp` with an endpoint, else `none`" },
  ),
  OTEL_TRACES_SAMPLER: spec(
    z.enum(["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]).optional(),
    "Tracing: which traces are kept; default `parentbased_always_on`. Use `parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG` under load.",
    { defaultText: "`parentbased_always_on`" },
  ),
  OTEL_TRACES_SAMPLER_ARG: spec(z.coerce.number().min(0).max(1).optional(), "Tracing: the ratio of traces kept by the `traceidratio` samplers (0 to 1)."),
  OTEL_SERVICE_NAME: spec(z.string().min(1).optional(), "Tracing: `service.name` of the spans; default the process's name (`gateway`, `users`, …, `push-worker`, `media-worker`).", { defaultText: "the process's name" }),
  OTEL_RESOURCE_ATTRIBUTES: spec(z.string().optional(), "Tracing: extra resource attributes, `key=value` pairs separated by commas (e.g. `deployment.environment=prod`)."),
  OTEL_SDK_DISABLED: spec(z.enum(["true", "false"]).optional(), "Tracing: `true` turns it off whatever else is set."),
};

export const ENV_CATALOGUE: Record<string, EnvVarSpec> = {
  NODE_ENV: spec(
    z.enum(["development", "production", "test"]).default("development"),
    "`production` turns off introspection and the Sandbox landing page and masks internal errors.",
  ),
  LOG_LEVEL: spec(
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    "Minimum level of the JSON logs written to stdout.",
  ),
  ...OBSERVABILITY_ENV,
  HOST: spec(
    z.string().min(1).default("0.0.0.0"),
    "Interface of what phones reach: the gateway, and the media subgraph's file endpoint (local driver).",
  ),
  SUBGRAPH_HOST: spec(
    z.string().min(1).default("127.0.0.1"),
    "Interface the subgraphs bind to. Only the gateway should reach them: keep them off public networks.",
  ),
  TRUST_PROXY: spec(
    trustProxy,
    "Which proxies' `X-Forwarded-For` to believe for the client's IP (Express `trust proxy`): `loopback` (the gateway on the same host), `true`, `false`, a hop count, or comma-separated IPs/CIDRs/`linklocal`/`uniquelocal`.",
  ),
  AUTH_JWKS_URL: spec(
    url.default(`http://127.0.0.1:${DEFAULT_PORTS.users}/.well-known/jwks.json`),
    "Where the gateway and subgraphs fetch the access-token public keys (the users subgraph serves them).",
  ),
  AUTH_ISSUER: spec(z.string().min(1).default("haiyvee"), "`iss` of access tokens: issued with it, required on verification."),
  AUTH_AUDIENCE: spec(z.string().min(1).default("haiyvee-api"), "`aud` of access tokens: issued with it, required on verification."),
  AUTH_ACCESS_TOKEN_TTL_SECONDS: spec(
    z.coerce.number().int().min(1).max(MAX_ACCESS_TOKEN_TTL_SECONDS).default(MAX_ACCESS_TOKEN_TTL_SECONDS),
    `Lifetime of an access token (at most ${MAX_ACCESS_TOKEN_TTL_SECONDS}).`,
  ),
  AUTH_REFRESH_TOKEN_TTL_DAYS: spec(
    z.coerce.number().int().min(1).max(365).default(30),
    "Users subgraph: a session that is not refreshed for this many days ends.",
  ),
  AUTH_REFRESH_REUSE_GRACE_SECONDS: spec(
    z.coerce.number().int().min(0).max(60).default(5),
    "Users subgraph: a spent refresh token presented again within this window gets the same new pair instead of ending the session.",
  ),
  AUTH_SIGNING_KEYS: spec(
    z.string().optional(),
    "Users subgraph: JSON array of private EC P-256 JWKs with a `kid` each; the first signs, all are published. Required in production.",
    { secret: true, requiredWhen: "in production", defaultText: "a development key kept in `.data/dev-signing-keys.json`" },
  ),
  EVENTS_PREFIX: spec(
    z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).default("hv"),
    "Redis key prefix of the event queues; every process of one deployment must use the same.",
  ),
  REDIS_URL: spec(
    redisUrl.default("redis://127.0.0.1:6379"),
    "Redis for caches, pub/sub and queues: `redis[s]://[[user]:password@]host:port[/db]`. With `REDIS_SENTINELS` its host and port are not used (the sentinels name the primary); its user, password and database still are.",
  ),
  REDIS_SENTINELS: spec(
    sentinelList,
    "Redis through Sentinel: the sentinels, `host:port` separated by commas (`[address]:port` for IPv6). Set with `REDIS_SENTINEL_NAME`; every Redis client then asks them for the current primary and follows a failover.",
  ),
  REDIS_SENTINEL_NAME: spec(
    z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, "expected the master group name the sentinels monitor (letters, digits, `.`, `_`, `-`)").optional(),
    "Redis through Sentinel: the master group name (`sentinel monitor <name> …`). Required with `REDIS_SENTINELS`.",
    { requiredWhen: "with `REDIS_SENTINELS`" },
  ),
  REDIS_SENTINEL_PASSWORD: spec(
    z.string().min(1).optional(),
    "Redis through Sentinel: the sentinels' own password (`requirepass` of the sentinels), if they have one; the primary's is in `REDIS_URL`.",
    { secret: true },
  ),
  DISCOVERY_READ_DATABASE_URL: spec(
    url.optional(),
    "Discovery: a read replica of DISCOVERY_DATABASE_URL (or a PgBouncer entry in front of one) for nearby's candidate query; the viewer's own row and a re-check of the returned people (blocks, swipes, visibility) stay on the primary. Unset: everything on the primary.",
    { secret: true, defaultText: "the primary (`DISCOVERY_DATABASE_URL`)" },
  ),
  DISCOVERY_LOCATION_MAX_AGE_MINUTES: spec(
    z.coerce.number().int().positive().default(24 * 60),
    "A location older than this no longer makes a person discoverable.",
  ),
  CHAT_REQUIRE_MATCH: spec(
    z.enum(["true", "false"]).default("true").transform((value) => value === "true"),
    "Chat: `true`: a one-to-one conversation exists only between matched people (opened on `match.created`, closed on `match.ended`); `false`: anyone may open one with `openDirectConversation`.",
  ),
  CHAT_MESSAGE_MAX_LENGTH: spec(
    z.coerce.number().int().min(1).max(20_000).default(4_000),
    "Chat: longest message text, in characters (Unicode code points).",
  ),
  CHAT_MAX_ATTACHMENTS: spec(z.coerce.number().int().min(0).max(50).default(10), "Chat: most media attachments on one message."),
  CHAT_GROUP_MAX_MEMBERS: spec(z.coerce.number().int().min(2).max(10_000).default(256), "Chat: most members of a group conversation."),
  CHAT_INVITATIONS_PER_DAY: spec(
    z.coerce.number().int().min(1).max(100_000).default(100),
    "Chat: group invitations one user may send within 24 hours (each id in createGroupConversation / addGroupMembers that is not a match counts, refused ones too) before `RATE_LIMITED`.",
  ),
  CHAT_PENDING_INVITATIONS_MAX: spec(
    z.coerce.number().int().min(1).max(100_000).default(50),
    "Chat: group invitations one user may have waiting for an answer at once, over all groups, before `QUOTA_EXCEEDED`.",
  ),
  CHAT_SEND_BURST: spec(
    z.coerce.number().int().min(1).max(10_000).default(20),
    "Chat: messages one user may send within 10 seconds (burst budget) before `RATE_LIMITED`.",
  ),
  CHAT_SEND_SUSTAINED: spec(
    z.coerce.number().int().min(1).max(1_000_000).default(600),
    "Chat: messages one user may send within an hour (sustained budget) before `RATE_LIMITED`.",
  ),
  CHAT_NEW_ACCOUNT_HOURS: spec(
    z.coerce.number().int().min(0).max(24 * 30).default(24),
    "Chat: an account younger than this (the access token's `created` claim) is new: the new-account throttles and the links signal apply (docs/spam-signals.md). 0 turns them off.",
  ),
  CHAT_NEW_ACCOUNT_MAX_MESSAGES: spec(
    z.coerce.number().int().min(1).max(1_000_000).default(100),
    "Chat: messages a new account may send while it is new before `RATE_LIMITED` (and the NEW_ACCOUNT_BURST signal).",
  ),
  CHAT_NEW_ACCOUNT_MAX_CONVERSATIONS: spec(
    z.coerce.number().int().min(1).max(100_000).default(10),
    "Chat: conversations (groups created, one-to-ones opened) a new account may open while it is new before `RATE_LIMITED` (and the NEW_ACCOUNT_BURST signal).",
  ),
  CHAT_REPEATED_TEXT_CONVERSATIONS: spec(
    z.coerce.number().int().min(2).max(10_000).default(5),
    "Chat: the same text (normalized: case, whitespace, invisible characters) sent by one person into this many different conversations within `CHAT_REPEATED_TEXT_WINDOW_SECONDS` raises the REPEATED_TEXT signal.",
  ),
  CHAT_REPEATED_TEXT_WINDOW_SECONDS: spec(
    z.coerce.number().int().min(60).max(7 * 24 * 3600).default(3600),
    "Chat: the window of the REPEATED_TEXT signal, and how long one signal is raised at most once per person.",
  ),
  CHAT_PUBSUB_REDIS_URL: spec(
    redisUrl.optional(),
    "Chat: Redis for the real-time fan-out between chat instances (pub/sub); default `REDIS_URL`. A separate one keeps pub/sub traffic off the queues' Redis.",
    { defaultText: "`REDIS_URL` (and its sentinels)" },
  ),
  CHAT_PRESENCE_TTL_SECONDS: spec(
    z.coerce.number().int().min(5).max(3_600).default(60),
    "Chat: a user counts as online this long after their last heartbeat (an open `myChatEvents` subscription beats every third of it).",
  ),
  MEDIA_GRANT_SECRET: spec(
    z.string().min(32).optional(),
    "Chat and media: shared secret (32+ characters) with which Chat vouches that a viewer may read a chat attachment (kit/src/media-grants.ts). Required in production; outside production a fixed development value is used.",
    { secret: true, requiredWhen: "in production", defaultText: "a fixed development value" },
  ),
  ...MEDIA_ENV,
  ...PUSH_ENV,
  ...MAIL_ENV,
  GATEWAY_PORT: spec(port.default(DEFAULT_PORTS.gateway), "Port of the public gateway (HTTP and WebSocket)."),
  ...GATEWAY_PROTECTION_ENV,
  ...Object.fromEntries(
    SUBGRAPH_NAMES.flatMap((name) => [
      [
        `${upper(name)}_PORT`,
        spec(port.default(DEFAULT_PORTS[name]), `Port the ${name} subgraph listens on.`),
      ],
      [
        subgraphEntry(name).databaseUrlVar,
        spec(
          url.default(subgraphEntry(name).devDatabaseUrl),
          `PostgreSQL database owned by the ${name} subgraph${name === "discovery" ? " (needs PostGIS)" : ""}.`,
        ),
      ],
      [
        `${upper(name)}_URL`,
        spec(
          url.default(`http://127.0.0.1:${DEFAULT_PORTS[name]}/graphql`),
          `Where the gateway reaches the ${name} subgraph.`,
        ),
      ],
    ]),
  ),
};

type Env = Record<string, string | undefined>;

/** A value as an error may repeat it: a URL's password (database and Redis URLs carry one) masked. */
function withoutPassword(raw: string | undefined): string | undefined {
  if (raw === undefined) return raw;
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#]*@/i, "$1***@");
}

function read<T>(env: Env, key: string): T {
  const entry = ENV_CATALOGUE[key];
  if (!entry) throw new ConfigError(`${key} is not in the configuration catalogue`);
  const raw = env[key];
  const result = entry.schema.safeParse(raw === "" ? undefined : raw);
  if (!result.success) {
    const reason = result.error.issues.map((issue) => issue.message).join("; ");
    const shown = entry.secret ? "" : `=${JSON.stringify(withoutPassword(raw))}`;
    throw new ConfigError(`Invalid environment variable ${key}${shown}: ${reason}`);
  }
  return result.data as T;
}

export type NodeEnv = "development" | "production" | "test";

/** How every process verifies access tokens. */
export interface AuthVerificationConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/** The sentinels to ask for the current primary (REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_SENTINEL_PASSWORD). */
export interface RedisSentinelTarget {
  sentinels: RedisSentinelAddress[];
  /** The master group name. */
  name: string;
  /** The sentinels' own password; null when they have none. */
  password: string | null;
}

/**
 * Where every Redis client of a process connects; `redisOptions` (kit/src/redis.ts) turns it into
 * ioredis options. Plain data, so it can travel as JSON (the media worker's sandboxed processor).
 */
export interface RedisTarget {
  /** REDIS_URL. Without sentinels: the server. With them: only its user, password and database. */
  url: string;
  /** Null: connect to `url`'s host and port. */
  sentinel: RedisSentinelTarget | null;
}

/** REDIS_URL with the sentinel settings: both or neither of REDIS_SENTINELS and REDIS_SENTINEL_NAME. */
export function loadRedisTarget(env: Env): RedisTarget {
  const url = read<string>(env, "REDIS_URL");
  const sentinels = read<RedisSentinelAddress[] | undefined>(env, "REDIS_SENTINELS");
  const name = read<string | undefined>(env, "REDIS_SENTINEL_NAME");
  const password = read<string | undefined>(env, "REDIS_SENTINEL_PASSWORD");
  if (sentinels === undefined) {
    if (name !== undefined) throw new ConfigError("REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: set both (Redis through Sentinel) or neither");
    if (password !== undefined) throw new ConfigError("REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS: set REDIS_SENTINELS and REDIS_SENTINEL_NAME, or unset it");
    return { url, sentinel: null };
  }
  if (name === undefined) throw new ConfigError("REDIS_SENTINELS is set without REDIS_SENTINEL_NAME: name the master group the sentinels monitor");
  if (new URL(url).protocol === "rediss:") {
    throw new ConfigError("REDIS_URL is rediss:// (TLS) while REDIS_SENTINELS is set: TLS through Sentinel is not supported; use redis:// (its user, password and database are used)");
  }
  return { url, sentinel: { sentinels, name, password: password ?? null } };
}

export interface CommonConfig {
  nodeEnv: NodeEnv;
  isProduction: boolean;
  logLevel: string;
  host: string;
  /** REDIS_URL, or the sentinels that name the primary. */
  redis: RedisTarget;
  /** BullMQ prefix of the event queues (see kit/src/events). */
  eventsPrefix: string;
  trustProxy: TrustProxy;
  auth: AuthVerificationConfig;
}

export interface SubgraphConfig extends CommonConfig {
  name: SubgraphName;
  port: number;
  databaseUrl: string;
}

/** Edge protection at the gateway (docs/gateway.md, "Protection"). */
export interface GatewayProtectionConfig {
  operations: "apq" | "safelist";
  apqTtlSeconds: number;
  maxBodyBytes: number;
  subgraphTimeoutMs: number;
  queryLimits: { maxDepth: number; maxAliases: number; maxDirectives: number; maxTokens: number; maxCost: number };
  rateLimits: {
    ip: RateBudget;
    user: RateBudget;
    logIn: RateBudget;
    signUp: RateBudget;
    swipe: RateBudget;
    sendMessage: RateBudget;
    createUpload: RateBudget;
    subscribe: RateBudget;
  };
  blocklistRefreshSeconds: number;
  /** Open graphql-ws connections per client address and per user, on one replica. */
  socketCaps: { perAddress: number; perUser: number };
}

export interface GatewayConfig extends CommonConfig {
  port: number;
  subgraphUrls: Record<SubgraphName, string>;
  /** GATEWAY_METRICS_PORT: /metrics, on `metricsHost`. */
  metricsPort: number;
  /** SUBGRAPH_HOST: the private interface, where Prometheus scrapes. */
  metricsHost: string;
  protection: GatewayProtectionConfig;
}

function loadGatewayProtection(env: Env): GatewayProtectionConfig {
  return {
    operations: read(env, "GATEWAY_OPERATIONS"),
    apqTtlSeconds: read(env, "GATEWAY_APQ_TTL_SECONDS"),
    maxBodyBytes: read(env, "GATEWAY_MAX_BODY_BYTES"),
    subgraphTimeoutMs: read(env, "GATEWAY_SUBGRAPH_TIMEOUT_MS"),
    queryLimits: {
      maxDepth: read(env, "GATEWAY_MAX_DEPTH"),
      maxAliases: read(env, "GATEWAY_MAX_ALIASES"),
      maxDirectives: read(env, "GATEWAY_MAX_DIRECTIVES"),
      maxTokens: read(env, "GATEWAY_MAX_TOKENS"),
      maxCost: read(env, "GATEWAY_MAX_COST"),
    },
    rateLimits: {
      ip: read(env, "GATEWAY_RATE_LIMIT_IP"),
      user: read(env, "GATEWAY_RATE_LIMIT_USER"),
      logIn: read(env, "GATEWAY_RATE_LIMIT_LOGIN"),
      signUp: read(env, "GATEWAY_RATE_LIMIT_SIGNUP"),
      swipe: read(env, "GATEWAY_RATE_LIMIT_SWIPE"),
      sendMessage: read(env, "GATEWAY_RATE_LIMIT_SEND_MESSAGE"),
      createUpload: read(env, "GATEWAY_RATE_LIMIT_CREATE_UPLOAD"),
      subscribe: read(env, "GATEWAY_RATE_LIMIT_SUBSCRIBE"),
    },
    blocklistRefreshSeconds: read(env, "GATEWAY_BLOCKLIST_REFRESH_SECONDS"),
    socketCaps: { perAddress: read(env, "GATEWAY_WS_MAX_PER_ADDRESS"), perUser: read(env, "GATEWAY_WS_MAX_PER_USER") },
  };
}

function loadCommon(env: Env): CommonConfig {
  const nodeEnv = read<NodeEnv>(env, "NODE_ENV");
  // Read by OpenTelemetry itself; checked here so a typo fails the start-up with its name.
  for (const key of Object.keys(OBSERVABILITY_ENV)) if (key.startsWith("OTEL_")) read(env, key);
  return {
    nodeEnv,
    isProduction: nodeEnv === "production",
    logLevel: read(env, "LOG_LEVEL"),
    host: read(env, "HOST"),
    redis: loadRedisTarget(env),
    eventsPrefix: read(env, "EVENTS_PREFIX"),
    trustProxy: read(env, "TRUST_PROXY"),
    auth: { jwksUrl: read(env, "AUTH_JWKS_URL"), issuer: read(env, "AUTH_ISSUER"), audience: read(env, "AUTH_AUDIENCE") },
  };
}

export function loadSubgraphConfig(name: SubgraphName, env: Env): SubgraphConfig {
  return {
    ...loadCommon(env),
    host: read(env, "SUBGRAPH_HOST"),
    name,
    port: read(env, `${upper(name)}_PORT`),
    databaseUrl: read(env, subgraphEntry(name).databaseUrlVar),
  };
}

/** The users subgraph also issues access tokens. */
export interface UsersConfig extends SubgraphConfig {
  accessTokens: {
    /** The first signs; all are published in the JWKS. */
    signingKeys: SigningKeyJwk[];
    ttlSeconds: number;
  };
  refreshTokens: {
    ttlDays: number;
    /** A spent refresh token presented again within this window gets the same new pair. */
    reuseGraceSeconds: number;
  };
  /** MAIL_MAX_ATTEMPTS: tries of each account mail it queues. */
  mailMaxAttempts: number;
  /** MODERATION_CLAIM_SECONDS: a moderator's claim on a case lasts this long. */
  moderationClaimSeconds: number;
}

/**
 * `devKeyFile` (tests) replaces `<repo>/.data/dev-signing-keys.json`, used outside production
 * when AUTH_SIGNING_KEYS is unset.
 */
export function loadUsersConfig(env: Env, options: { devKeyFile?: string } = {}): UsersConfig {
  const base = loadSubgraphConfig("users", env);
  read(env, "AUTH_SIGNING_KEYS");
  return {
    ...base,
    accessTokens: {
      signingKeys: loadSigningKeys({
        value: env.AUTH_SIGNING_KEYS,
        isProduction: base.isProduction,
        ...(options.devKeyFile === undefined ? {} : { devKeyFile: options.devKeyFile }),
      }),
      ttlSeconds: read(env, "AUTH_ACCESS_TOKEN_TTL_SECONDS"),
    },
    refreshTokens: {
      ttlDays: read(env, "AUTH_REFRESH_TOKEN_TTL_DAYS"),
      reuseGraceSeconds: read(env, "AUTH_REFRESH_REUSE_GRACE_SECONDS"),
    },
    mailMaxAttempts: read(env, "MAIL_MAX_ATTEMPTS"),
    moderationClaimSeconds: read(env, "MODERATION_CLAIM_SECONDS"),
  };
}

const DEVELOPMENT_MEDIA_GRANT_SECRET = "development-only-media-grant-secret-not-for-production";

/** MEDIA_GRANT_SECRET for chat and media: required in production. */
export function loadMediaGrantSecret(env: Env): string {
  const secret = read<string | undefined>(env, "MEDIA_GRANT_SECRET");
  if (secret !== undefined) return secret;
  if (read(env, "NODE_ENV") === "production") {
    throw new ConfigError("MEDIA_GRANT_SECRET is required in production (32+ random characters, the same for chat and media)");
  }
  return DEVELOPMENT_MEDIA_GRANT_SECRET;
}

export interface SpamSignalConfig {
  newAccountHours: number;
  newAccountMaxMessages: number;
  newAccountMaxConversations: number;
  repeatedTextConversations: number;
  repeatedTextWindowSeconds: number;
}

export interface ChatConfig extends SubgraphConfig {
  requireMatch: boolean;
  messageMaxLength: number;
  maxAttachments: number;
  groupMaxMembers: number;
  /** Invitations one user may send per 24 hours (CHAT_INVITATIONS_PER_DAY). */
  invitationsPerDay: number;
  /** Invitations one user may have pending at once (CHAT_PENDING_INVITATIONS_MAX). */
  pendingInvitationsMax: number;
  sendBurst: number;
  sendSustained: number;
  presenceTtlSeconds: number;
  /** Spam signals (docs/spam-signals.md): CHAT_NEW_ACCOUNT_* and CHAT_REPEATED_TEXT_*. */
  spam: SpamSignalConfig;
  /** Redis of the fan-out: CHAT_PUBSUB_REDIS_URL (one server, no sentinels), else the common `redis`. */
  pubsubRedis: RedisTarget;
  /** MEDIA_GRANT_SECRET: signs attachment read grants. */
  mediaGrantSecret: string;
}

function pubsubRedisTarget(env: Env, common: RedisTarget): RedisTarget {
  const url = read<string | undefined>(env, "CHAT_PUBSUB_REDIS_URL");
  return url === undefined ? common : { url, sentinel: null };
}

export function loadChatConfig(env: Env): ChatConfig {
  const base = loadSubgraphConfig("chat", env);
  return {
    ...base,
    pubsubRedis: pubsubRedisTarget(env, base.redis),
    requireMatch: read(env, "CHAT_REQUIRE_MATCH"),
    messageMaxLength: read(env, "CHAT_MESSAGE_MAX_LENGTH"),
    maxAttachments: read(env, "CHAT_MAX_ATTACHMENTS"),
    groupMaxMembers: read(env, "CHAT_GROUP_MAX_MEMBERS"),
    invitationsPerDay: read(env, "CHAT_INVITATIONS_PER_DAY"),
    pendingInvitationsMax: read(env, "CHAT_PENDING_INVITATIONS_MAX"),
    sendBurst: read(env, "CHAT_SEND_BURST"),
    sendSustained: read(env, "CHAT_SEND_SUSTAINED"),
    presenceTtlSeconds: read(env, "CHAT_PRESENCE_TTL_SECONDS"),
    spam: {
      newAccountHours: read(env, "CHAT_NEW_ACCOUNT_HOURS"),
      newAccountMaxMessages: read(env, "CHAT_NEW_ACCOUNT_MAX_MESSAGES"),
      newAccountMaxConversations: read(env, "CHAT_NEW_ACCOUNT_MAX_CONVERSATIONS"),
      repeatedTextConversations: read(env, "CHAT_REPEATED_TEXT_CONVERSATIONS"),
      repeatedTextWindowSeconds: read(env, "CHAT_REPEATED_TEXT_WINDOW_SECONDS"),
    },
    mediaGrantSecret: loadMediaGrantSecret(env),
  };
}

export interface DiscoveryConfig extends SubgraphConfig {
  locationMaxAgeMinutes: number;
  /** DISCOVERY_READ_DATABASE_URL: nearby's candidates come from here; null: from the primary. */
  readDatabaseUrl: string | null;
}

export function loadDiscoveryConfig(env: Env): DiscoveryConfig {
  return {
    ...loadSubgraphConfig("discovery", env),
    locationMaxAgeMinutes: read(env, "DISCOVERY_LOCATION_MAX_AGE_MINUTES"),
    readDatabaseUrl: read<string | undefined>(env, "DISCOVERY_READ_DATABASE_URL") ?? null,
  };
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const subgraphUrls = Object.fromEntries(
    SUBGRAPH_NAMES.map((name) => [name, read<string>(env, `${upper(name)}_URL`)]),
  ) as Record<SubgraphName, string>;
  return { ...loadCommon(env), port: read(env, "GATEWAY_PORT"), metricsPort: read(env, "GATEWAY_METRICS_PORT"), metricsHost: read(env, "SUBGRAPH_HOST"), subgraphUrls, protection: loadGatewayProtection(env) };
}

/** One catalogued variable, validated, for a process's own config loader (e.g. the media subgraph's). */
export function readEnv<T>(env: Env, key: string): T {
  return read<T>(env, key);
}

/** How the users worker sends account mails (subgraphs/users/src/mail). */
export interface MailConfig {
  smtpUrl: string;
  from: string;
  /** No trailing slash. */
  linkBaseUrl: string;
  maxAttempts: number;
  retryBaseMs: number;
}

const DEVELOPMENT_SMTP_URL = "smtp://127.0.0.1:2525";
const DEVELOPMENT_LINK_BASE_URL = "http://localhost:8081";

/** MAIL_*: in production the SMTP server and the link base must be given (no silent local defaults). */
export function loadMailConfig(env: Env): MailConfig {
  const isProduction = read<NodeEnv>(env, "NODE_ENV") === "production";
  const smtpUrl = read<string | undefined>(env, "MAIL_SMTP_URL");
  const linkBaseUrl = read<string | undefined>(env, "APP_LINK_BASE_URL");
  if (isProduction && smtpUrl === undefined) {
    throw new ConfigError("MAIL_SMTP_URL is required in production: the SMTP server that sends verification and password-reset mails");
  }
  if (isProduction && linkBaseUrl === undefined) {
    throw new ConfigError("APP_LINK_BASE_URL is required in production: the app's public link base used in mails");
  }
  return {
    smtpUrl: smtpUrl ?? DEVELOPMENT_SMTP_URL,
    from: read(env, "MAIL_FROM"),
    linkBaseUrl: (linkBaseUrl ?? DEVELOPMENT_LINK_BASE_URL).replace(/\/+$/, ""),
    maxAttempts: read(env, "MAIL_MAX_ATTEMPTS"),
    retryBaseMs: read(env, "MAIL_RETRY_BASE_MS"),
  };
}

/** The push worker: the users domain's process that sends notifications (subgraphs/users/src/push). */
export interface PushWorkerConfig extends CommonConfig {
  port: number;
  /** The users database: devices, notification settings, blocks, deliveries. */
  databaseUrl: string;
  concurrency: number;
  androidProvider: "fcm" | "log";
  iosProvider: "apns" | "log";
  maxAttempts: number;
  retryBaseMs: number;
  deliveryRetentionHours: number;
  /** Oldest event, per kind, that is still worth a notification (minutes). */
  maxAgeMinutes: { message: number; match: number };
  fcm: { serviceAccount?: string; projectId?: string; endpoint: string; tokenUrl?: string };
  apns: { key?: string; keyId?: string; teamId?: string; topic?: string; endpoint: string; ca?: string };
  /** Account mails, sent by the same process (the users worker). */
  mail: MailConfig;
}

/** Raw, validated values; the provider credentials are checked further where they are used. */
export function loadPushWorkerConfig(env: Env): PushWorkerConfig {
  const common = loadCommon(env);
  const pick = <T>(key: string) => read<T | undefined>(env, key);
  const defined = <T extends object>(object: T): T =>
    Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
  return {
    ...common,
    host: read(env, "SUBGRAPH_HOST"),
    port: read(env, "PUSH_WORKER_PORT"),
    databaseUrl: read(env, "USERS_DATABASE_URL"),
    concurrency: read(env, "PUSH_WORKER_CONCURRENCY"),
    androidProvider: pick<"fcm" | "log">("PUSH_ANDROID_PROVIDER") ?? (common.isProduction ? "fcm" : "log"),
    iosProvider: pick<"apns" | "log">("PUSH_IOS_PROVIDER") ?? (common.isProduction ? "apns" : "log"),
    maxAttempts: read(env, "PUSH_MAX_ATTEMPTS"),
    retryBaseMs: read(env, "PUSH_RETRY_BASE_MS"),
    deliveryRetentionHours: read(env, "PUSH_DELIVERY_RETENTION_HOURS"),
    maxAgeMinutes: { message: read(env, "PUSH_MESSAGE_MAX_AGE_MINUTES"), match: read(env, "PUSH_MATCH_MAX_AGE_MINUTES") },
    fcm: defined({
      serviceAccount: pick<string>("FCM_SERVICE_ACCOUNT"),
      projectId: pick<string>("FCM_PROJECT_ID"),
      endpoint: read<string>(env, "FCM_ENDPOINT"),
      tokenUrl: pick<string>("FCM_TOKEN_URL"),
    }) as PushWorkerConfig["fcm"],
    apns: defined({
      key: pick<string>("APNS_KEY"),
      keyId: pick<string>("APNS_KEY_ID"),
      teamId: pick<string>("APNS_TEAM_ID"),
      topic: pick<string>("APNS_TOPIC"),
      endpoint: pick<string>("APNS_ENDPOINT") ?? (common.isProduction ? "https://api.push.apple.com" : "https://api.sandbox.push.apple.com"),
      ca: pick<string>("APNS_CA"),
    }) as PushWorkerConfig["apns"],
    mail: loadMailConfig(env),
  };
}

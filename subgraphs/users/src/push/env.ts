// Catalogue only (no other imports): start-prod and the docs read it without loading the process.
import { port, spec, url } from "@hv/kit/config";
import { z } from "zod";

/** The push worker's own variables (docs/configuration.md is generated from them). */
export const PUSH_ENV = {
  PUSH_WORKER_PORT: spec(
    port.default(4007),
    "Push worker: port of its `/healthz`, `/readyz` and `/metrics`.",
  ),
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
    z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 90)
      .default(72),
    "Push worker: how long a sent notification is remembered per device (and a finished job kept), so a repeated event does not notify twice.",
  ),
  PUSH_MESSAGE_MAX_AGE_MINUTES: spec(
    z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(15),
    "Push worker: a message notification whose message is older than this is dropped (and the providers are told to drop it after this: APNs `apns-expiration`, FCM `ttl`).",
  ),
  PUSH_MATCH_MAX_AGE_MINUTES: spec(
    z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(1440),
    "Push worker: a match notification whose match is older than this is dropped (and expires at the providers then).",
  ),
  FCM_SERVICE_ACCOUNT: spec(
    z.string().optional(),
    "Push worker, fcm: the Firebase service-account key, as its JSON text or the path of the JSON file. Required with the fcm provider.",
    { secret: true, requiredWhen: "with the fcm provider" },
  ),
  FCM_PROJECT_ID: spec(
    z
      .string()
      .regex(/^[a-z][a-z0-9-]{3,62}$/)
      .optional(),
    "Push worker, fcm: the Firebase project; default the service account's `project_id`.",
    { defaultText: "the service account's `project_id`" },
  ),
  FCM_ENDPOINT: spec(
    url.default("https://fcm.googleapis.com"),
    "Push worker, fcm: base URL of the FCM HTTP v1 API (tests point it at a local server).",
  ),
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
  APNS_KEY_ID: spec(
    z
      .string()
      .regex(/^[A-Z0-9]{10}$/)
      .optional(),
    "Push worker, apns: the key's 10-character id (the JWT `kid`).",
    { requiredWhen: "with the apns provider" },
  ),
  APNS_TEAM_ID: spec(
    z
      .string()
      .regex(/^[A-Z0-9]{10}$/)
      .optional(),
    "Push worker, apns: the Apple developer team id (the JWT `iss`).",
    { requiredWhen: "with the apns provider" },
  ),
  APNS_TOPIC: spec(
    z
      .string()
      .regex(/^[A-Za-z0-9.-]{1,200}$/)
      .optional(),
    "Push worker, apns: the app's bundle id (`apns-topic`).",
    { requiredWhen: "with the apns provider" },
  ),
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

import { createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import {
  ConfigError,
  ENV_CATALOGUE,
  loadCommonConfig,
  loadMailConfig,
  readVar,
  type CommonConfig,
  type Env,
  type MailConfig,
} from "@hv/kit";
import { PUSH_ENV } from "./env";
import { maxRetrySpanMs } from "./deliver";

export { PUSH_ENV };

function read<K extends keyof typeof PUSH_ENV>(env: Env, key: K) {
  return readVar(PUSH_ENV, env, key);
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
  const common = loadCommonConfig(env);
  const defined = <T extends object>(object: T): T =>
    Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
  return {
    ...common,
    host: readVar(ENV_CATALOGUE, env, "SUBGRAPH_HOST"),
    port: read(env, "PUSH_WORKER_PORT"),
    databaseUrl: readVar(ENV_CATALOGUE, env, "USERS_DATABASE_URL"),
    concurrency: read(env, "PUSH_WORKER_CONCURRENCY"),
    androidProvider: read(env, "PUSH_ANDROID_PROVIDER") ?? (common.isProduction ? "fcm" : "log"),
    iosProvider: read(env, "PUSH_IOS_PROVIDER") ?? (common.isProduction ? "apns" : "log"),
    maxAttempts: read(env, "PUSH_MAX_ATTEMPTS"),
    retryBaseMs: read(env, "PUSH_RETRY_BASE_MS"),
    deliveryRetentionHours: read(env, "PUSH_DELIVERY_RETENTION_HOURS"),
    maxAgeMinutes: {
      message: read(env, "PUSH_MESSAGE_MAX_AGE_MINUTES"),
      match: read(env, "PUSH_MATCH_MAX_AGE_MINUTES"),
    },
    fcm: defined({
      serviceAccount: read(env, "FCM_SERVICE_ACCOUNT"),
      projectId: read(env, "FCM_PROJECT_ID"),
      endpoint: read(env, "FCM_ENDPOINT"),
      tokenUrl: read(env, "FCM_TOKEN_URL"),
    }) as PushWorkerConfig["fcm"],
    apns: defined({
      key: read(env, "APNS_KEY"),
      keyId: read(env, "APNS_KEY_ID"),
      teamId: read(env, "APNS_TEAM_ID"),
      topic: read(env, "APNS_TOPIC"),
      endpoint:
        read(env, "APNS_ENDPOINT") ??
        (common.isProduction ? "https://api.push.apple.com" : "https://api.sandbox.push.apple.com"),
      ca: read(env, "APNS_CA"),
    }) as PushWorkerConfig["apns"],
    mail: loadMailConfig(env),
  };
}

/** A Firebase service account's fields the FCM provider uses. */
export interface FcmCredentials {
  clientEmail: string;
  /** PKCS#8 PEM (RSA). */
  privateKey: string;
  projectId: string;
  /** Where the OAuth 2.0 JWT grant is exchanged for an access token. */
  tokenUrl: string;
  /** Base URL of FCM HTTP v1, e.g. https://fcm.googleapis.com. */
  endpoint: string;
}

export interface ApnsCredentials {
  /** The .p8 key, PEM (EC P-256). */
  key: string;
  keyId: string;
  teamId: string;
  topic: string;
  /** https://host[:port] */
  endpoint: string;
  ca?: string;
}

export interface PushConfig extends Omit<PushWorkerConfig, "fcm" | "apns"> {
  fcm?: FcmCredentials;
  apns?: ApnsCredentials;
}

export const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";

/** PEM or JSON text as given, or the contents of the file it names. */
function textOrFile(value: string, variable: string, looksInline: (text: string) => boolean): string {
  const text = value.trim();
  if (looksInline(text)) return text;
  if (!existsSync(text)) throw new ConfigError(`${variable}: neither inline content nor an existing file`);
  try {
    return readFileSync(text, "utf8");
  } catch (error) {
    throw new ConfigError(
      `${variable}: cannot read ${text} (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

function fcmCredentials(raw: PushWorkerConfig["fcm"]): FcmCredentials {
  if (!raw.serviceAccount)
    throw new ConfigError("FCM_SERVICE_ACCOUNT is required with PUSH_ANDROID_PROVIDER=fcm");
  const text = textOrFile(raw.serviceAccount, "FCM_SERVICE_ACCOUNT", (value) => value.startsWith("{"));
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ConfigError("FCM_SERVICE_ACCOUNT is not valid JSON");
  }
  const field = (name: string) =>
    typeof json[name] === "string" && json[name] !== "" ? (json[name] as string) : undefined;
  const clientEmail = field("client_email");
  const privateKey = field("private_key");
  const projectId = raw.projectId ?? field("project_id");
  if (!clientEmail || !privateKey)
    throw new ConfigError(
      "FCM_SERVICE_ACCOUNT must hold client_email and private_key (a service-account key file)",
    );
  if (!projectId)
    throw new ConfigError("FCM_PROJECT_ID is required when the service account has no project_id");
  try {
    if (createPrivateKey(privateKey).asymmetricKeyType !== "rsa") throw new Error("not an RSA key");
  } catch (error) {
    throw new ConfigError(
      `FCM_SERVICE_ACCOUNT private_key is unusable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const tokenUrl = raw.tokenUrl ?? field("token_uri") ?? GOOGLE_TOKEN_URL;
  return { clientEmail, privateKey, projectId, tokenUrl, endpoint: raw.endpoint.replace(/\/+$/, "") };
}

function apnsCredentials(raw: PushWorkerConfig["apns"]): ApnsCredentials {
  const missing = (["APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"] as const).filter(
    (variable) =>
      ({ APNS_KEY: raw.key, APNS_KEY_ID: raw.keyId, APNS_TEAM_ID: raw.teamId, APNS_TOPIC: raw.topic })[
        variable
      ] === undefined,
  );
  if (missing.length > 0 || !raw.key || !raw.keyId || !raw.teamId || !raw.topic) {
    throw new ConfigError(`${missing.join(", ")} required with PUSH_IOS_PROVIDER=apns`);
  }
  const key = textOrFile(raw.key, "APNS_KEY", (value) => value.startsWith("-----BEGIN"));
  try {
    const parsed = createPrivateKey(key);
    if (parsed.asymmetricKeyType !== "ec" || parsed.asymmetricKeyDetails?.namedCurve !== "prime256v1")
      throw new Error("not an EC P-256 key");
  } catch (error) {
    throw new ConfigError(`APNS_KEY is unusable: ${error instanceof Error ? error.message : String(error)}`);
  }
  const endpoint = new URL(raw.endpoint);
  if (endpoint.protocol !== "https:") throw new ConfigError("APNS_ENDPOINT must be an https URL");
  return {
    key,
    keyId: raw.keyId,
    teamId: raw.teamId,
    topic: raw.topic,
    endpoint: endpoint.origin,
    ...(raw.ca === undefined
      ? {}
      : { ca: textOrFile(raw.ca, "APNS_CA", (value) => value.startsWith("-----BEGIN")) }),
  };
}

/**
 * The longest time after an event in which one of its jobs may still send: until the last retry,
 * but never past the kind's max age (an older job is dropped unsent).
 */
export function longestSendWindowMs(config: Pick<PushWorkerConfig, "maxAttempts" | "maxAgeMinutes">): number {
  const maxAgeMs = Math.max(config.maxAgeMinutes.message, config.maxAgeMinutes.match) * 60_000;
  return Math.min(maxRetrySpanMs(config.maxAttempts), maxAgeMs);
}

/** The push worker's configuration, with the chosen providers' credentials read and checked. */
export function loadPushConfig(env: Env): PushConfig {
  const { fcm, apns, ...rest } = loadPushWorkerConfig(env);
  // The log provider says "sent" and sends nothing: in production that would silently drop every
  // notification.
  if (rest.isProduction) {
    if (rest.androidProvider === "log")
      throw new ConfigError("PUSH_ANDROID_PROVIDER=log is refused in production (it sends nothing); use fcm");
    if (rest.iosProvider === "log")
      throw new ConfigError("PUSH_IOS_PROVIDER=log is refused in production (it sends nothing); use apns");
  }
  // A delivery row must outlive every job that could still send for its subject, or a retried or
  // repeated job would notify the device again.
  const windowMs = longestSendWindowMs(rest);
  if (rest.deliveryRetentionHours * 3_600_000 < windowMs) {
    throw new ConfigError(
      `PUSH_DELIVERY_RETENTION_HOURS must be at least ${Math.ceil(windowMs / 3_600_000)}: a notification job may still send that long after its event (PUSH_MAX_ATTEMPTS=${rest.maxAttempts} tries up to an hour apart, at most PUSH_MESSAGE_MAX_AGE_MINUTES / PUSH_MATCH_MAX_AGE_MINUTES)`,
    );
  }
  return {
    ...rest,
    ...(rest.androidProvider === "fcm" ? { fcm: fcmCredentials(fcm) } : {}),
    ...(rest.iosProvider === "apns" ? { apns: apnsCredentials(apns) } : {}),
  };
}

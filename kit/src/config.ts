import { isIP } from "node:net";
import { z } from "zod";
import { MAX_ACCESS_TOKEN_TTL_SECONDS } from "./auth/revocations";
import { loadSigningKeys, type SigningKeyJwk } from "./auth/signing-keys";
import { ConfigError } from "./config-error";
import { SUBGRAPH_NAMES, SUBGRAPHS, subgraphEntry, type SubgraphName } from "./subgraphs";

export { ConfigError };

/** Connections in a subgraph's database pool (node-postgres's default); `DATABASE_POOL_MIN` is at most this. */
export const POOL_MAX = 10;

/** Default ports: the gateway's, and each subgraph's from the registry. */
const DEFAULT_PORTS: Record<SubgraphName | "gateway", number> = {
  gateway: 4000,
  ...(Object.fromEntries(SUBGRAPHS.map((entry) => [entry.name, entry.port])) as Record<SubgraphName, number>),
};

/** Schemas the processes' catalogues share. */
export const port = z.coerce.number().int().min(0).max(65535);
export const url = z.string().url();

/** One catalogued variable; docs/configuration.md is generated from these (`pnpm run docs:generate`). */
export interface EnvVarSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  description: string;
  /** Never echoed in an error message. */
  secret?: boolean;
  /** When a variable the schema lets be unset must be set, e.g. "in production" (its loader enforces it). */
  requiredWhen?: string;
  /** The default in words, when it is not one fixed value of the schema. */
  defaultText?: string;
}

type SpecOptions = Pick<EnvVarSpec, "secret" | "requiredWhen" | "defaultText">;

/** A catalogue entry; the schema's output is the type its loader gets (`readVar`). */
export function spec<S extends z.ZodType>(
  schema: S,
  description: string,
  options: SpecOptions = {},
): EnvVarSpec<S> {
  return { schema, description, ...options };
}

/** The fixed value an unset variable takes, as written in the schema (before any transform); undefined if none. */
export function envVarDefault(entry: EnvVarSpec): string | number | boolean | undefined {
  let schema: z.ZodType = entry.schema;
  while (schema instanceof z.ZodPipe) schema = schema.in as z.ZodType;
  if (!(schema instanceof z.ZodDefault)) return undefined;
  const value: unknown = schema.def.defaultValue;
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? value
    : undefined;
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
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

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
export const redisUrl = url.superRefine((value, context) => {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return; // reported by `url`
  }
  const problems: string[] = [];
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    problems.push("the scheme must be redis: or rediss:");
  if (!/^\/?(\d{1,4})?$/.test(parsed.pathname))
    problems.push("the path is the database number (e.g. /0) or nothing");
  if (parsed.search !== "") problems.push("query parameters are not read: leave them out");
  if (problems.length > 0) context.addIssue({ code: "custom", message: problems.join("; ") });
});

const upper = <N extends SubgraphName>(name: N) => name.toUpperCase() as Uppercase<N>;

export const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(1).max(max).default(fallback);
export const MB = 1024 * 1024;

/** Account mails (users domain: the users subgraph queues them, the users worker sends them). */
const MAIL_ENV = {
  MAIL_SMTP_URL: spec(
    url
      .refine(
        (value) => /^smtps?:$/.test(new URL(value).protocol),
        "the scheme must be smtp: (STARTTLS when offered) or smtps: (TLS from the start)",
      )
      .optional(),
    "Users worker: the SMTP server account mails go through, `smtp[s]://[user:password@]host:port`. Required in production; in development `npm start` runs a local catch-all sink at `smtp://127.0.0.1:2525` (the default).",
    { secret: true, requiredWhen: "by the push worker in production" },
  ),
  MAIL_FROM: spec(
    z.string().min(3).max(320).default("Haiyvee <no-reply@haiyvee.invalid>"),
    "Users worker: the `From` of account mails, e.g. `Haiyvee <no-reply@example.com>`.",
  ),
  APP_LINK_BASE_URL: spec(
    url.optional(),
    "Users worker: the app's public link base in mails (`<base>/verify-email?token=…`, `/reset-password?token=…`, `/confirm-email?token=…`), a universal/app link the phone opens. Required in production; default `http://localhost:8081` outside it.",
    { requiredWhen: "by the push worker in production" },
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
      const durationSeconds =
        Number(match?.[2]) * WINDOW_SECONDS[(match?.[3] ?? "s") as keyof typeof WINDOW_SECONDS];
      if (!match || points < 1 || durationSeconds < 1 || durationSeconds > 7 * 24 * 3600) {
        context.addIssue({
          code: "custom",
          message:
            "expected <points>/<window> such as 30/15m (window in s, m or h, at most 7 days; points at least 1)",
        });
        return z.NEVER;
      }
      return { points, durationSeconds };
    });

/** The gateway's edge protection (gateway/src/protection; docs/gateway.md, "Protection"). */
const GATEWAY_PROTECTION_ENV = {
  GATEWAY_OPERATIONS: spec(
    z.enum(["apq", "safelist"]).default("apq"),
    "Gateway: `apq`: any valid operation, with automatic persisted queries cached in Redis; `safelist`: only the app's operations in `operations/persisted-query-manifest.json` (by hash or exact text), anything else is `PERSISTED_QUERY_NOT_ALLOWED`, over HTTP and WebSocket.",
  ),
  GATEWAY_APQ_TTL_SECONDS: spec(
    positiveInt(24 * 3600, 30 * 24 * 3600),
    "Gateway, apq: how long a registered persisted query stays in Redis.",
  ),
  GATEWAY_MAX_BODY_BYTES: spec(
    positiveInt(256 * 1024, 16 * MB),
    "Gateway: largest HTTP request body; bigger is refused with 413 `PAYLOAD_TOO_LARGE`.",
  ),
  GATEWAY_SUBGRAPH_TIMEOUT_MS: spec(
    positiveInt(10_000, 300_000),
    "Gateway: longest wait for one subgraph fetch; then that part of the answer is `UPSTREAM_TIMEOUT`.",
  ),
  GATEWAY_MAX_DEPTH: spec(
    positiveInt(12, 100),
    "Gateway: deepest nesting of selections in one operation (fragments included).",
  ),
  GATEWAY_MAX_ALIASES: spec(positiveInt(15, 1000), "Gateway: most aliases in one operation."),
  GATEWAY_MAX_DIRECTIVES: spec(positiveInt(30, 1000), "Gateway: most directives in one operation."),
  GATEWAY_MAX_TOKENS: spec(positiveInt(2_000, 100_000), "Gateway: most lexical tokens in one document."),
  GATEWAY_MAX_COST: spec(
    positiveInt(5_000, 1_000_000),
    "Gateway: highest cost of one operation (GraphQL Armor: 2 per object field and 1 per scalar, times 1.5 per level of depth).",
  ),
  GATEWAY_RATE_LIMIT_IP: spec(
    rateBudget("1200/1m"),
    "Gateway: HTTP requests to /graphql and subscribe messages per client address (IPv6 by /64).",
  ),
  GATEWAY_RATE_LIMIT_USER: spec(rateBudget("600/1m"), "Gateway: operations per signed-in user."),
  GATEWAY_RATE_LIMIT_LOGIN: spec(
    rateBudget("60/15m"),
    "Gateway: `logIn` fields per client address (each alias counts).",
  ),
  GATEWAY_RATE_LIMIT_SIGNUP: spec(
    rateBudget("20/1h"),
    "Gateway: `signUp` fields per client address (each alias counts).",
  ),
  GATEWAY_RATE_LIMIT_SWIPE: spec(
    rateBudget("600/1h"),
    "Gateway: `like` and `superLike` fields per user (each alias counts).",
  ),
  GATEWAY_RATE_LIMIT_SEND_MESSAGE: spec(
    rateBudget("120/1m"),
    "Gateway: `sendMessage` fields per user (each alias counts).",
  ),
  GATEWAY_RATE_LIMIT_CREATE_UPLOAD: spec(
    rateBudget("120/1h"),
    "Gateway: `createUpload` fields per user (each alias counts).",
  ),
  GATEWAY_RATE_LIMIT_SUBSCRIBE: spec(
    rateBudget("120/1m"),
    "Gateway: subscriptions started over WebSocket per user (per address when anonymous).",
  ),
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
const OBSERVABILITY_ENV = {
  GATEWAY_METRICS_PORT: spec(
    port.default(4009),
    "Gateway: port of its Prometheus `/metrics`, on `SUBGRAPH_HOST` (the private interface), apart from the public port. Subgraphs serve `/metrics` on their own port, workers on their probe port.",
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: spec(
    url.optional(),
    "Tracing: base URL of an OTLP/HTTP collector (`/v1/traces` is appended). Setting it (or the next one) turns tracing on; unset: no tracing.",
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: spec(
    url.optional(),
    "Tracing: full URL for traces, instead of `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.",
  ),
  OTEL_EXPORTER_OTLP_HEADERS: spec(
    z.string().optional(),
    "Tracing: headers sent to the collector, `key=value` pairs separated by commas (e.g. an API key).",
    { secret: true },
  ),
  OTEL_TRACES_EXPORTER: spec(
    z.enum(["otlp", "console", "none"]).optional(),
    "Tracing: `otlp` (JSON over HTTP), `console` (spans to stdout, development) or `none`. Default `otlp` when an endpoint is set, else `none`.",
    { defaultText: "`otlp` with an endpoint, else `none`" },
  ),
  OTEL_TRACES_SAMPLER: spec(
    z
      .enum([
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
      ])
      .optional(),
    "Tracing: which traces are kept; default `parentbased_always_on`. Use `parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG` under load.",
    { defaultText: "`parentbased_always_on`" },
  ),
  OTEL_TRACES_SAMPLER_ARG: spec(
    z.coerce.number().min(0).max(1).optional(),
    "Tracing: the ratio of traces kept by the `traceidratio` samplers (0 to 1).",
  ),
  OTEL_SERVICE_NAME: spec(
    z.string().min(1).optional(),
    "Tracing: `service.name` of the spans; default the process's name (`gateway`, `users`, …, `push-worker`, `media-worker`).",
    { defaultText: "the process's name" },
  ),
  OTEL_RESOURCE_ATTRIBUTES: spec(
    z.string().optional(),
    "Tracing: extra resource attributes, `key=value` pairs separated by commas (e.g. `deployment.environment=prod`).",
  ),
  OTEL_SDK_DISABLED: spec(
    z.enum(["true", "false"]).optional(),
    "Tracing: `true` turns it off whatever else is set.",
  ),
};

const subgraphPort = (name: SubgraphName) =>
  spec(port.default(DEFAULT_PORTS[name]), `Port the ${name} subgraph listens on.`);
const subgraphDatabase = (name: SubgraphName) =>
  spec(
    url.default(subgraphEntry(name).devDatabaseUrl),
    `PostgreSQL database owned by the ${name} subgraph${name === "discovery" ? " (needs PostGIS)" : ""}.`,
  );
const subgraphListenDatabase = (name: SubgraphName) =>
  spec(
    url.optional(),
    `The ${name} subgraph's outbox relay: a direct connection to its database (not through a transaction-pooling PgBouncer, which cannot carry LISTEN) on which it waits for committed events. Unset: \`${subgraphEntry(name).databaseUrlVar}\`; where LISTEN cannot work there the relay polls every second.`,
    { secret: true, defaultText: `\`${subgraphEntry(name).databaseUrlVar}\`` },
  );
const subgraphUrl = (name: SubgraphName) =>
  spec(
    url.default(`http://127.0.0.1:${DEFAULT_PORTS[name]}/graphql`),
    `Where the gateway reaches the ${name} subgraph.`,
  );

/** `<NAME>_PORT`, `<NAME>_DATABASE_URL`, `<NAME>_LISTEN_DATABASE_URL` and `<NAME>_URL` of every subgraph in the registry. */
const SUBGRAPH_ENV = Object.fromEntries(
  SUBGRAPH_NAMES.flatMap((name) => [
    [`${upper(name)}_PORT`, subgraphPort(name)],
    [subgraphEntry(name).databaseUrlVar, subgraphDatabase(name)],
    [subgraphEntry(name).listenDatabaseUrlVar, subgraphListenDatabase(name)],
    [`${upper(name)}_URL`, subgraphUrl(name)],
  ]),
) as Record<`${Uppercase<SubgraphName>}_PORT`, ReturnType<typeof subgraphPort>> &
  Record<`${Uppercase<SubgraphName>}_DATABASE_URL`, ReturnType<typeof subgraphDatabase>> &
  Record<`${Uppercase<SubgraphName>}_LISTEN_DATABASE_URL`, ReturnType<typeof subgraphListenDatabase>> &
  Record<`${Uppercase<SubgraphName>}_URL`, ReturnType<typeof subgraphUrl>>;

/** The variables kit's loaders read; chat, media and the push worker keep theirs in their own package. */
export const ENV_CATALOGUE = {
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
  DATABASE_POOL_MIN: spec(
    z.coerce.number().int().min(0).max(POOL_MAX).default(0),
    `Subgraphs: database connections each process opens at start-up and keeps open (of its pool's ${POOL_MAX}), so the first traffic after a start or a quiet spell does not wait for new ones; Chat's store pool opens as many, at most its \`CHAT_STORE_RUNNING\`. \`0\`: opened as queries need them.`,
  ),
  SUBGRAPH_HOST: spec(
    z.string().min(1).default("127.0.0.1"),
    "Interface the subgraphs bind to. Only the gateway should reach them: keep them off public networks.",
  ),
  SUBGRAPH_KNOWN_OPERATIONS: spec(
    z
      .enum(["true", "false"])
      .default("true")
      .transform((value) => value === "true"),
    'Subgraphs: answer plain POSTed queries and one-field mutations without Apollo Server\'s per-request pipeline, with the same answer (docs/gateway.md, "The HTTP front"). `false`: Apollo Server answers every request.',
  ),
  TRUST_PROXY: spec(
    trustProxy,
    "Which proxies' `X-Forwarded-For` to believe for the client's IP (Express `trust proxy`): `loopback` (the gateway on the same host), `true`, `false`, a hop count, or comma-separated IPs/CIDRs/`linklocal`/`uniquelocal`.",
  ),
  AUTH_JWKS_URL: spec(
    url.default(`http://127.0.0.1:${DEFAULT_PORTS.users}/.well-known/jwks.json`),
    "Where the gateway and subgraphs fetch the access-token public keys (the users subgraph serves them).",
  ),
  AUTH_ISSUER: spec(
    z.string().min(1).default("haiyvee"),
    "`iss` of access tokens: issued with it, required on verification.",
  ),
  AUTH_AUDIENCE: spec(
    z.string().min(1).default("haiyvee-api"),
    "`aud` of access tokens: issued with it, required on verification.",
  ),
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
    {
      secret: true,
      requiredWhen: "in production",
      defaultText: "a development key kept in `.data/dev-signing-keys.json`",
    },
  ),
  AUTH_REVOCATION_ASSERTION_SECRET: spec(
    z.string().min(32).optional(),
    "Gateway and subgraphs: shared secret (32+ characters) with which the gateway vouches that a request's access token was found not revoked, so a subgraph skips its own revocation lookup (kit/src/auth/revocation-assertions.ts). Unset: every subgraph looks revocation up itself. Use a value of its own, not another secret's.",
    { secret: true, defaultText: "unset (every subgraph looks revocation up itself)" },
  ),
  EVENTS_PREFIX: spec(
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/)
      .default("hv"),
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
    z
      .string()
      .regex(
        /^[A-Za-z0-9._-]{1,128}$/,
        "expected the master group name the sentinels monitor (letters, digits, `.`, `_`, `-`)",
      )
      .optional(),
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
    z.coerce
      .number()
      .int()
      .positive()
      .default(24 * 60),
    "A location older than this no longer makes a person discoverable.",
  ),
  MEDIA_GRANT_SECRET: spec(
    z.string().min(32).optional(),
    "Chat and media: shared secret (32+ characters) with which Chat vouches that a viewer may read a chat attachment (kit/src/media-grants.ts). Required in production; outside production a fixed development value is used.",
    { secret: true, requiredWhen: "in production", defaultText: "a fixed development value" },
  ),
  ...MAIL_ENV,
  GATEWAY_PORT: spec(port.default(DEFAULT_PORTS.gateway), "Port of the public gateway (HTTP and WebSocket)."),
  GATEWAY_UPSTREAM_CONNECTIONS: spec(
    positiveInt(1, 64),
    "Gateway: graphql-ws connections from each replica to each subgraph, on which every client's subscriptions are multiplexed (each new one on the least loaded). One carries all the members of a conversation, so an event for them leaves the subgraph in one write; more spread a replica's subscriptions over the subgraph's instances behind a load balancer.",
  ),
  ...GATEWAY_PROTECTION_ENV,
  ...SUBGRAPH_ENV,
};

export type Env = Record<string, string | undefined>;

/** Any process's catalogue of variables. */
export type EnvCatalogue = Readonly<Record<string, EnvVarSpec>>;

/** A value as an error may repeat it: a URL's password (database and Redis URLs carry one) masked. */
function withoutPassword(raw: string | undefined): string | undefined {
  if (raw === undefined) return raw;
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#]*@/i, "$1***@");
}

/** One variable of `catalogue`, validated at start-up; its type is its schema's output. Throws ConfigError naming it. */
export function readVar<C extends EnvCatalogue, K extends keyof C & string>(
  catalogue: C,
  env: Env,
  key: K,
): z.output<C[K]["schema"]> {
  const entry = catalogue[key];
  if (!entry) throw new ConfigError(`${key} is not in the configuration catalogue`);
  const raw = env[key];
  const result = entry.schema.safeParse(raw === "" ? undefined : raw);
  if (!result.success) {
    const reason = result.error.issues.map((issue) => issue.message).join("; ");
    const shown = entry.secret ? "" : `=${JSON.stringify(withoutPassword(raw))}`;
    throw new ConfigError(`Invalid environment variable ${key}${shown}: ${reason}`);
  }
  return result.data as z.output<C[K]["schema"]>;
}

function read<K extends keyof typeof ENV_CATALOGUE>(env: Env, key: K) {
  return readVar(ENV_CATALOGUE, env, key);
}

export type NodeEnv = "development" | "production" | "test";

/** How every process verifies access tokens. */
export interface AuthVerificationConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** AUTH_REVOCATION_ASSERTION_SECRET; null: no assertions are made or believed. */
  revocationAssertionSecret: string | null;
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
  const url = read(env, "REDIS_URL");
  const sentinels = read(env, "REDIS_SENTINELS");
  const name = read(env, "REDIS_SENTINEL_NAME");
  const password = read(env, "REDIS_SENTINEL_PASSWORD");
  if (sentinels === undefined) {
    if (name !== undefined)
      throw new ConfigError(
        "REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: set both (Redis through Sentinel) or neither",
      );
    if (password !== undefined)
      throw new ConfigError(
        "REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS: set REDIS_SENTINELS and REDIS_SENTINEL_NAME, or unset it",
      );
    return { url, sentinel: null };
  }
  if (name === undefined)
    throw new ConfigError(
      "REDIS_SENTINELS is set without REDIS_SENTINEL_NAME: name the master group the sentinels monitor",
    );
  if (new URL(url).protocol === "rediss:") {
    throw new ConfigError(
      "REDIS_URL is rediss:// (TLS) while REDIS_SENTINELS is set: TLS through Sentinel is not supported; use redis:// (its user, password and database are used)",
    );
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
  /** `<NAME>_LISTEN_DATABASE_URL`, else `databaseUrl`: where the outbox relay LISTENs. */
  listenDatabaseUrl: string;
  /** DATABASE_POOL_MIN: connections opened at start-up and kept. */
  databasePoolMin: number;
  /** SUBGRAPH_KNOWN_OPERATIONS: plain queries and one-field mutations skip Apollo Server's pipeline. */
  knownOperations: boolean;
}

/** Edge protection at the gateway (docs/gateway.md, "Protection"). */
export interface GatewayProtectionConfig {
  operations: "apq" | "safelist";
  apqTtlSeconds: number;
  maxBodyBytes: number;
  subgraphTimeoutMs: number;
  queryLimits: {
    maxDepth: number;
    maxAliases: number;
    maxDirectives: number;
    maxTokens: number;
    maxCost: number;
  };
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
  /** GATEWAY_UPSTREAM_CONNECTIONS: graphql-ws connections to each subgraph. */
  upstreamConnections: number;
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
    socketCaps: {
      perAddress: read(env, "GATEWAY_WS_MAX_PER_ADDRESS"),
      perUser: read(env, "GATEWAY_WS_MAX_PER_USER"),
    },
  };
}

/** What every process reads: environment, logs, interfaces, Redis, events prefix, proxies, token checks. */
export function loadCommonConfig(env: Env): CommonConfig {
  const nodeEnv = read(env, "NODE_ENV");
  // Read by OpenTelemetry itself; checked here so a typo fails the start-up with its name.
  for (const key of Object.keys(OBSERVABILITY_ENV) as (keyof typeof OBSERVABILITY_ENV)[])
    if (key.startsWith("OTEL_")) read(env, key);
  return {
    nodeEnv,
    isProduction: nodeEnv === "production",
    logLevel: read(env, "LOG_LEVEL"),
    host: read(env, "HOST"),
    redis: loadRedisTarget(env),
    eventsPrefix: read(env, "EVENTS_PREFIX"),
    trustProxy: read(env, "TRUST_PROXY"),
    auth: {
      jwksUrl: read(env, "AUTH_JWKS_URL"),
      issuer: read(env, "AUTH_ISSUER"),
      audience: read(env, "AUTH_AUDIENCE"),
      revocationAssertionSecret: read(env, "AUTH_REVOCATION_ASSERTION_SECRET") ?? null,
    },
  };
}

export function loadSubgraphConfig(name: SubgraphName, env: Env): SubgraphConfig {
  const databaseUrl = read(env, subgraphEntry(name).databaseUrlVar);
  return {
    ...loadCommonConfig(env),
    host: read(env, "SUBGRAPH_HOST"),
    name,
    port: read(env, `${upper(name)}_PORT`),
    databaseUrl,
    listenDatabaseUrl: read(env, subgraphEntry(name).listenDatabaseUrlVar) ?? databaseUrl,
    databasePoolMin: read(env, "DATABASE_POOL_MIN"),
    knownOperations: read(env, "SUBGRAPH_KNOWN_OPERATIONS"),
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
  const secret = read(env, "MEDIA_GRANT_SECRET");
  if (secret !== undefined) return secret;
  if (read(env, "NODE_ENV") === "production") {
    throw new ConfigError(
      "MEDIA_GRANT_SECRET is required in production (32+ random characters, the same for chat and media)",
    );
  }
  return DEVELOPMENT_MEDIA_GRANT_SECRET;
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
    readDatabaseUrl: read(env, "DISCOVERY_READ_DATABASE_URL") ?? null,
  };
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const subgraphUrls = Object.fromEntries(
    SUBGRAPH_NAMES.map((name) => [name, read(env, `${upper(name)}_URL`)]),
  ) as Record<SubgraphName, string>;
  return {
    ...loadCommonConfig(env),
    port: read(env, "GATEWAY_PORT"),
    metricsPort: read(env, "GATEWAY_METRICS_PORT"),
    metricsHost: read(env, "SUBGRAPH_HOST"),
    upstreamConnections: read(env, "GATEWAY_UPSTREAM_CONNECTIONS"),
    subgraphUrls,
    protection: loadGatewayProtection(env),
  };
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
  const isProduction = read(env, "NODE_ENV") === "production";
  const smtpUrl = read(env, "MAIL_SMTP_URL");
  const linkBaseUrl = read(env, "APP_LINK_BASE_URL");
  if (isProduction && smtpUrl === undefined) {
    throw new ConfigError(
      "MAIL_SMTP_URL is required in production: the SMTP server that sends verification and password-reset mails",
    );
  }
  if (isProduction && linkBaseUrl === undefined) {
    throw new ConfigError(
      "APP_LINK_BASE_URL is required in production: the app's public link base used in mails",
    );
  }
  return {
    smtpUrl: smtpUrl ?? DEVELOPMENT_SMTP_URL,
    from: read(env, "MAIL_FROM"),
    linkBaseUrl: (linkBaseUrl ?? DEVELOPMENT_LINK_BASE_URL).replace(/\/+$/, ""),
    maxAttempts: read(env, "MAIL_MAX_ATTEMPTS"),
    retryBaseMs: read(env, "MAIL_RETRY_BASE_MS"),
  };
}

import { z } from "zod";

/**
 * Every environment variable the system reads, in one catalogue. Each process picks its slice
 * (see `loadGatewayConfig` / `loadSubgraphConfig`), validated once at start-up; a bad value fails
 * fast with a message that names the variable. The README's table is checked against this list.
 */
export const SUBGRAPH_NAMES = ["users", "discovery", "chat", "media"] as const;
export type SubgraphName = (typeof SUBGRAPH_NAMES)[number];

const DEFAULT_PORTS: Record<SubgraphName | "gateway", number> = {
  gateway: 4000,
  users: 4001,
  discovery: 4002,
  chat: 4003,
  media: 4004,
};

const port = z.coerce.number().int().min(0).max(65535);
const url = z.string().url();

interface EnvVarSpec {
  schema: z.ZodType;
  description: string;
}

function spec(schema: z.ZodType, description: string): EnvVarSpec {
  return { schema, description };
}

const upper = (name: SubgraphName) => name.toUpperCase();

export const ENV_CATALOGUE: Record<string, EnvVarSpec> = {
  NODE_ENV: spec(
    z.enum(["development", "production", "test"]).default("development"),
    "`production` turns off introspection and the Sandbox landing page and masks internal errors.",
  ),
  LOG_LEVEL: spec(
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    "Minimum level of the JSON logs written to stdout.",
  ),
  HOST: spec(z.string().min(1).default("0.0.0.0"), "Interface every HTTP server binds to."),
  REDIS_URL: spec(url.default("redis://127.0.0.1:6379"), "Redis for caches, pub/sub and queues."),
  DISCOVERY_LOCATION_MAX_AGE_MINUTES: spec(
    z.coerce.number().int().positive().default(24 * 60),
    "A location older than this no longer makes a person discoverable.",
  ),
  GATEWAY_PORT: spec(port.default(DEFAULT_PORTS.gateway), "Port of the public gateway (HTTP and WebSocket)."),
  ...Object.fromEntries(
    SUBGRAPH_NAMES.flatMap((name) => [
      [
        `${upper(name)}_PORT`,
        spec(port.default(DEFAULT_PORTS[name]), `Port the ${name} subgraph listens on.`),
      ],
      [
        `${upper(name)}_DATABASE_URL`,
        spec(
          url.default(`postgresql://postgres@127.0.0.1:5432/hv_${name}`),
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

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function read<T>(env: Env, key: string): T {
  const entry = ENV_CATALOGUE[key];
  if (!entry) throw new ConfigError(`${key} is not in the configuration catalogue`);
  const raw = env[key];
  const result = entry.schema.safeParse(raw === "" ? undefined : raw);
  if (!result.success) {
    const reason = result.error.issues.map((issue) => issue.message).join("; ");
    throw new ConfigError(`Invalid environment variable ${key}=${JSON.stringify(raw)}: ${reason}`);
  }
  return result.data as T;
}

export type NodeEnv = "development" | "production" | "test";

export interface CommonConfig {
  nodeEnv: NodeEnv;
  isProduction: boolean;
  logLevel: string;
  host: string;
  redisUrl: string;
}

export interface SubgraphConfig extends CommonConfig {
  name: SubgraphName;
  port: number;
  databaseUrl: string;
}

export interface GatewayConfig extends CommonConfig {
  port: number;
  subgraphUrls: Record<SubgraphName, string>;
}

function loadCommon(env: Env): CommonConfig {
  const nodeEnv = read<NodeEnv>(env, "NODE_ENV");
  return {
    nodeEnv,
    isProduction: nodeEnv === "production",
    logLevel: read(env, "LOG_LEVEL"),
    host: read(env, "HOST"),
    redisUrl: read(env, "REDIS_URL"),
  };
}

export function loadSubgraphConfig(name: SubgraphName, env: Env): SubgraphConfig {
  return {
    ...loadCommon(env),
    name,
    port: read(env, `${upper(name)}_PORT`),
    databaseUrl: read(env, `${upper(name)}_DATABASE_URL`),
  };
}

export interface DiscoveryConfig extends SubgraphConfig {
  locationMaxAgeMinutes: number;
}

export function loadDiscoveryConfig(env: Env): DiscoveryConfig {
  return {
    ...loadSubgraphConfig("discovery", env),
    locationMaxAgeMinutes: read(env, "DISCOVERY_LOCATION_MAX_AGE_MINUTES"),
  };
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const subgraphUrls = Object.fromEntries(
    SUBGRAPH_NAMES.map((name) => [name, read<string>(env, `${upper(name)}_URL`)]),
  ) as Record<SubgraphName, string>;
  return { ...loadCommon(env), port: read(env, "GATEWAY_PORT"), subgraphUrls };
}

/**
 * How each production process is deployed: the per-process settings that scripts/infra/generate.ts
 * applies to one base (scripts/infra/k8s-base.ts, and the compose, Dockerfile and Prometheus
 * templates). A subgraph of the registry that is not named in OVERRIDES gets SUBGRAPH_DEFAULTS and
 * its database URL: adding a plain subgraph touches nothing here.
 */
import { subgraphEntry, SUBGRAPH_NAMES, type SubgraphName } from "@hv/kit/src/subgraphs";
import { BUILT_PROCESSES, type BuiltProcess } from "../build/processes";

/** A variable of a container: a literal, or a key of a Secret (the key is the variable's name unless given). */
export type EnvEntry =
  { name: string; value: string } | { name: string; secret: string; key?: string; optional?: boolean };

export interface Resources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

export type Scaling =
  | { kind: "hpa"; min: number; max: number }
  /** KEDA on BullMQ wait-list lengths, then CPU. */
  | { kind: "keda"; min: number; max: number; lists: Array<{ list: string; length: number }> };

export interface Deployment {
  process: BuiltProcess;
  component: "gateway" | "subgraph" | "worker";
  /** Its HTTP port: the value of `process.portVariable` everywhere it is deployed. */
  port: number;
  /** Where Prometheus scrapes /metrics (the HTTP port unless the process has a metrics port). */
  metricsPort: number;
  /** Container ports besides `http` (not in the Service), each with a comment. */
  extraPorts: Array<{ name: string; port: number; comment: string }>;
  /** Comment lines of its manifest, after the first (what it is) and the shutdown line. */
  notes: string[];
  replicas: number;
  terminationGraceSeconds: number;
  resources: Resources;
  tmpSize: string;
  env: EnvEntry[];
  scaling: Scaling;
  /**
   * Subgraphs only (their compose services and Dockerfile targets are generated; the gateway's and
   * the workers' are written by hand): compose variables besides the port, published ports and
   * volumes; Dockerfile lines of its target before EXPOSE, and the ports it exposes.
   */
  compose: { env: Record<string, string>; ports: string[]; volumes: string[] };
  docker: { lines: string[]; expose: number[] };
}

type Settings = Omit<Deployment, "process">;

const DATABASE_SECRET = "hv-db";
const WEBSOCKETS_NOTE =
  "WebSockets: closed with 1001 at SIGTERM (after preStop) so clients reconnect to another replica.";
const MEDIA_GRANT: EnvEntry = { name: "MEDIA_GRANT_SECRET", secret: "hv-media" };
/** The gateway's and every subgraph's: without it each subgraph looks revocation up itself. */
const REVOCATION_ASSERTION: EnvEntry = {
  name: "AUTH_REVOCATION_ASSERTION_SECRET",
  secret: "hv-auth",
  optional: true,
};
const S3_KEYS: EnvEntry[] = ["MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"].map((name) => ({
  name,
  secret: "hv-media",
  optional: true,
}));

const noCompose = { env: {}, ports: [], volumes: [] };
const noDocker = { lines: [], expose: [] };

/** A subgraph's settings unless OVERRIDES says otherwise: its database URL from the hv-db Secret. */
function subgraphDefaults(name: SubgraphName): Settings {
  const entry = subgraphEntry(name);
  return {
    component: "subgraph",
    port: entry.port,
    metricsPort: entry.port,
    extraPorts: [],
    notes: [],
    replicas: 2,
    terminationGraceSeconds: 30,
    resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "768Mi" } },
    tmpSize: "256Mi",
    env: [
      { name: entry.databaseUrlVar, secret: DATABASE_SECRET },
      { name: entry.listenDatabaseUrlVar, secret: DATABASE_SECRET, key: `${entry.databaseUrlVar}_DIRECT` },
      REVOCATION_ASSERTION,
    ],
    scaling: { kind: "hpa", min: 2, max: 20 },
    compose: noCompose,
    docker: { lines: [], expose: [entry.port] },
  };
}

/** What differs from a subgraph's defaults, by subgraph. */
const SUBGRAPH_OVERRIDES: Partial<Record<SubgraphName, (base: Settings) => Settings>> = {
  users: (base) => ({
    ...base,
    env: [{ name: "AUTH_SIGNING_KEYS", secret: "hv-auth" }, ...base.env],
    compose: {
      ...noCompose,
      env: {
        AUTH_SIGNING_KEYS:
          "${AUTH_SIGNING_KEYS:?set AUTH_SIGNING_KEYS (pnpm exec tsx scripts/generate-signing-key.ts)}",
      },
    },
  }),
  discovery: (base) => ({
    ...base,
    env: [...base.env, { name: "DISCOVERY_READ_DATABASE_URL", secret: DATABASE_SECRET }],
  }),
  chat: (base) => ({
    ...base,
    notes: [WEBSOCKETS_NOTE],
    terminationGraceSeconds: 45,
    resources: { ...base.resources, limits: { cpu: "1", memory: "1Gi" } },
    env: [...base.env, MEDIA_GRANT],
  }),
  media: (base) => ({
    ...base,
    env: [...base.env, MEDIA_GRANT, ...S3_KEYS],
    scaling: { kind: "hpa", min: 2, max: 10 },
    compose: {
      ...noCompose,
      env: { MEDIA_FILES_PORT: "4005" },
      ports: ["4005:4005"],
      volumes: ["media-data:/data/media"],
    },
    docker: { lines: ["ENV MEDIA_LOCAL_DIR=/data/media"], expose: [4004, 4005] },
  }),
};

/** The gateway and the workers, which the registry does not describe. */
const OTHERS: Record<string, Settings> = {
  gateway: {
    component: "gateway",
    port: 4000,
    metricsPort: 4009,
    extraPorts: [
      {
        name: "metrics",
        port: 4009,
        comment:
          "/metrics only (GATEWAY_METRICS_PORT on SUBGRAPH_HOST); the Service and Ingress expose 4000 alone.",
      },
    ],
    notes: [WEBSOCKETS_NOTE],
    replicas: 3,
    terminationGraceSeconds: 45,
    resources: { requests: { cpu: "500m", memory: "384Mi" }, limits: { cpu: "2", memory: "1Gi" } },
    tmpSize: "256Mi",
    env: [REVOCATION_ASSERTION],
    scaling: { kind: "hpa", min: 3, max: 30 },
    compose: noCompose,
    docker: noDocker,
  },
  "push-worker": {
    component: "worker",
    port: 4007,
    metricsPort: 4007,
    extraPorts: [],
    notes: [],
    replicas: 1,
    terminationGraceSeconds: 30,
    resources: { requests: { cpu: "200m", memory: "192Mi" }, limits: { cpu: "1", memory: "512Mi" } },
    tmpSize: "256Mi",
    env: [
      { name: "USERS_DATABASE_URL", secret: DATABASE_SECRET },
      { name: "MAIL_SMTP_URL", secret: "hv-mail" },
      ...["FCM_SERVICE_ACCOUNT", "APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"].map((name) => ({
        name,
        secret: "hv-push",
      })),
    ],
    scaling: {
      kind: "keda",
      min: 1,
      max: 20,
      lists: [
        { list: "hv:events.push:wait", length: 50 },
        { list: "hv:push.deliveries:wait", length: 50 },
      ],
    },
    compose: noCompose,
    docker: noDocker,
  },
  "media-worker": {
    component: "worker",
    port: 4006,
    metricsPort: 4006,
    extraPorts: [],
    notes: [],
    replicas: 1,
    terminationGraceSeconds: 60,
    resources: { requests: { cpu: "1", memory: "768Mi" }, limits: { cpu: "2", memory: "2Gi" } },
    tmpSize: "2Gi",
    env: [
      { name: "MEDIA_WORKER_CONCURRENCY", value: "1" },
      { name: "MEDIA_DATABASE_URL", secret: DATABASE_SECRET },
      ...S3_KEYS,
    ],
    scaling: { kind: "keda", min: 1, max: 30, lists: [{ list: "hv:media.process:wait", length: 5 }] },
    compose: noCompose,
    docker: noDocker,
  },
};

function settingsOf(name: string): Settings {
  if ((SUBGRAPH_NAMES as readonly string[]).includes(name)) {
    const subgraph = name as SubgraphName;
    const base = subgraphDefaults(subgraph);
    return SUBGRAPH_OVERRIDES[subgraph]?.(base) ?? base;
  }
  const settings = OTHERS[name];
  if (!settings)
    throw new Error(`scripts/infra/deployments.ts: no deployment settings for the process "${name}"`);
  return settings;
}

/** Every production process (scripts/build/processes.ts) with its deployment settings, in that order. */
export const DEPLOYMENTS: readonly Deployment[] = BUILT_PROCESSES.map((process) => ({
  process,
  ...settingsOf(process.name),
}));

import { start as startChat } from "@hv/chat";
import { start as startDiscovery } from "@hv/discovery";
import { start as startGateway } from "@hv/gateway";
import { start as startMedia } from "@hv/media";
import { loadMediaConfig, loadMediaWorkerConfig } from "@hv/media/src/config";
import { startMediaWorker } from "@hv/media/src/worker";
import os from "node:os";
import path from "node:path";
import { start as startUsers } from "@hv/users";
import {
  createAccessTokenIssuer,
  generateSigningKeyJwk,
  JWKS_PATH,
  loadDiscoveryConfig,
  loadGatewayConfig,
  loadSubgraphConfig,
  loadUsersConfig,
  SUBGRAPH_NAMES,
  type AccessTokenIssuer,
  type Logger,
  type RunningService,
  type RunningSubgraph,
  type SigningKeyJwk,
  type SubgraphConfig,
  type SubgraphName,
} from "@hv/kit";
import { loadChatConfig } from "@hv/chat/src/config";
import { capturingLogger, type LogLine } from "./log-capture";

export interface RunningSystem {
  gatewayUrl: string;
  gateway: RunningService;
  subgraphs: Record<SubgraphName, RunningSubgraph>;
  /** The media worker (transcoding), in this process; its processors run in child processes. */
  mediaWorker: RunningService;
  /** Every SQL statement the users subgraph sent, in order (tests clear it and count). */
  usersQueries: string[];
  /** Every SQL statement the discovery subgraph sent (Prisma's and the nearby search pool's). */
  discoveryQueries: string[];
  /** Every SQL statement the media subgraph sent (not its worker's). */
  mediaQueries: string[];
  logs: Record<SubgraphName | "gateway", LogLine[]>;
  /** Issues access tokens with the same keys, issuer and audience as the running users subgraph. */
  accessTokens: AccessTokenIssuer;
  /** The users subgraph's signing keys (the first signs). */
  signingKeys: SigningKeyJwk[];
  /** The users subgraph's JWKS, which the gateway and the other subgraphs verify with. */
  jwksUrl: string;
  stop(): Promise<void>;
}

let defaultSigningKeys: string | undefined;

const upper = (name: SubgraphName) => name.toUpperCase();

/** The subgraphs wired below by hand (their own configs, query capture); the registry's others start plainly. */
const WIRED: readonly SubgraphName[] = ["users", "discovery", "chat", "media"];

/** A registry subgraph the fixture has no wiring for: its `src/server.ts` `start` with kit's config. */
async function startPlainSubgraph(
  name: SubgraphName,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<RunningSubgraph> {
  const server = (await import(path.join(__dirname, "..", "..", "subgraphs", name, "src", "server"))) as {
    start(config: SubgraphConfig, logger: Logger): Promise<RunningSubgraph>;
  };
  return server.start(loadSubgraphConfig(name, env), logger);
}

/** Environment for in-process services: free ports, this run's databases (set by global setup). */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    // The gateway's edge budgets are per address/user for the whole run (tests share 127.0.0.1 and
    // sign up many people): out of the way here (before process.env, so a test may set its own); test/e2e/protection tests them.
    GATEWAY_RATE_LIMIT_IP: "1000000/1m",
    GATEWAY_RATE_LIMIT_USER: "1000000/1m",
    GATEWAY_RATE_LIMIT_LOGIN: "1000000/1m",
    GATEWAY_RATE_LIMIT_SIGNUP: "1000000/1m",
    GATEWAY_RATE_LIMIT_SWIPE: "1000000/1m",
    GATEWAY_RATE_LIMIT_SEND_MESSAGE: "1000000/1m",
    GATEWAY_RATE_LIMIT_CREATE_UPLOAD: "1000000/1m",
    GATEWAY_RATE_LIMIT_SUBSCRIBE: "1000000/1m",
    // Every test signs up fresh accounts: chat's spam signals (test/e2e/chat/spam-signals.test.ts)
    // are off here unless a test turns them on.
    CHAT_NEW_ACCOUNT_HOURS: "0",
    CHAT_REPEATED_TEXT_CONVERSATIONS: "10000",
    // Users' tests alias 20 logIns in one request to test the subgraph's own per-attempt budget.
    GATEWAY_MAX_ALIASES: "50",
    // As deployed: the gateway vouches for its revocation checks (a test may unset it with "").
    AUTH_REVOCATION_ASSERTION_SECRET: "test-revocation-assertion-secret-0123456789",
    ...process.env,
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    ...Object.fromEntries(SUBGRAPH_NAMES.map((name) => [`${upper(name)}_PORT`, "0"])),
    GATEWAY_PORT: "0",
    GATEWAY_METRICS_PORT: "0",
    MEDIA_FILES_PORT: "0",
    MEDIA_WORKER_PORT: "0",
    // Media files of this test run only (the directory is under the OS temp dir).
    MEDIA_LOCAL_DIR: path.join(os.tmpdir(), `hv-test-media-${process.env.HV_TEST_RUN_ID ?? "run"}`),
    // One key per test process unless a test brings its own: nothing writes .data/dev-signing-keys.json.
    AUTH_SIGNING_KEYS: (defaultSigningKeys ??= JSON.stringify([generateSigningKeyJwk("test-default")])),
    ...overrides,
  };
}

/** The gateway's `<SUBGRAPH>_URL` variables, naming each subgraph's running URL. */
export function subgraphUrlEnv(subgraphs: Record<SubgraphName, { url: string }>): Record<string, string> {
  return Object.fromEntries(SUBGRAPH_NAMES.map((name) => [`${upper(name)}_URL`, subgraphs[name].url]));
}

/** Every subgraph of the registry and the gateway, in this process, on free ports, with real databases and Redis. */
export async function startSystem(overrides: Record<string, string> = {}): Promise<RunningSystem> {
  const env = testEnv({
    AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("test-system")]),
    ...overrides,
  });
  // Tests read the info lines; a benchmark that passes LOG_LEVEL (warn) does not pay for them.
  const level = overrides.LOG_LEVEL ?? "info";
  const users = capturingLogger("users", level);
  const discovery = capturingLogger("discovery", level);
  const chat = capturingLogger("chat", level);
  const media = capturingLogger("media", level);
  const gatewayLog = capturingLogger("gateway", level);
  // Users first: it issues the tokens and serves the JWKS everyone else verifies with.
  const usersConfig = loadUsersConfig(env);
  const usersQueries: string[] = [];
  const discoveryQueries: string[] = [];
  const mediaQueries: string[] = [];
  const usersService = await startUsers(usersConfig, users.logger, {
    database: { onQuery: (sql) => usersQueries.push(sql) },
  });
  const jwksUrl = overrides.AUTH_JWKS_URL ?? usersService.url.replace(/\/graphql$/, JWKS_PATH);
  const verifyingEnv = { ...env, AUTH_JWKS_URL: jwksUrl };
  const others = SUBGRAPH_NAMES.filter((name) => !WIRED.includes(name)).map((name) => ({
    name,
    log: capturingLogger(name, level),
  }));
  const subgraphs: Record<SubgraphName, RunningSubgraph> = {
    ...(Object.fromEntries(
      await Promise.all(
        others.map(async ({ name, log }) => [name, await startPlainSubgraph(name, verifyingEnv, log.logger)]),
      ),
    ) as Record<SubgraphName, RunningSubgraph>),
    users: usersService,
    discovery: await startDiscovery(loadDiscoveryConfig(verifyingEnv), discovery.logger, {
      database: { onQuery: (sql) => discoveryQueries.push(sql) },
    }),
    chat: await startChat(loadChatConfig(verifyingEnv), chat.logger),
    media: await startMedia(loadMediaConfig(verifyingEnv), media.logger, {
      database: { onQuery: (sql) => mediaQueries.push(sql) },
    }),
  };
  const mediaWorker = await startMediaWorker(
    loadMediaWorkerConfig(verifyingEnv),
    media.logger.child({ process: "media-worker" }),
  );
  const gateway = await startGateway(
    loadGatewayConfig({
      ...verifyingEnv,
      ...subgraphUrlEnv(subgraphs),
    }),
    gatewayLog.logger,
  );
  return {
    gatewayUrl: gateway.url,
    usersQueries,
    discoveryQueries,
    mediaQueries,
    gateway,
    subgraphs,
    mediaWorker,
    logs: {
      ...(Object.fromEntries(others.map(({ name, log }) => [name, log.lines])) as Record<
        SubgraphName,
        LogLine[]
      >),
      users: users.lines,
      discovery: discovery.lines,
      chat: chat.lines,
      media: media.lines,
      gateway: gatewayLog.lines,
    },
    accessTokens: createAccessTokenIssuer({
      keys: usersConfig.accessTokens.signingKeys,
      issuer: usersConfig.auth.issuer,
      audience: usersConfig.auth.audience,
      ttlSeconds: usersConfig.accessTokens.ttlSeconds,
    }),
    jwksUrl,
    signingKeys: usersConfig.accessTokens.signingKeys,
    stop: async () => {
      await gateway.stop();
      await Promise.all([...Object.values(subgraphs), mediaWorker].map((service) => service.stop()));
    },
  };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    data?: T | null;
    errors?: Array<{
      message: string;
      path?: string[];
      extensions?: { code?: string } & Record<string, unknown>;
    }>;
  };
}

/** A plain HTTP GraphQL request, as a mobile client makes it. */
export async function graphqlRequest<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as GraphQLResponse<T>["body"],
  };
}

import { start as startChat } from "@hv/chat";
import { start as startDiscovery } from "@hv/discovery";
import { start as startGateway } from "@hv/gateway";
import { start as startMedia } from "@hv/media";
import { start as startUsers } from "@hv/users";
import {
  loadDiscoveryConfig,
  loadGatewayConfig,
  loadSubgraphConfig,
  type RunningService,
  type SubgraphName,
} from "@hv/kit";
import { capturingLogger, type LogLine } from "./log-capture";

export interface RunningSystem {
  gatewayUrl: string;
  gateway: RunningService;
  subgraphs: Record<SubgraphName, RunningService>;
  logs: Record<SubgraphName | "gateway", LogLine[]>;
  stop(): Promise<void>;
}

/** Environment for in-process services: free ports, this run's databases (set by global setup). */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    USERS_PORT: "0",
    DISCOVERY_PORT: "0",
    CHAT_PORT: "0",
    MEDIA_PORT: "0",
    GATEWAY_PORT: "0",
    ...overrides,
  };
}

/** The four subgraphs and the gateway, in this process, on free ports, with real databases and Redis. */
export async function startSystem(overrides: Record<string, string> = {}): Promise<RunningSystem> {
  const env = testEnv(overrides);
  const users = capturingLogger("users");
  const discovery = capturingLogger("discovery");
  const chat = capturingLogger("chat");
  const media = capturingLogger("media");
  const gatewayLog = capturingLogger("gateway");
  const subgraphs = {
    users: await startUsers(loadSubgraphConfig("users", env), users.logger),
    discovery: await startDiscovery(loadDiscoveryConfig(env), discovery.logger),
    chat: await startChat(loadSubgraphConfig("chat", env), chat.logger),
    media: await startMedia(loadSubgraphConfig("media", env), media.logger),
  };
  const gateway = await startGateway(
    loadGatewayConfig({
      ...env,
      USERS_URL: subgraphs.users.url,
      DISCOVERY_URL: subgraphs.discovery.url,
      CHAT_URL: subgraphs.chat.url,
      MEDIA_URL: subgraphs.media.url,
    }),
    gatewayLog.logger,
  );
  return {
    gatewayUrl: gateway.url,
    gateway,
    subgraphs,
    logs: { users: users.lines, discovery: discovery.lines, chat: chat.lines, media: media.lines, gateway: gatewayLog.lines },
    stop: async () => {
      await gateway.stop();
      await Promise.all(Object.values(subgraphs).map((service) => service.stop()));
    },
  };
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: { data?: T | null; errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string } & Record<string, unknown> }> };
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
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<T>["body"] };
}

import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { composeServices } from "@apollo/composition";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { start as startGateway, type GatewayOptions, type RunningGateway } from "@hv/gateway";
import { start as startUsers } from "@hv/users";
import {
  bearerAuthenticator,
  closeRedis,
  createAccessTokenIssuer,
  createAccessTokenVerifier,
  createRedis,
  createLogger,
  ErrorCode,
  generateSigningKeyJwk,
  JWKS_PATH,
  loadGatewayConfig,
  loadUsersConfig,
  SessionRevocations,
  type AccessTokenIssuer,
  type RunningSubgraph,
  type Viewer,
} from "@hv/kit";
import { execute, GraphQLError, parse } from "graphql";
import { createClient, type Client } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import WebSocket, { WebSocketServer } from "ws";
import { capturingLogger, type LogLine } from "../../support/log-capture";
import { testEnv } from "../../support/system";
import type { TestDatabases } from "../../support/seed";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { handled } from "../../support/handled";

/**
 * A small subgraph that only exists in these tests: it owns the same subscription fields as the
 * Chat subgraph's contract (myChatEvents, conversationEvents) and lets a test publish events, so
 * the gateway's subscription machinery is tested on its own. It is a real graphql-ws server
 * (graphql-ws's own useServer) with a real federation schema (@apollo/subgraph) and it
 * authenticates every operation from `payload.extensions.authorization` with the real verifier.
 */
export const TEST_CHAT_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  type User @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type Message {
    id: ID!
    seq: Int!
    text: String!
    clientMessageId: String!
    createdAt: String!
    sender: User!
    replyTo: Message
  }

  type ChatEvent {
    kind: String!
    conversationId: ID!
    seq: Int!
    message: Message
  }

  type Query {
    chatTestPing: Boolean
  }

  type Subscription {
    myChatEvents: ChatEvent!
    conversationEvents(conversationId: ID!): ChatEvent!
  }
`;

/** A message as the fake Chat sends it; `replyTo` is the same shape without a reply of its own. */
interface TestMessage {
  id: string;
  seq: number;
  text: string;
  clientMessageId: string;
  createdAt: string;
  sender: { id: string };
}

export interface TestChatEvent {
  kind: string;
  conversationId: string;
  seq: number;
  message: (TestMessage & { replyTo?: TestMessage | null }) | null;
}

interface Listener {
  userId: string;
  conversationId: string | null;
  push(event: TestChatEvent): void;
  complete(): void;
}

export interface TestChat {
  url: string;
  /** Subscribe messages received, with the user each was authenticated as. */
  subscribes: Array<{ userId: string | null; conversationId: string | null }>;
  /** WebSocket connections opened to this subgraph so far. */
  connectionsOpened(): number;
  openConnections(): number;
  activeSubscriptions(): number;
  /** Delivers an event to every subscription of `userId` (myChatEvents) and of the conversation. */
  publish(userIds: string[], event: TestChatEvent): void;
  /** Ends every running subscription with `complete` (as a subgraph shutting its streams down would). */
  completeAll(): void;
  /** Kills the server: sockets are destroyed without a close handshake, as when a process dies. */
  kill(): Promise<void>;
}

class EventQueue {
  private readonly queue: TestChatEvent[] = [];
  private waiting: ((r: IteratorResult<unknown>) => void) | undefined;
  private done = false;
  constructor(private readonly onReturn: () => void) {}
  push(event: TestChatEvent) {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ done: false, value: { __event: event } });
    } else this.queue.push(event);
  }
  next(): Promise<IteratorResult<unknown>> {
    const event = this.queue.shift();
    if (event) return Promise.resolve({ done: false, value: { __event: event } });
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => (this.waiting = resolve));
  }
  return(): Promise<IteratorResult<unknown>> {
    this.done = true;
    this.onReturn();
    this.waiting?.({ done: true, value: undefined });
    return Promise.resolve({ done: true, value: undefined });
  }
  [Symbol.asyncIterator]() {
    return this;
  }
}

export async function startTestChat(options: {
  jwksUrl: string;
  issuer: string;
  audience: string;
  port?: number;
}): Promise<TestChat> {
  const redis = createRedis(
    "redis://127.0.0.1:6379",
    createLogger({ service: "test-chat", level: "silent" }),
  );
  const authenticate = bearerAuthenticator(
    createAccessTokenVerifier({
      jwks: new URL(options.jwksUrl),
      issuer: options.issuer,
      audience: options.audience,
      revocations: new SessionRevocations(redis),
    }),
  );
  const listeners = new Set<Listener>();
  const subscribes: TestChat["subscribes"] = [];
  let opened = 0;
  const subscription = (conversation: boolean) => ({
    subscribe: (_: unknown, args: { conversationId?: string }, context: { viewer: Viewer | null }) => {
      if (!context.viewer)
        throw new GraphQLError("Sign in first", { extensions: { code: ErrorCode.UNAUTHENTICATED } });
      const conversationId = conversation ? (args.conversationId ?? null) : null;
      if (conversationId === "not-a-member") {
        throw new GraphQLError("You are not a member of this conversation", {
          extensions: { code: ErrorCode.FORBIDDEN },
        });
      }
      const listener: Listener = {
        userId: context.viewer.userId,
        conversationId,
        push: () => undefined,
        complete: () => undefined,
      };
      const queue = new EventQueue(() => listeners.delete(listener));
      listener.push = (event) => queue.push(event);
      listener.complete = () => void queue.return();
      listeners.add(listener);
      return queue;
    },
    resolve: (payload: { __event: TestChatEvent }) => payload.__event,
  });
  const schema = buildSubgraphSchema([
    {
      typeDefs: parse(TEST_CHAT_SDL),
      resolvers: {
        Query: { chatTestPing: () => true },
        Subscription: { myChatEvents: subscription(false), conversationEvents: subscription(true) },
      } as never,
    },
  ]);
  const httpServer = http.createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const wss = new WebSocketServer({ server: httpServer, path: "/graphql" });
  wss.on("connection", () => (opened += 1));
  useServer(
    {
      schema,
      context: async (_ctx, _id, payload) => {
        const authorization = payload.extensions?.authorization;
        const viewer =
          typeof authorization === "string" ? await authenticate(authorization).catch(() => null) : null;
        return { viewer };
      },
      onSubscribe: async (_ctx, _id, payload) => {
        const authorization = payload.extensions?.authorization;
        let userId: string | null = null;
        if (typeof authorization === "string") {
          try {
            userId = (await authenticate(authorization))?.userId ?? null;
          } catch (error) {
            if (error instanceof GraphQLError) return [error];
            throw error;
          }
        }
        const variables = (payload.variables ?? {}) as { conversationId?: string; id?: string };
        subscribes.push({ userId, conversationId: variables.conversationId ?? variables.id ?? null });
        return undefined;
      },
    },
    wss,
    0,
  );
  await new Promise<void>((resolve) => httpServer.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    subscribes,
    connectionsOpened: () => opened,
    openConnections: () => wss.clients.size,
    activeSubscriptions: () => listeners.size,
    publish(userIds, event) {
      for (const listener of [...listeners]) {
        const forConversation =
          listener.conversationId !== null && listener.conversationId === event.conversationId;
        const forUser = listener.conversationId === null && userIds.includes(listener.userId);
        if (forConversation || forUser) listener.push(event);
      }
    },
    completeAll() {
      for (const listener of [...listeners]) listener.complete();
    },
    async kill() {
      for (const client of wss.clients) client.terminate();
      listeners.clear();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeAllConnections();
      await closeRedis(redis);
    },
  };
}

/** A GraphQL request that reached Users through the proxy: its body and headers as sent. */
export interface ProxiedRequest {
  body: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * Lets a test hold or slow down requests to Users: resolves when the request may go on, or with a
 * GraphQL body to answer instead of Users (status 200).
 */
export type ProxyGate = (body: string) => Promise<void | Record<string, unknown>>;

/**
 * A second test subgraph (in the supergraph under the name `discovery`) that adds one field to
 * User whose value differs for every viewer: `seenBy`, the id of whoever asks (null when
 * anonymous). It authenticates each request's Authorization header with the real verifier.
 */
export const VIEWER_ECHO_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  type User @key(fields: "id") {
    id: ID!
    seenBy: ID
  }
`;

async function startViewerEcho(options: {
  jwksUrl: string;
  issuer: string;
  audience: string;
}): Promise<{ url: string; close(): Promise<void> }> {
  const redis = createRedis(
    "redis://127.0.0.1:6379",
    createLogger({ service: "test-viewer-echo", level: "silent" }),
  );
  const authenticate = bearerAuthenticator(
    createAccessTokenVerifier({
      jwks: new URL(options.jwksUrl),
      issuer: options.issuer,
      audience: options.audience,
      revocations: new SessionRevocations(redis),
    }),
  );
  const schema = buildSubgraphSchema([
    {
      typeDefs: parse(VIEWER_ECHO_SDL),
      resolvers: {
        User: {
          __resolveReference: (reference: { id: string }) => reference,
          seenBy: (_: unknown, __: unknown, context: { viewer: Viewer | null }) =>
            context.viewer?.userId ?? null,
        },
      } as never,
    },
  ]);
  const server = http.createServer(
    handled(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (req.method !== "POST") {
        res.statusCode = 404;
        res.end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        query: string;
        variables?: Record<string, unknown>;
        operationName?: string;
      };
      const header = req.headers.authorization;
      const viewer = typeof header === "string" ? await authenticate(header).catch(() => null) : null;
      const result = await execute({
        schema,
        document: parse(body.query),
        variableValues: body.variables ?? {},
        operationName: body.operationName ?? null,
        contextValue: { viewer },
      });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(result));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeRedis(redis);
    },
  };
}

/** A reverse proxy in front of Users that records the GraphQL requests reaching it. */
export async function countingProxy(target: string): Promise<{
  url: string;
  requests: string[];
  received: ProxiedRequest[];
  gate: { current: ProxyGate | undefined };
  close(): Promise<void>;
}> {
  const requests: string[] = [];
  const received: ProxiedRequest[] = [];
  const gate: { current: ProxyGate | undefined } = { current: undefined };
  const server = http.createServer(
    handled(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString("utf8");
      if (req.method === "POST") {
        requests.push(body);
        received.push({ body, headers: req.headers });
        const instead = gate.current ? await gate.current(body) : undefined;
        if (instead) {
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify(instead));
          return;
        }
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !["host", "content-length", "connection"].includes(name))
          headers[name] = value;
      }
      const response = await fetch(new URL(req.url ?? "/", target), {
        method: req.method ?? "GET",
        headers,
        ...(req.method === "POST" ? { body } : {}),
      });
      res.statusCode = response.status;
      response.headers.forEach((value, name) => {
        if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(name))
          res.setHeader(name, value);
      });
      res.end(Buffer.from(await response.arrayBuffer()));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    requests,
    received,
    gate,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The supergraph of the real Users subgraph and the test chat subgraph, composed in-process. */
export function testSupergraph(): string {
  const usersSdl = readFileSync(
    path.join(__dirname, "..", "..", "..", "subgraphs", "users", "src", "schema.graphql"),
    "utf8",
  );
  const result = composeServices([
    { name: "users", url: "http://localhost:4001/graphql", typeDefs: parse(usersSdl) },
    { name: "chat", url: "http://localhost:4003/graphql", typeDefs: parse(TEST_CHAT_SDL) },
    { name: "discovery", url: "http://localhost:4002/graphql", typeDefs: parse(VIEWER_ECHO_SDL) },
  ]);
  if (result.errors) throw new Error(`composition failed: ${result.errors.map((e) => e.message).join("; ")}`);
  return result.supergraphSdl;
}

export interface Harness {
  gateway: RunningGateway;
  gatewayUrl: string;
  wsUrl: string;
  users: RunningSubgraph;
  chat: TestChat;
  /** GraphQL requests that reached Users (through the counting proxy), bodies as sent. */
  usersRequests: string[];
  /** The same requests with their headers. */
  usersReceived: ProxiedRequest[];
  /** Set to hold or delay requests to Users (undefined: pass straight through). */
  usersGate: { current: ProxyGate | undefined };
  gatewayLogs: LogLine[];
  client: UsersClient;
  accessTokens: AccessTokenIssuer;
  /** Issues tokens that expire after `ttlSeconds` (from `clock`'s now), with the same keys as Users. */
  shortLivedTokens(ttlSeconds: number, clock?: () => Date): AccessTokenIssuer;
  restartChat(): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(gatewayOptions: GatewayOptions = {}): Promise<Harness> {
  const env = testEnv({
    AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("gateway-subscriptions")]),
  });
  const usersConfig = loadUsersConfig(env);
  const users = await startUsers(usersConfig, capturingLogger("users").logger);
  const jwksUrl = users.url.replace(/\/graphql$/, JWKS_PATH);
  const proxy = await countingProxy(users.url);
  const chatOptions = { jwksUrl, issuer: usersConfig.auth.issuer, audience: usersConfig.auth.audience };
  let chat = await startTestChat(chatOptions);
  const viewerEcho = await startViewerEcho(chatOptions);
  const chatPort = Number(new URL(chat.url).port);
  const gatewayLog = capturingLogger("gateway");
  const gateway = await startGateway(
    loadGatewayConfig({
      ...env,
      AUTH_JWKS_URL: jwksUrl,
      USERS_URL: proxy.url,
      CHAT_URL: chat.url,
      DISCOVERY_URL: viewerEcho.url,
    }),
    gatewayLog.logger,
    { supergraphSdl: testSupergraph(), ...gatewayOptions },
  );
  const issuer = (ttlSeconds: number, clock?: () => Date) =>
    createAccessTokenIssuer({
      keys: usersConfig.accessTokens.signingKeys,
      issuer: usersConfig.auth.issuer,
      audience: usersConfig.auth.audience,
      ttlSeconds,
      ...(clock ? { clock } : {}),
    });
  const harness: Harness = {
    gateway,
    gatewayUrl: gateway.url,
    wsUrl: gateway.url.replace(/^http/, "ws"),
    users,
    get chat() {
      return chat;
    },
    usersRequests: proxy.requests,
    usersReceived: proxy.received,
    usersGate: proxy.gate,
    gatewayLogs: gatewayLog.lines,
    client: new UsersClient(gateway.url),
    accessTokens: issuer(usersConfig.accessTokens.ttlSeconds),
    shortLivedTokens: (ttlSeconds, clock) => issuer(ttlSeconds, clock),
    async restartChat() {
      chat = await startTestChat({ ...chatOptions, port: chatPort });
    },
    async stop() {
      await gateway.stop();
      await chat.kill().catch(() => undefined);
      await viewerEcho.close();
      await proxy.close();
      await users.stop();
    },
  };
  return harness;
}

/** A phone's graphql-ws client on the gateway; records how its socket closed. */
export interface Phone {
  client: Client;
  closes: Array<{ code: number; reason: string }>;
  /** Resolves with the close event of the socket. */
  closed: Promise<{ code: number; reason: string }>;
  dispose(): Promise<void>;
}

export function phone(wsUrl: string, connectionParams: Record<string, unknown> | undefined): Phone {
  const closes: Phone["closes"] = [];
  let onClose: (event: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClose = resolve));
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    ...(connectionParams ? { connectionParams } : {}),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: unknown };
        const closeEvent = { code, reason: String(reason) };
        closes.push(closeEvent);
        onClose(closeEvent);
      },
    },
  });
  return { client, closes, closed, dispose: () => Promise.resolve(client.dispose()) };
}

/** A subscription's results, pulled one by one (bounded waits: the test fails rather than hang). */
export class Subscription<T = Record<string, unknown>> {
  readonly results: Array<{
    data?: T | null;
    errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  }> = [];
  error:
    | Array<{ message: string; extensions?: Record<string, unknown> }>
    | { code: number; reason: string }
    | undefined;
  completed = false;
  private wake: () => void = () => undefined;
  readonly dispose: () => void;

  constructor(
    client: Client,
    query: string,
    variables: Record<string, unknown> = {},
    operationName?: string,
  ) {
    this.dispose = client.subscribe<T>(
      { query, variables, ...(operationName ? { operationName } : {}) },
      {
        next: (value) => {
          this.results.push(value as Subscription<T>["results"][number]);
          this.wake();
        },
        error: (error) => {
          this.error = error as Subscription<T>["error"];
          this.wake();
        },
        complete: () => {
          this.completed = true;
          this.wake();
        },
      },
    );
  }

  get ended(): boolean {
    return this.error !== undefined || this.completed;
  }

  /** Waits until `predicate` holds, or throws after `attempts` wake-ups/ticks of 20 ms. */
  async until(predicate: () => boolean, what: string, attempts = 500): Promise<void> {
    for (let i = 0; i < attempts; i += 1) {
      if (predicate()) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    throw new Error(
      `gave up waiting for ${what}; results so far: ${JSON.stringify(this.results)}, error: ${JSON.stringify(this.error)}`,
    );
  }

  private consumed = 0;

  /** The next result not returned yet (waiting for it if needed). */
  async nextResult(count = this.consumed + 1) {
    this.consumed = Math.max(this.consumed, count);
    await this.until(() => this.results.length >= count || this.ended, `result #${count}`);
    const result = this.results[count - 1];
    if (!result)
      throw new Error(
        `the subscription ended before result #${count}: ${JSON.stringify(this.error ?? "completed")}`,
      );
    return result;
  }

  async ending() {
    await this.until(() => this.ended, "the subscription to end");
    return this.error;
  }
}

/** Waits (bounded) until `predicate` holds. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  attempts = 500,
): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * A group conversation made through `client` (the gateway): created by `owner` once Chat knows
 * every member (from Users' user.profile_changed), each member invited and accepting. Its id.
 */
export async function createGroup(
  client: UsersClient,
  dbs: TestDatabases,
  owner: SignedIn,
  members: SignedIn[],
  title: string,
): Promise<string> {
  const ids = [owner, ...members].map((m) => m.userId);
  await eventually(
    async () => (await dbs.chat.person.count({ where: { userId: { in: ids } } })) === ids.length,
    "Chat to know every member",
  );
  const created = await client.request<{ createGroupConversation: { id: string } }>(
    `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id } }`,
    { input: { title, memberIds: members.map((m) => m.userId) } },
    owner.accessToken,
  );
  const id = created.body.data?.createGroupConversation.id;
  if (!id) throw new Error(`createGroupConversation failed: ${JSON.stringify(created.body.errors)}`);
  for (const member of members) {
    const invitations = await client.request<{
      myInvitations: { edges: Array<{ node: { id: string; conversationId: string } }> };
    }>(`query { myInvitations(first: 50) { edges { node { id conversationId } } } }`, {}, member.accessToken);
    const invitation = invitations.body.data?.myInvitations.edges.find(
      (edge) => edge.node.conversationId === id,
    )?.node.id;
    const accepted = invitation
      ? await client.request(
          `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id } }`,
          { i: invitation },
          member.accessToken,
        )
      : null;
    if (!accepted?.body.data)
      throw new Error(
        `acceptInvitation failed: ${JSON.stringify(accepted?.body.errors ?? invitations.body.errors)}`,
      );
  }
  return id;
}

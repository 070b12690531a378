import http from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { composeServices } from "@apollo/composition";
import { start as startGateway, type GatewayOptions, type RunningGateway } from "@hv/gateway";
import { loadGatewayConfig } from "@hv/kit";
import { buildSchema, graphql, parse } from "graphql";
import { capturingLogger, type LogLine } from "../../support/log-capture";
import { testEnv } from "../../support/system";
import { handled } from "../../support/handled";

/**
 * A small subgraph that exists only in these tests (a plain graphql-js schema over node:http): it
 * has a recursive type for depth and cost, a field that answers slowly, one that fails with an
 * internal message, and root mutations named like the app's sensitive ones, so the gateway's edge
 * protection is tested on its own, through the real gateway. It records every request it gets:
 * what the edge refuses never reaches it.
 */
export const FAKE_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  type Thing {
    id: ID!
    name: String
    child: Thing
  }

  type Query {
    thing: Thing
    slowPing: Boolean
    fail: Boolean
    echo(text: String): String
  }

  type Mutation {
    logIn(email: String): Boolean
    signUp(email: String): Boolean
    like(userId: ID): Boolean
    superLike(userId: ID): Boolean
    pass(userId: ID): Boolean
    sendMessage(text: String): Boolean
    createUpload(kind: String): Boolean
  }
`;

export interface FakeSubgraph {
  url: string;
  /** Bodies of the GraphQL requests it received. */
  requests: Array<{ query: string }>;
  close(): Promise<void>;
}

export async function startFakeSubgraph(options: { slowMs?: number } = {}): Promise<FakeSubgraph> {
  const schema = buildSchema(FAKE_SDL.replace(/^\s*extend schema.*$/m, ""));
  const thing = (depth: number): Record<string, unknown> => ({
    id: `t${depth}`,
    name: `thing ${depth}`,
    child: depth < 50 ? () => thing(depth + 1) : null,
  });
  const ok = () => true;
  const rootValue = {
    thing: () => thing(0),
    slowPing: () => new Promise((resolve) => setTimeout(() => resolve(true), options.slowMs ?? 3_000)),
    fail: () => {
      throw new Error("connect ECONNREFUSED 10.1.2.3:5432 (password=hunter2)");
    },
    echo: ({ text }: { text?: string }) => text ?? null,
    logIn: ok,
    signUp: ok,
    like: ok,
    superLike: ok,
    pass: ok,
    sendMessage: ok,
    createUpload: ok,
  };
  const requests: FakeSubgraph["requests"] = [];
  const server = http.createServer(
    handled(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as {
        query?: string;
        variables?: Record<string, unknown>;
      };
      requests.push({ query: body.query ?? "" });
      const result = await graphql({
        schema,
        source: body.query ?? "",
        rootValue,
        variableValues: body.variables ?? {},
      });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(result));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function fakeSupergraph(url: string): string {
  const result = composeServices([{ name: "media", url, typeDefs: parse(FAKE_SDL) }]);
  if (result.errors) throw new Error(`composition failed: ${result.errors.map((e) => e.message).join("; ")}`);
  return result.supergraphSdl;
}

/** Budgets far out of the way, for tests about something else. */
export const LOOSE_BUDGETS: Record<string, string> = {
  GATEWAY_RATE_LIMIT_IP: "100000/1m",
  GATEWAY_RATE_LIMIT_USER: "100000/1m",
  GATEWAY_RATE_LIMIT_LOGIN: "100000/1m",
  GATEWAY_RATE_LIMIT_SIGNUP: "100000/1m",
  GATEWAY_RATE_LIMIT_SWIPE: "100000/1m",
  GATEWAY_RATE_LIMIT_SEND_MESSAGE: "100000/1m",
  GATEWAY_RATE_LIMIT_CREATE_UPLOAD: "100000/1m",
  GATEWAY_RATE_LIMIT_SUBSCRIBE: "100000/1m",
};

/**
 * The production defaults of the query limits (testEnv loosens some for other suites): an empty
 * value counts as unset.
 */
export const DEFAULT_LIMITS: Record<string, string> = {
  GATEWAY_MAX_DEPTH: "",
  GATEWAY_MAX_ALIASES: "",
  GATEWAY_MAX_DIRECTIVES: "",
  GATEWAY_MAX_TOKENS: "",
  GATEWAY_MAX_COST: "",
};

export interface LightGateway {
  gateway: RunningGateway;
  url: string;
  wsUrl: string;
  subgraph: FakeSubgraph;
  /** Redis prefix of this gateway's blocklist, budgets and persisted queries (unique per start). */
  keyPrefix: string;
  logs: LogLine[];
  stop(): Promise<void>;
}

/** The real gateway on the fake subgraph, with its own Redis key prefix. */
export async function startLightGateway(
  env: Record<string, string> = {},
  options: GatewayOptions & { subgraph?: FakeSubgraph; keyPrefix?: string } = {},
): Promise<LightGateway> {
  const subgraph = options.subgraph ?? (await startFakeSubgraph());
  const keyPrefix = options.keyPrefix ?? `hvtest:protection:${randomUUID()}`;
  const log = capturingLogger("gateway");
  const { subgraph: _s, keyPrefix: _k, ...gatewayOptions } = options;
  const gateway = await startGateway(
    loadGatewayConfig(
      testEnv({
        GATEWAY_METRICS_PORT: "0",
        ...LOOSE_BUDGETS,
        ...DEFAULT_LIMITS,
        MEDIA_URL: subgraph.url,
        ...env,
      }),
    ),
    log.logger,
    { supergraphSdl: fakeSupergraph(subgraph.url), protectionKeyPrefix: keyPrefix, ...gatewayOptions },
  );
  return {
    gateway,
    url: gateway.url,
    wsUrl: gateway.url.replace(/^http/, "ws"),
    subgraph,
    keyPrefix,
    logs: log.lines,
    async stop() {
      await gateway.stop();
      if (!options.subgraph) await subgraph.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  };
}

/** A random address in TEST-NET-2 / the IPv6 documentation range, sent as X-Forwarded-For (the gateway trusts loopback). */
export function randomIpv4(): string {
  return `198.51.100.${1 + ((randomBytes(1)[0] ?? 0) % 254)}`;
}
export function randomIpv6(): string {
  const groups = randomBytes(12).toString("hex").match(/.{4}/g) ?? [];
  return `2001:db8:${groups.join(":")}`;
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Reply["body"];
  try {
    parsed = JSON.parse(text) as Reply["body"];
  } catch {
    parsed = { errors: [{ message: text }] };
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

export function codes(reply: Reply): Array<unknown> {
  return reply.body.errors?.map((error) => error.extensions?.code) ?? [];
}

/** Serves a JWKS and issues access tokens with its key, so the light gateway has signed-in callers. */
export async function startTokenAuthority(): Promise<{
  jwksUrl: string;
  token(userId?: string): Promise<string>;
  close(): Promise<void>;
}> {
  const { createAccessTokenIssuer, generateSigningKeyJwk } = await import("@hv/kit");
  const issuer = createAccessTokenIssuer({
    keys: [generateSigningKeyJwk("protection")],
    issuer: "haiyvee",
    audience: "haiyvee-api",
    ttlSeconds: 900,
  });
  const server = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(issuer.publicJwks()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    token: async (userId = randomUUID()) =>
      (await issuer.issue({ userId, sessionId: randomUUID(), role: "USER" })).token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

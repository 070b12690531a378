import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { SessionRevocations } from "@hv/kit";
import { buildManifest, sha256Hex } from "@hv/gateway/src/protection";
import {
  codes,
  post,
  randomIpv6,
  startFakeSubgraph,
  startLightGateway,
  startTokenAuthority,
  type LightGateway,
  type Reply,
} from "./support";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

type Errors = Array<{ message: string; extensions?: Record<string, unknown> }>;
/** What one operation over the socket came to: its `next` results then `complete`, or its `error`. */
type SocketReply =
  | { kind: "answered"; results: Array<Reply["body"]> }
  | { kind: "refused"; errors: Errors }
  | { kind: "closed" };

interface Socket {
  client: Client;
  /** The client's TCP port (once connected). */
  localPort(): number | undefined;
  closed: Promise<{ code: number; reason: string }>;
  dispose(): Promise<void>;
}

/** A graphql-ws connection from `ip` (X-Forwarded-For on the upgrade), signed in with `token` if given. */
function socketFrom(wsUrl: string, ip: string, token?: string): Socket {
  const opened: WebSocket[] = [];
  class FromAddress extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { "x-forwarded-for": ip } });
      opened.push(this);
    }
  }
  let onClose: (event: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClose = resolve));
  const client = createClient({
    url: wsUrl,
    webSocketImpl: FromAddress,
    ...(token ? { connectionParams: { authorization: `Bearer ${token}` } } : {}),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: unknown };
        onClose({ code, reason: String(reason) });
      },
    },
  });
  return {
    client,
    closed,
    localPort: () => (opened.at(-1) as unknown as { _socket?: net.Socket } | undefined)?._socket?.localPort,
    dispose: () => Promise.resolve(client.dispose()),
  };
}

function send(socket: Socket, payload: Record<string, unknown>): Promise<SocketReply> {
  return new Promise((resolve) => {
    const results: Array<Reply["body"]> = [];
    socket.client.subscribe({ query: "", ...payload } as { query: string }, {
      next: (value) => results.push(value as Reply["body"]),
      error: (error) =>
        resolve(Array.isArray(error) ? { kind: "refused", errors: error as Errors } : { kind: "closed" }),
      complete: () => resolve({ kind: "answered", results }),
    });
  });
}

/** The codes of a socket reply, as `codes` gives them for an HTTP reply. */
function socketCodes(reply: SocketReply): unknown[] {
  if (reply.kind === "refused") return reply.errors.map((error) => error.extensions?.code);
  if (reply.kind === "closed") return ["closed"];
  return reply.results.flatMap((result) => result.errors?.map((error) => error.extensions?.code) ?? []);
}

function claims(token: string): { sub: string; sid: string } {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as {
    sub: string;
    sid: string;
  };
}

describe("queries and mutations over the gateway's graphql-ws socket (real gateway, budgets in Redis)", () => {
  let g: LightGateway;
  let authority: Awaited<ReturnType<typeof startTokenAuthority>>;
  let redis: Redis;
  const sockets: Socket[] = [];
  const open = (ip: string, token?: string) => {
    const socket = socketFrom(g.wsUrl, ip, token);
    sockets.push(socket);
    return socket;
  };
  beforeAll(async () => {
    authority = await startTokenAuthority();
    g = await startLightGateway({
      AUTH_JWKS_URL: authority.jwksUrl,
      GATEWAY_RATE_LIMIT_USER: "8/1m",
      GATEWAY_RATE_LIMIT_SEND_MESSAGE: "3/1m",
    });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const socket of sockets) await socket.dispose();
    await g?.stop();
    await authority?.close();
    await redis?.quit();
  });

  it("should answer a query and a mutation with one next then complete, as HTTP answers them", async () => {
    const ip = randomIpv6();
    const token = await authority.token();
    const socket = open(ip, token);
    const before = g.subgraph.requests.length;
    const query = { query: "query Echo($t: String) { echo(text: $t) }", variables: { t: "hi" } };
    const overHttp = await post(g.url, query, { "x-forwarded-for": ip, authorization: `Bearer ${token}` });
    expect(await send(socket, query)).toEqual({ kind: "answered", results: [overHttp.body] });
    expect(await send(socket, { query: "mutation { like(userId: 1) }" })).toEqual({
      kind: "answered",
      results: [{ data: { like: true } }],
    });
    // Each reached the subgraph once.
    expect(g.subgraph.requests.length - before).toBe(3);
  });

  it("should write a query's next and complete to the socket in one write", async () => {
    const ip = randomIpv6();
    const socket = open(ip, await authority.token());
    const query = { query: "query Echo($t: String) { echo(text: $t) }", variables: { t: "once" } };
    const answered = { kind: "answered", results: [{ data: { echo: "once" } }] };
    expect(await send(socket, query)).toEqual(answered); // connected, the operation known
    const port = socket.localPort();
    expect(port).toBeDefined();
    // The gateway's writes to this client from here on (a corked socket's writes leave through _writev).
    const write = jest.spyOn(net.Socket.prototype, "_write");
    const writev = jest.spyOn(net.Socket.prototype, "_writev");
    try {
      expect(await send(socket, query)).toEqual(answered);
      const toClient = [...write.mock.contexts, ...writev.mock.contexts].filter(
        (tcp) => (tcp as net.Socket).remotePort === port,
      );
      expect(toClient.length).toBe(1);
    } finally {
      write.mockRestore();
      writev.mockRestore();
    }
  });

  it("should answer wrong and hostile input with the codes HTTP answers", async () => {
    const ip = randomIpv6();
    const socket = open(ip);
    const deep = `{ thing { ${"child { ".repeat(20)}id${" }".repeat(20)} } }`;
    const cases: Array<Record<string, unknown>> = [
      { query: "query ($t: String!) { echo(text: $t) }" },
      { query: "query ($t: String) { echo(text: $t) }", variables: { t: { not: "a string" } } },
      { query: "{ nope }" },
      { query: deep },
      { query: `{ ${"echo ".repeat(3_000)} }` },
      { query: "{ echo(text: 1" },
      { query: "{ fail }" },
    ];
    for (const payload of cases) {
      const overHttp = await post(g.url, payload, { "x-forwarded-for": ip });
      const overSocket = await send(socket, payload);
      expect({ payload, codes: socketCodes(overSocket) }).toEqual({ payload, codes: codes(overHttp) });
      expect(codes(overHttp)).not.toEqual([]);
      // A refusal (HTTP 4xx/5xx) is an `error` message; an answer (HTTP 200) is `next` then `complete`.
      expect({ payload, kind: overSocket.kind }).toEqual({
        payload,
        kind: overHttp.status === 200 ? "answered" : "refused",
      });
    }
  });

  it("should answer a document without the operation asked for as OPERATION_RESOLUTION_FAILURE, both ways", async () => {
    const ip = randomIpv6();
    const socket = open(ip);
    const query = `query A { echo(text: "a") } query B { echo(text: "b") }`;
    for (const payload of [{ query }, { query, operationName: "C" }]) {
      const overHttp = await post(g.url, payload, { "x-forwarded-for": ip });
      const overSocket = await send(socket, payload);
      expect({ status: overHttp.status, codes: codes(overHttp) }).toEqual({
        status: 400,
        codes: ["OPERATION_RESOLUTION_FAILURE"],
      });
      expect({ kind: overSocket.kind, codes: socketCodes(overSocket) }).toEqual({
        kind: "refused",
        codes: ["OPERATION_RESOLUTION_FAILURE"],
      });
    }
  });

  it("should spend one sendMessage budget whichever way the mutation goes", async () => {
    const token = await authority.token();
    const socket = open(randomIpv6(), token);
    const httpFrom = { "x-forwarded-for": randomIpv6(), authorization: `Bearer ${token}` };
    const sendMessage = { query: 'mutation { sendMessage(text: "hi") }' };
    expect((await post(g.url, sendMessage, httpFrom)).body).toEqual({ data: { sendMessage: true } });
    expect(await send(socket, sendMessage)).toEqual({
      kind: "answered",
      results: [{ data: { sendMessage: true } }],
    });
    expect((await post(g.url, sendMessage, httpFrom)).body).toEqual({ data: { sendMessage: true } });
    // Budget 3 per minute: spent by HTTP, socket, HTTP; over on both ways now.
    const overSocket = await send(socket, sendMessage);
    expect(overSocket.kind === "refused" && overSocket.errors[0]?.extensions).toEqual({
      code: "RATE_LIMITED",
      limit: "edge-send-message",
      retryAfterSeconds: expect.any(Number),
    });
    const overHttp = await post(g.url, sendMessage, httpFrom);
    expect({ status: overHttp.status, codes: codes(overHttp) }).toEqual({
      status: 429,
      codes: ["RATE_LIMITED"],
    });
  });

  it("should count socket operations against the user budget HTTP spends, refusing past it", async () => {
    const token = await authority.token();
    const socket = open(randomIpv6(), token);
    const echo = { query: '{ echo(text: "x") }' };
    // Budget 8 per minute: 4 over HTTP, 4 over the socket, then both refuse.
    for (let i = 0; i < 4; i += 1) {
      expect((await post(g.url, echo, { authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await send(socket, echo)).kind).toBe("answered");
    }
    const refused = await send(socket, echo);
    expect(refused.kind === "refused" && refused.errors[0]?.extensions).toEqual({
      code: "RATE_LIMITED",
      limit: "edge-user",
      retryAfterSeconds: expect.any(Number),
    });
    expect(codes(await post(g.url, echo, { authorization: `Bearer ${token}` }))).toEqual(["RATE_LIMITED"]);
  });

  it("should refuse a send on a connection whose token was revoked, and close it with 4403", async () => {
    const token = await authority.token();
    const socket = open(randomIpv6(), token);
    const like = { query: "mutation { like(userId: 2) }" };
    expect((await send(socket, like)).kind).toBe("answered");
    await new SessionRevocations(redis).revokeSession(claims(token).sid);
    const before = g.subgraph.requests.length;
    const refused = await send(socket, like);
    expect(refused.kind === "refused" && refused.errors[0]?.extensions).toEqual({
      code: "UNAUTHENTICATED",
      reason: "revoked",
    });
    expect(await socket.closed).toEqual({ code: 4403, reason: "Forbidden: revoked" });
    expect(g.subgraph.requests.length).toBe(before);
  });
});

describe("queries and mutations over the socket in safelist mode", () => {
  const ops = `
    query Echo($t: String) { echo(text: $t) }
    mutation Like($id: ID) { like(userId: $id) }
  `;
  let dir: string;
  let g: LightGateway;
  let like: { id: string; body: string };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "hv-safelist-ws-"));
    writeFileSync(path.join(dir, "app.graphql"), ops);
    const manifest = buildManifest(dir);
    const found = manifest.operations.find((o) => o.name === "Like");
    if (!found) throw new Error("no Like in the test manifest");
    like = found;
    g = await startLightGateway({ GATEWAY_OPERATIONS: "safelist" }, { safelistManifest: manifest });
  });
  afterAll(async () => {
    await g?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("should run a listed mutation by hash or text and refuse any other before a subgraph sees it", async () => {
    const socket = socketFrom(g.wsUrl, randomIpv6());
    try {
      const byHash = {
        extensions: { persistedQuery: { version: 1, sha256Hash: like.id } },
        variables: { id: "1" },
      };
      expect(await send(socket, byHash)).toEqual({ kind: "answered", results: [{ data: { like: true } }] });
      expect(await send(socket, { query: like.body, variables: { id: "2" } })).toEqual({
        kind: "answered",
        results: [{ data: { like: true } }],
      });
      const before = g.subgraph.requests.length;
      for (const payload of [
        { query: "mutation { like(userId: 3) }" },
        {
          query: "mutation { like(userId: 3) }",
          extensions: { persistedQuery: { version: 1, sha256Hash: like.id } },
        },
        { extensions: { persistedQuery: { version: 1, sha256Hash: sha256Hex("{ echo }") } } },
      ]) {
        const overSocket = await send(socket, payload);
        const overHttp = await post(g.url, payload, { "x-forwarded-for": randomIpv6() });
        expect({ payload, codes: socketCodes(overSocket), kind: overSocket.kind }).toEqual({
          payload,
          codes: codes(overHttp),
          kind: "refused",
        });
        expect(codes(overHttp)).toEqual(["PERSISTED_QUERY_NOT_ALLOWED"]);
      }
      expect(g.subgraph.requests.length).toBe(before);
    } finally {
      await socket.dispose();
    }
  });

  it("should refuse an operation past the gateway-wide cap with SERVICE_UNAVAILABLE, and run it again once one is answered", async () => {
    const slow = await startFakeSubgraph({ slowMs: 1_500 });
    const capped = await startLightGateway(
      {},
      { subgraph: slow, subscriptions: { maxSocketOperationsInFlight: 2 } },
    );
    const first = socketFrom(capped.wsUrl, randomIpv6());
    const second = socketFrom(capped.wsUrl, randomIpv6());
    try {
      const held = [send(first, { query: "{ slowPing }" }), send(first, { query: "{ slowPing }" })];
      while (capped.gateway.subscriptionStats().socketOperationsInFlight < 2) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const refused = await send(second, { query: '{ echo(text: "x") }' });
      expect(refused).toEqual({
        kind: "refused",
        errors: [
          expect.objectContaining({
            extensions: expect.objectContaining({ code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 5 }),
          }),
        ],
      });
      // HTTP is not counted, and the refused socket stays open.
      const overHttp = await post(
        capped.url,
        { query: '{ echo(text: "y") }' },
        { "x-forwarded-for": randomIpv6() },
      );
      expect(overHttp.body).toEqual({ data: { echo: "y" } });
      expect(await Promise.all(held)).toEqual([
        { kind: "answered", results: [{ data: { slowPing: true } }] },
        { kind: "answered", results: [{ data: { slowPing: true } }] },
      ]);
      expect(await send(second, { query: '{ echo(text: "z") }' })).toEqual({
        kind: "answered",
        results: [{ data: { echo: "z" } }],
      });
      expect(capped.gateway.subscriptionStats().socketOperationsInFlight).toBe(0);
    } finally {
      await first.dispose();
      await second.dispose();
      await capped.stop();
      await slow.close();
    }
  });
});

import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from "graphql";
import { createClient, type Client } from "graphql-ws";
import Redis from "ioredis";
import WebSocket from "ws";
import { createAccessTokenIssuer, createAccessTokenVerifier } from "../src/auth/access-tokens";
import { SessionRevocations } from "../src/auth/revocations";
import { generateSigningKeyJwk, publicSigningKeyJwk } from "../src/auth/signing-keys";
import type { Viewer } from "../src/auth/viewer";
import { createLogger } from "../src/logger";
import {
  sharedDocuments,
  startSubscriptionServer,
  streamUntil,
  type SubscriptionServer,
} from "../src/subscriptions";

const ISSUER = "haiyvee";
const AUDIENCE = "haiyvee-api";
const key = generateSigningKeyJwk("sub-test");

function issuer(ttlSeconds = 900, lagSeconds = 0) {
  return createAccessTokenIssuer({
    keys: [key],
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlSeconds,
    clock: () => new Date(Date.now() - lagSeconds * 1000),
  });
}
/** whoAmI: the viewer's id, once. ticks: 1, 2, 3, ... every `everyMs` until the client stops. */
function makeExecutableSchemaLike(): GraphQLSchema {
  const query = new GraphQLObjectType({
    name: "Query",
    fields: { ok: { type: GraphQLString, resolve: () => "ok" } },
  });
  const subscription = new GraphQLObjectType({
    name: "Subscription",
    fields: {
      whoAmI: {
        type: GraphQLString,
        subscribe: async function* (_root: unknown, _args: unknown, context: { viewer: Viewer | null }) {
          yield { whoAmI: context.viewer?.userId ?? null };
        },
      },
      ticks: {
        type: new GraphQLNonNull(GraphQLInt),
        args: { everyMs: { type: new GraphQLNonNull(GraphQLInt) } },
        subscribe: async function* (_root: unknown, args: { everyMs: number }) {
          for (let tick = 1; ; tick += 1) {
            await new Promise((resolve) => setTimeout(resolve, args.everyMs));
            yield { ticks: tick };
          }
        },
      },
    },
  });
  return new GraphQLSchema({ query, subscription });
}

const aViewer = (): Viewer => ({ userId: randomUUID(), sessionId: randomUUID(), role: "USER" });

interface Result {
  data?: { whoAmI?: string | null; ticks?: number } | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

describe("subgraph subscriptions over graphql-ws", () => {
  let redis: Redis;
  let httpServer: http.Server;
  let server: SubscriptionServer;
  let url: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    httpServer = http.createServer((_req, res) => res.writeHead(404).end());
    server = startSubscriptionServer({
      httpServer,
      schema: makeExecutableSchemaLike(),
      verifier: createAccessTokenVerifier({
        jwks: { keys: [publicSigningKeyJwk(key)] },
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations: new SessionRevocations(redis),
      }),
      logger: createLogger({ service: "test", level: "silent" }),
      isProduction: false,
      context: (base) => ({ viewer: base.viewer }),
      revalidateMs: 200,
    });
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}/graphql`;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
  });

  afterAll(async () => {
    await server.stop();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    await redis.quit();
  });

  /** A client that does not retry, reporting how its socket closed. */
  function client(connectionParams?: Record<string, unknown>) {
    let closeCode: number | undefined;
    let resolveClosed: (code: number) => void = () => undefined;
    const closed = new Promise<number>((resolve) => (resolveClosed = resolve));
    const instance = createClient({
      url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      ...(connectionParams ? { connectionParams } : {}),
      on: {
        closed: (event) => {
          closeCode = (event as { code: number }).code;
          resolveClosed(closeCode);
        },
      },
      onNonLazyError: () => undefined,
    });
    clients.push(instance);
    return { instance, closed, closeCode: () => closeCode };
  }

  /** Collects a subscription's results until it completes or errors. */
  function collect(instance: Client, query: string, extensions?: Record<string, unknown>) {
    const results: Result[] = [];
    const ended = new Promise<{ error?: unknown }>((resolve) => {
      instance.subscribe<Result["data"]>(
        { query, ...(extensions ? { extensions } : {}) },
        {
          next: (value) => results.push(value as Result),
          error: (error) => resolve({ error }),
          complete: () => resolve({}),
        },
      );
    });
    return { results, ended };
  }

  it("should give the operation the connection's viewer from connectionParams", async () => {
    const viewer = aViewer();
    const { token } = await issuer().issue(viewer);
    const { instance } = client({ authorization: `Bearer ${token}` });
    const { results, ended } = collect(instance, "subscription { whoAmI }");
    await ended;
    expect(results).toEqual([{ data: { whoAmI: viewer.userId } }]);
  });

  it("should run an operation without a token with no viewer", async () => {
    const { instance } = client();
    const { results, ended } = collect(instance, "subscription { whoAmI }");
    await ended;
    expect(results).toEqual([{ data: { whoAmI: null } }]);
  });

  it("should close the socket with 4403 for a refused connection token", async () => {
    const { token } = await createAccessTokenIssuer({
      keys: [generateSigningKeyJwk("stranger")],
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: 900,
    }).issue(aViewer());
    const forged = client({ authorization: `Bearer ${token}` });
    expect(await forged.closed).toBe(4403);
    const malformed = client({ authorization: "Basic abc" });
    expect(await malformed.closed).toBe(4403);
    const notAString = client({ authorization: { token } });
    expect(await notAString.closed).toBe(4403);
  });

  it("should close the socket with 4403 when the connection's token expires mid-stream", async () => {
    // Issued 1 s "ago" with a 5 s lifetime: it expires about 4 s from now (time enough, even on
    // a busy machine, to connect and receive ticks first).
    const { token } = await issuer(5, 1).issue(aViewer());
    const { instance, closed } = client({ authorization: `Bearer ${token}` });
    const { results } = collect(instance, "subscription { ticks(everyMs: 50) }");
    expect(await closed).toBe(4403);
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((result) => result.errors === undefined)).toBe(true);
  });

  it("should close the socket with 4403 once the connection's session is revoked", async () => {
    const viewer = aViewer();
    const { token } = await issuer().issue(viewer);
    const { instance, closed } = client({ authorization: `Bearer ${token}` });
    const { results } = collect(instance, "subscription { ticks(everyMs: 50) }");
    while (results.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await new SessionRevocations(redis).revokeSession(viewer.sessionId);
    expect(await closed).toBe(4403);
  });

  it("should let an operation's own token win over the connection's", async () => {
    const connectionViewer = aViewer();
    const operationViewer = aViewer();
    const { token: connectionToken } = await issuer().issue(connectionViewer);
    const { token: operationToken } = await issuer().issue(operationViewer);
    const { instance } = client({ authorization: `Bearer ${connectionToken}` });
    const own = collect(instance, "subscription { whoAmI }", { authorization: `Bearer ${operationToken}` });
    const inherited = collect(instance, "subscription { whoAmI }");
    await Promise.all([own.ended, inherited.ended]);
    expect(own.results).toEqual([{ data: { whoAmI: operationViewer.userId } }]);
    expect(inherited.results).toEqual([{ data: { whoAmI: connectionViewer.userId } }]);
  });

  it("should refuse an invalid operation every time it is sent, and run valid ones sharing a text", async () => {
    const { instance } = client();
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const invalid = collect(instance, "subscription { nope }");
      const outcome = await invalid.ended;
      expect((outcome.error as Array<{ message: string }>)[0]?.message).toMatch(/Cannot query field "nope"/);
    }
    const runs = [collect(instance, "subscription { whoAmI }"), collect(instance, "subscription { whoAmI }")];
    await Promise.all(runs.map((run) => run.ended));
    for (const run of runs) expect(run.results).toEqual([{ data: { whoAmI: null } }]);
  });

  it("should refuse an operation with a bad token with UNAUTHENTICATED and keep the connection", async () => {
    const { instance, closeCode } = client();
    const bad = collect(instance, "subscription { whoAmI }", { authorization: "Bearer not.a.token" });
    const outcome = await bad.ended;
    expect((outcome.error as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code).toBe(
      "UNAUTHENTICATED",
    );
    const good = collect(instance, "subscription { whoAmI }");
    await good.ended;
    expect(good.results).toEqual([{ data: { whoAmI: null } }]);
    expect(closeCode()).toBeUndefined();
  });

  it("should end just the operation with UNAUTHENTICATED when its own token expires", async () => {
    const { token } = await issuer(2, 1).issue(aViewer());
    const { instance, closeCode } = client();
    const expiring = collect(instance, "subscription { ticks(everyMs: 50) }", {
      authorization: `Bearer ${token}`,
    });
    const anonymous = collect(instance, "subscription { ticks(everyMs: 50) }");
    await expiring.ended;
    const last = expiring.results.at(-1);
    expect(last?.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect(last?.errors?.[0]?.extensions?.reason).toBe("expired");
    // The other operation on the same connection goes on.
    const before = anonymous.results.length;
    while (anonymous.results.length < before + 3) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closeCode()).toBeUndefined();
  });

  it("should close every socket with 1001 on stop", async () => {
    const http2 = http.createServer();
    const second = startSubscriptionServer({
      httpServer: http2,
      schema: makeExecutableSchemaLike(),
      verifier: {
        verify: () => Promise.reject(new Error("unused")),
        inspect: () => Promise.reject(new Error("unused")),
      },
      logger: createLogger({ service: "test", level: "silent" }),
      isProduction: false,
      context: (base) => ({ viewer: base.viewer }),
    });
    await new Promise<void>((resolve) => http2.listen(0, "127.0.0.1", resolve));
    const socket = new WebSocket(
      `ws://127.0.0.1:${(http2.address() as AddressInfo).port}/graphql`,
      "graphql-transport-ws",
    );
    await new Promise((resolve) => socket.once("open", resolve));
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    expect(second.connections()).toBe(1);
    await second.stop();
    expect(await closed).toBe(1001);
    await new Promise<void>((resolve) => http2.close(() => resolve()));
  });
});

describe("streamUntil", () => {
  it("should end a pending stream at once when returned", async () => {
    let returned = false;
    const never: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<number>>(() => undefined),
        return: async () => {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const stream = streamUntil(never, Date.now() + 60_000, () => -1);
    const pending = stream.next();
    await stream.return();
    expect(returned).toBe(true);
    void pending;
  });

  it("should pass every value in order, then end with the expired result while a next() waits, and stay ended", async () => {
    let sent = 0;
    let returned = false;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        // 500 values at once, then nothing: the 501st next() waits until the token runs out.
        next: () =>
          sent < 500
            ? Promise.resolve({ done: false, value: sent++ })
            : new Promise<IteratorResult<number>>(() => undefined),
        return: async () => {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const stream = streamUntil(source, Date.now() + 300, () => -1);
    const values: number[] = [];
    for (let i = 0; i < 500; i += 1) values.push((await stream.next()).value as number);
    expect(values).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(await stream.next()).toEqual({ done: false, value: -1 });
    expect(returned).toBe(true);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });
});

describe("sharedDocuments", () => {
  const schema = makeExecutableSchemaLike();
  const other = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({ name: "Subscription", fields: { other: { type: GraphQLString } } }),
  });

  it("should give one document per query text, and forget the oldest text past its bound", () => {
    const documents = sharedDocuments(schema);
    const first = documents.parse("subscription { whoAmI }");
    expect(documents.parse("subscription { whoAmI }")).toBe(first);
    expect(documents.parse("subscription  { whoAmI }")).not.toBe(first);
    for (let index = 0; index < 200; index += 1) documents.parse(`subscription { ticks(everyMs: ${index}) }`);
    const again = documents.parse("subscription { whoAmI }");
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it("should remember only valid documents, and only for its own schema", () => {
    const documents = sharedDocuments(schema);
    const invalid = documents.parse("subscription { nope }");
    expect(documents.validate(schema, invalid)).toHaveLength(1);
    expect(documents.validate(schema, invalid)).toHaveLength(1);
    const valid = documents.parse("subscription { whoAmI }");
    expect(documents.validate(schema, valid)).toEqual([]);
    expect(documents.validate(schema, valid)).toEqual([]);
    expect(documents.validate(other, valid).length).toBeGreaterThan(0);
  });

  it("should throw the parser's syntax error and keep nothing for it", () => {
    const documents = sharedDocuments(schema);
    expect(() => documents.parse("subscription {")).toThrow(/Syntax Error/);
    expect(() => documents.parse("subscription {")).toThrow(/Syntax Error/);
  });
});

import http from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from "graphql";
import { CloseCode, createClient, type Client } from "graphql-ws";
import WebSocket, { WebSocketServer } from "ws";
import type net from "node:net";
import {
  SEND_QUEUE_LIMIT,
  serveGraphqlWs,
  SHARED_TEXT_MAX_LENGTH,
  SHARED_TEXTS_SIZE,
  SharedTexts,
} from "./graphql-ws-server";

describe("SharedTexts", () => {
  it("should keep one copy of each text and hand back an equal text", () => {
    const texts = new SharedTexts();
    const query = "subscription { myChatEvents { kind } }";
    expect(texts.share(query)).toBe(query);
    expect(texts.share(`subscription { ${"myChatEvents { kind } }"}`)).toBe(query);
    expect(texts.size).toBe(1);
  });

  it("should forget the oldest text past its size", () => {
    const texts = new SharedTexts();
    for (let index = 0; index <= SHARED_TEXTS_SIZE; index += 1) texts.share(`query ${index}`);
    expect(texts.size).toBe(SHARED_TEXTS_SIZE);
    expect(texts.has("query 0")).toBe(false);
    expect(texts.has("query 1")).toBe(true);
    expect(texts.has(`query ${SHARED_TEXTS_SIZE}`)).toBe(true);
  });

  it("should not keep a text longer than its limit", () => {
    const texts = new SharedTexts();
    const long = "x".repeat(SHARED_TEXT_MAX_LENGTH + 1);
    expect(texts.share(long)).toBe(long);
    expect(texts.size).toBe(0);
  });
});

describe("serveGraphqlWs", () => {
  let server: http.Server;
  let wss: WebSocketServer;
  let stop: () => Promise<void>;
  let url: string;
  const internalErrors: unknown[] = [];
  const closedCodes: number[] = [];
  const serverSockets: WebSocket[] = [];
  const clients: Client[] = [];
  /** `flood`'s results pulled so far, and the most its socket held unwritten at a pull. */
  const flood = { pulled: 0, mostQueued: 0 };
  const FLOOD_TEXT = "x".repeat(64 * 1024);
  const FLOOD_CAP = 1_000;
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: "Subscription",
      fields: {
        // 64 KiB results, one per turn, as fast as graphql-ws pulls them (at most FLOOD_CAP).
        flood: {
          type: GraphQLString,
          subscribe: async function* () {
            while (flood.pulled < FLOOD_CAP) {
              flood.mostQueued = Math.max(flood.mostQueued, serverSockets[0]?.bufferedAmount ?? 0);
              flood.pulled += 1;
              await new Promise((resolve) => setImmediate(resolve));
              yield { flood: FLOOD_TEXT };
            }
          },
        },
        greetings: {
          type: GraphQLString,
          // One event, then open until returned.
          subscribe: (): AsyncIterableIterator<unknown> => {
            let sent = false;
            let end: (result: IteratorResult<unknown>) => void = () => undefined;
            const ended = new Promise<IteratorResult<unknown>>((resolve) => (end = resolve));
            return {
              [Symbol.asyncIterator]() {
                return this;
              },
              next: async () => {
                if (sent) return ended;
                sent = true;
                return { value: { greetings: "hi" }, done: false };
              },
              return: async () => {
                end({ value: undefined, done: true });
                return { value: undefined, done: true };
              },
            };
          },
        },
      },
    }),
  });

  beforeEach(async () => {
    internalErrors.length = 0;
    closedCodes.length = 0;
    serverSockets.length = 0;
    server = http.createServer();
    wss = new WebSocketServer({ server });
    wss.on("connection", (socket: WebSocket) => serverSockets.push(socket));
    stop = serveGraphqlWs(
      wss,
      { schema, onClose: (_ctx, code) => void closedCodes.push(code ?? 0) },
      () => ({}),
      (error) => internalErrors.push(error),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    for (const client of clients) await client.dispose();
    clients.length = 0;
    await stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A subscribed graphql-ws client: its first event, and the code it was closed with. */
  const subscribed = async () => {
    let closedWith: (code: number) => void = () => undefined;
    const closed = new Promise<number>((resolve) => (closedWith = resolve));
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      on: { closed: (event) => closedWith((event as { code: number }).code) },
    });
    clients.push(client);
    const first = await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: "subscription { greetings }" },
        { next: resolve, error: reject, complete: () => undefined },
      );
    });
    return { first, closed };
  };

  it("should close only the socket that failed, and every time it fails", async () => {
    const failing = await subscribed();
    const other = await subscribed();
    expect(failing.first).toEqual({ data: { greetings: "hi" } });
    expect(serverSockets).toHaveLength(2);
    serverSockets[0]!.emit("error", new Error("first"));
    serverSockets[0]!.emit("error", new Error("second"));
    expect(await failing.closed).toBe(CloseCode.InternalServerError);
    expect(internalErrors.map((error) => (error as Error).message)).toEqual(["first", "second"]);
    expect(serverSockets[1]!.readyState).toBe(WebSocket.OPEN);
    expect(other.first).toEqual({ data: { greetings: "hi" } });
  });

  it("should stop pulling a subscription's results while its client does not read", async () => {
    flood.pulled = 0;
    flood.mostQueued = 0;
    const client = new WebSocket(url, "graphql-transport-ws");
    await new Promise((resolve) => client.once("open", resolve));
    const acked = new Promise((resolve) => client.once("message", resolve));
    client.send(JSON.stringify({ type: "connection_init" }));
    await acked;
    // The client reads nothing more: the kernel's buffers fill, then the server's queue.
    (client as unknown as { _socket: net.Socket })._socket.pause();
    client.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "subscription { flood }" } }));
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    while (flood.pulled < FLOOD_CAP && (serverSockets[0]?.bufferedAmount ?? 0) < SEND_QUEUE_LIMIT)
      await turn();
    const pulled = flood.pulled;
    for (let i = 0; i < 50; i += 1) await turn();
    expect(flood.pulled).toBeLessThan(FLOOD_CAP);
    expect(flood.pulled - pulled).toBeLessThanOrEqual(1);
    expect(flood.mostQueued).toBeLessThan(SEND_QUEUE_LIMIT + 2 * FLOOD_TEXT.length);
    client.terminate();
  });

  it("should tell graphql-ws of each socket's close once", async () => {
    const first = await subscribed();
    await subscribed();
    const serverClosed = new Promise<void>((resolve) => serverSockets[0]!.on("close", () => resolve()));
    serverSockets[0]!.close(4400, "bye");
    expect(await first.closed).toBe(4400);
    await serverClosed;
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(closedCodes).toEqual([4400]);
    expect(serverSockets[1]!.readyState).toBe(WebSocket.OPEN);
  });
});

describe("serveGraphqlWs's wait for connection_init", () => {
  const WAIT_MS = 100;
  let server: http.Server;
  let stop: () => Promise<void>;
  let url: string;

  beforeEach(async () => {
    server = http.createServer();
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    });
    stop = serveGraphqlWs(
      new WebSocketServer({ server }),
      { schema, connectionInitWaitTimeout: WAIT_MS },
      () => ({}),
      () => undefined,
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const open = async () => {
    const client = new WebSocket(url, "graphql-transport-ws");
    const closed = new Promise<number>((resolve) => client.once("close", (code: number) => resolve(code)));
    await new Promise((resolve) => client.once("open", resolve));
    return { client, closed };
  };

  it("should close a socket that sends no connection_init in time with 4408", async () => {
    const { closed } = await open();
    expect(await closed).toBe(CloseCode.ConnectionInitialisationTimeout);
  });

  it("should close a socket whose first message is not connection_init with graphql-ws's code", async () => {
    const { client, closed } = await open();
    client.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "{ ok }" } }));
    expect(await closed).toBe(CloseCode.Unauthorized);
  });

  it("should keep a socket open past the wait once connection_init has come", async () => {
    const { client, closed } = await open();
    const acked = new Promise((resolve) => client.once("message", resolve));
    client.send(JSON.stringify({ type: "connection_init" }));
    await acked;
    // A ping answered after the wait: the socket is still open and served.
    await new Promise((resolve) => setTimeout(resolve, 3 * WAIT_MS));
    const pong = new Promise<string>((resolve) =>
      client.once("message", (data: Buffer) => resolve(String(data))),
    );
    client.send(JSON.stringify({ type: "ping" }));
    expect(JSON.parse(await pong)).toEqual({ type: "pong" });
    expect(client.readyState).toBe(WebSocket.OPEN);
    client.close(1000);
    expect(await closed).toBe(1000);
  });
});

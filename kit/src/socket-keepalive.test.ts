import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { keepSocketsAlive } from "./socket-keepalive";

describe("keepSocketsAlive", () => {
  let server: http.Server;
  let wss: WebSocketServer;
  let stop: () => void;
  let url: string;
  const clients: WebSocket[] = [];

  beforeEach(async () => {
    server = http.createServer();
    wss = new WebSocketServer({ server });
    stop = keepSocketsAlive(wss, 200);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    stop();
    for (const client of clients) client.terminate();
    clients.length = 0;
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const connect = async (autoPong: boolean) => {
    const client = new WebSocket(url, { autoPong });
    clients.push(client);
    let pings = 0;
    client.on("ping", () => (pings += 1));
    const closed = new Promise<number>((resolve) => client.once("close", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      client.once("open", () => resolve());
      client.once("error", reject);
    });
    return { client, pings: () => pings, closed };
  };

  it("should ping every socket and keep the ones that answer", async () => {
    const answering = await connect(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(answering.pings()).toBeGreaterThanOrEqual(3);
    expect(answering.client.readyState).toBe(WebSocket.OPEN);
  });

  it("should cut off a socket that does not answer a ping by its next turn", async () => {
    const silent = await connect(false);
    const answering = await connect(true);
    // terminate() ends the TCP connection without a close frame: the client sees 1006.
    expect(await silent.closed).toBe(1006);
    expect(silent.pings()).toBeGreaterThanOrEqual(1);
    expect(answering.client.readyState).toBe(WebSocket.OPEN);
  });

  it("should stop pinging once stopped", async () => {
    const answering = await connect(true);
    stop();
    const before = answering.pings();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(answering.pings()).toBe(before);
  });
});

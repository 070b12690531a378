import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { start as startUsers } from "@hv/users";
import {
  generateSigningKeyJwk,
  JWKS_PATH,
  loadGatewayConfig,
  loadUsersConfig,
  type RunningSubgraph,
} from "@hv/kit";
import WebSocket from "ws";
import { capturingLogger } from "../../support/log-capture";
import { freePort } from "../../support/ports";
import { testEnv } from "../../support/system";
import { waitFor } from "../../support/wait";
import { UsersClient, type SignedIn } from "../../support/users-client";

type Outcome =
  | { opened: true; socket: WebSocket }
  | { opened: false; status: number; body: string; retryAfter: string | undefined };

/**
 * A raw WebSocket upgrade to the gateway from the loopback address `from` (127.0.0.x). With
 * `hello`, an anonymous `connection_init` once open, resolving at its ack: the socket then stays
 * open (not closed with 4408 after the gateway's 3 s wait for it, however slowly the test runs).
 */
function upgrade(url: string, from: string, hello = false): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, "graphql-transport-ws", { localAddress: from });
    socket.once("open", () => {
      if (!hello) return resolve({ opened: true, socket });
      socket.once("message", () => resolve({ opened: true, socket }));
      socket.once("close", (code) => reject(new Error(`closed with ${code} before connection_ack`)));
      socket.send(JSON.stringify({ type: "connection_init" }));
    });
    socket.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () =>
        resolve({ opened: false, status: res.statusCode ?? 0, body, retryAfter: res.headers["retry-after"] }),
      );
    });
    socket.once("error", (error) => reject(error));
  });
}

/** connection_init with a token: resolves "ack", or the close code the gateway answered with. */
function init(socket: WebSocket, token: string): Promise<"ack" | number> {
  return new Promise((resolve) => {
    socket.once("message", (data: Buffer) =>
      resolve((JSON.parse(data.toString()) as { type: string }).type === "connection_ack" ? "ack" : -1),
    );
    socket.once("close", (code) => resolve(code));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
  });
}

/**
 * One address floods the gateway with graphql-ws connections (sources are distinct loopback
 * addresses, 127.0.0.x): open sockets are capped per address and per user, and upgrades spend the
 * per-address request budget; other addresses still get in.
 */
describe("graphql-ws connection caps", () => {
  let users: RunningSubgraph;
  let gateway: RunningGateway;
  let wsUrl: string;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    const env = testEnv({ AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("socket-caps")]) });
    users = await startUsers(loadUsersConfig(env), capturingLogger("users").logger);
    const dead = `http://127.0.0.1:${await freePort()}/graphql`;
    gateway = await startGateway(
      loadGatewayConfig({
        ...env,
        AUTH_JWKS_URL: users.url.replace(/\/graphql$/, JWKS_PATH),
        USERS_URL: users.url,
        DISCOVERY_URL: dead,
        CHAT_URL: dead,
        MEDIA_URL: dead,
        // Budgets are kept in Redis for the run: a prefix of this test's own keeps them fresh.
        EVENTS_PREFIX: `hvtest-caps-${process.pid}-${Date.now()}`,
        GATEWAY_RATE_LIMIT_IP: "40/1m",
        GATEWAY_WS_MAX_PER_ADDRESS: "5",
        GATEWAY_WS_MAX_PER_USER: "2",
      }),
      capturingLogger("gateway-caps").logger,
    );
    wsUrl = gateway.url.replace(/^http/, "ws");
  });
  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await gateway?.stop();
    await users?.stop();
  });

  const keep = (outcome: Outcome) => {
    if (outcome.opened) sockets.push(outcome.socket);
    return outcome;
  };
  const close = (socket: WebSocket) =>
    new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.close();
    });
  /** Until the gateway holds just the sockets open here: the closes are seen on its side too. */
  const closesSeen = () =>
    waitFor(
      "the gateway to see the closes",
      () =>
        gateway.subscriptionStats().connections ===
        sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length,
    );

  it("should hold one address to its cap of open sockets with HTTP 429 while other addresses still connect", async () => {
    const flood = await Promise.all(
      Array.from({ length: 20 }, () => upgrade(wsUrl, "127.0.0.2", true).then(keep)),
    );
    expect(flood.filter((o) => o.opened)).toHaveLength(5);
    const refused = flood.filter((o): o is Extract<Outcome, { opened: false }> => !o.opened);
    expect(refused).toHaveLength(15);
    for (const o of refused)
      expect(o).toMatchObject({ status: 429, body: "Too many open connections from this address" });
    expect(gateway.subscriptionStats().connections).toBe(5);

    const other = keep(await upgrade(wsUrl, "127.0.0.3", true));
    expect(other.opened).toBe(true);

    // A slot comes back when a socket closes.
    const first = flood.find((o): o is Extract<Outcome, { opened: true }> => o.opened);
    await close(first!.socket);
    await closesSeen();
    expect(keep(await upgrade(wsUrl, "127.0.0.2", true)).opened).toBe(true);
    expect(keep(await upgrade(wsUrl, "127.0.0.2", true)).opened).toBe(false);
  });

  it("should count upgrades in the per-address request budget: 429 with Retry-After once it is spent", async () => {
    const outcomes: Outcome[] = [];
    // One at a time, each closed before the next: the open-sockets cap never applies.
    for (let i = 0; i < 45; i += 1) {
      const outcome = await upgrade(wsUrl, "127.0.0.4");
      outcomes.push(outcome);
      if (outcome.opened) await close(outcome.socket);
    }
    expect(outcomes.filter((o) => o.opened)).toHaveLength(40);
    const refused = outcomes.slice(40);
    for (const o of refused)
      expect(o).toMatchObject({
        opened: false,
        status: 429,
        body: "Too Many Requests",
        retryAfter: expect.stringMatching(/^\d+$/),
      });
    // Another address has its own budget.
    expect(keep(await upgrade(wsUrl, "127.0.0.5")).opened).toBe(true);
  });

  it("should close a user's connection beyond their cap with 4429, from any address, and let it in once one closes", async () => {
    const ada: SignedIn = await new UsersClient(gateway.url).signUp({ displayName: "Ada" });
    const opened: WebSocket[] = [];
    const results: Array<"ack" | number> = [];
    for (const from of ["127.0.0.6", "127.0.0.7", "127.0.0.8"]) {
      const outcome = keep(await upgrade(wsUrl, from));
      if (!outcome.opened) throw new Error(`upgrade from ${from} refused: ${outcome.status}`);
      opened.push(outcome.socket);
      results.push(await init(outcome.socket, ada.accessToken));
    }
    expect(results).toEqual(["ack", "ack", 4429]);
    await close(opened[0]!);
    await closesSeen();
    const again = keep(await upgrade(wsUrl, "127.0.0.9"));
    if (!again.opened) throw new Error("upgrade refused");
    expect(await init(again.socket, ada.accessToken)).toBe("ack");
  });
});

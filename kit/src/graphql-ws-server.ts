import type http from "node:http";
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from "graphql-ws";
import type { WebSocket, WebSocketServer } from "ws";

/**
 * What a connection's graphql-ws context carries: its socket and what was read from the upgrade
 * request. The request itself is not kept (its headers, buffers and stream state were about a
 * kilobyte per open connection).
 */
export interface SocketExtra<Upgrade> {
  readonly socket: WebSocket;
  readonly upgrade: Upgrade;
}

/** The closed code of an unexpected failure of a socket or of handling a message. */
const INTERNAL = CloseCode.InternalServerError;

/**
 * graphql-ws's protocol (`makeServer`) on `ws` sockets: `graphql-ws/use/ws` without its own
 * keep-alive (the caller keeps sockets alive) and without holding the upgrade request, of which
 * `readUpgrade` keeps what the hooks need. Returns the function that closes every socket with 1001
 * and stops the server.
 */
export function serveGraphqlWs<Upgrade>(
  wss: WebSocketServer,
  options: ServerOptions<Record<string, unknown>, SocketExtra<Upgrade>>,
  readUpgrade: (request: http.IncomingMessage) => Upgrade,
  onInternalError: (error: unknown) => void,
): () => Promise<void> {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.once("error", (error) => {
    onInternalError(error);
    for (const client of wss.clients) client.close(INTERNAL, "Internal server error");
  });
  const internal = (socket: WebSocket, error: unknown) => {
    onInternalError(error);
    socket.close(INTERNAL, "Internal server error");
  };
  wss.on("connection", (socket: WebSocket, request: http.IncomingMessage) => {
    socket.once("error", (error) => internal(socket, error));
    const closed = server.opened(
      {
        protocol: socket.protocol,
        // Resolved once the frame is handed to the kernel: graphql-ws sends a subscription's next
        // result only then, so a client that stops reading fills its stream's queue, not our memory.
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on("message", (data: Buffer) => {
            handle(String(data)).catch((error: unknown) => internal(socket, error));
          }),
      },
      { socket, upgrade: readUpgrade(request) },
    );
    socket.once("close", (code: number, reason: Buffer) => {
      closed(code, String(reason)).catch(onInternalError);
    });
  });
  return async () => {
    for (const client of wss.clients) client.close(1001, "Going away");
    wss.removeAllListeners();
    await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
  };
}

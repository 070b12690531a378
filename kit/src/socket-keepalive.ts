import type { WebSocket, WebSocketServer } from "ws";
import { SpreadTimer } from "./spread-timer";

/**
 * WebSocket keep-alive for every socket of `wss`: each socket is pinged once per `intervalMs`, and
 * one that has not answered the previous ping by then is terminated. The same contract as
 * graphql-ws's `useServer(…, keepAlive)` (give it 0 when using this), with one timer for all the
 * sockets instead of an interval and a pong timeout per socket, and the pings spread evenly over
 * the interval in small slices (a tenth of a second's worth each). Returns the function that stops it.
 */
export function keepSocketsAlive(wss: WebSocketServer, intervalMs: number): () => void {
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) return () => undefined;
  /** Sockets that answered (a pong) since their last ping. */
  const answered = new WeakSet<WebSocket>();
  const sweep = new SpreadTimer<WebSocket>({
    periodMs: intervalMs,
    tickMs: Math.max(50, Math.floor(intervalMs / 250)),
    run: (due) => {
      for (const socket of due) {
        if (socket.readyState !== socket.OPEN) continue;
        if (!answered.delete(socket)) {
          socket.terminate();
          continue;
        }
        socket.ping();
      }
    },
  });
  // Shared listeners (`this` is the socket): nothing allocated per socket but its timer slot.
  function onPong(this: WebSocket): void {
    answered.add(this);
  }
  function onClose(this: WebSocket): void {
    sweep.delete(this);
  }
  const onConnection = (socket: WebSocket) => {
    answered.add(socket);
    socket.on("pong", onPong);
    socket.on("close", onClose);
    sweep.add(socket);
  };
  wss.on("connection", onConnection);
  return () => {
    wss.off("connection", onConnection);
    sweep.clear();
  };
}

import type { WebSocket, WebSocketServer } from "ws";
import { SpreadTimer } from "./spread-timer";

interface Watched {
  socket: WebSocket;
  /** A pong (or any frame) arrived since the last ping. */
  alive: boolean;
}

/**
 * WebSocket keep-alive for every socket of `wss`: each socket is pinged once per `intervalMs`, and
 * one that has not answered the previous ping by then is terminated. The same contract as
 * graphql-ws's `useServer(…, keepAlive)` (give it 0 when using this), with one timer for all the
 * sockets instead of an interval and a pong timeout per socket, and the pings spread evenly over
 * the interval. Returns the function that stops it.
 */
export function keepSocketsAlive(wss: WebSocketServer, intervalMs: number): () => void {
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) return () => undefined;
  const sweep = new SpreadTimer<Watched>({
    periodMs: intervalMs,
    tickMs: Math.max(50, Math.floor(intervalMs / 48)),
    run: (due) => {
      for (const watched of due) {
        const { socket } = watched;
        if (socket.readyState !== socket.OPEN) continue;
        if (!watched.alive) {
          socket.terminate();
          continue;
        }
        watched.alive = false;
        socket.ping();
      }
    },
  });
  const onConnection = (socket: WebSocket) => {
    const watched: Watched = { socket, alive: true };
    socket.on("pong", () => (watched.alive = true));
    sweep.add(watched);
    socket.once("close", () => sweep.delete(watched));
  };
  wss.on("connection", onConnection);
  return () => {
    wss.off("connection", onConnection);
    sweep.clear();
  };
}

import type { Socket } from "node:net";

export interface TurnWrites {
  /** Holds `socket`'s writes until the end of this event-loop turn (corks it once per turn). */
  hold(socket: Socket): void;
  /** Lets every held socket write now. */
  flush(): void;
}

/**
 * The writes to each socket within one event-loop turn leave together: the first `hold` of a turn
 * corks the socket and one `setImmediate` uncorks every held socket, so the frames written
 * meanwhile go out in one `writev` instead of a write each. Order on a socket is kept.
 */
export function turnWrites(): TurnWrites {
  const held = new Set<Socket>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const socket of held) socket.uncork();
    held.clear();
  };
  return {
    hold(socket) {
      if (held.has(socket) || socket.destroyed) return;
      socket.cork();
      held.add(socket);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** What `holdRedisWrites` needs of an ioredis client. */
export interface RedisConnection {
  status: string;
  stream: Socket;
}

/**
 * Holds a connected Redis client's writes to the end of this turn (`turnWrites`): the commands
 * sent meanwhile (concurrent requests') leave in one write. Does nothing while not connected.
 */
export function holdRedisWrites(writes: TurnWrites, redis: RedisConnection): void {
  if (redis.status === "ready" && redis.stream) writes.hold(redis.stream);
}

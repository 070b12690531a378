import { CloseCode } from "graphql-ws";
import { GraphQLError } from "graphql";
import { decodeJwt } from "jose";
import type { WebSocket } from "ws";
import { ErrorCode } from "./errors";
import type { Logger } from "./logger";
import { SpreadTimer } from "./spread-timer";

/** setTimeout at an epoch-ms instant, clamped to what Node accepts, calling `run(...args)`; unref'd. */
export function timerAt<A extends unknown[]>(
  epochMs: number,
  run: (...args: A) => void,
  ...args: A
): NodeJS.Timeout {
  const timer = setTimeout(run, Math.min(Math.max(0, epochMs - Date.now()), 2_147_483_647), ...args);
  timer.unref();
  return timer;
}

/** `exp` (epoch ms) of a JWT, from an `authorization` value or a bare token; undefined when unreadable. */
export function tokenExpiry(authorization: string): number | undefined {
  try {
    const { exp } = decodeJwt(authorization.replace(/^Bearer +/i, "").trim());
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Closes a graphql-ws socket with 4403 and `Forbidden: <reason>` (invalid, expired, revoked, blocked). */
export function forbidSocket(socket: WebSocket, reason: string): void {
  if (socket.readyState === socket.OPEN) socket.close(CloseCode.Forbidden, `Forbidden: ${reason}`);
}

export interface ConnectionTokenWatchOptions {
  /** How often each watched connection's token is verified again (revocations). */
  revalidateMs: number;
  /** Verifies a credential again; rejects with UNAUTHENTICATED (and `reason`) when it is refused. */
  verify(credential: string): Promise<unknown>;
  logger: Logger;
}

/** A watched connection (a class, not closures: one is held per signed-in socket for hours). */
class WatchedConnection {
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: WebSocket,
    readonly credential: string,
    expiresAt: number | undefined,
    private readonly revalidations: SpreadTimer<WatchedConnection>,
  ) {
    if (expiresAt === undefined) return;
    this.timer = timerAt(expiresAt, forbidSocket, socket, "expired");
  }

  stop(): void {
    clearTimeout(this.timer);
    this.revalidations.delete(this);
  }
}

/** What `ConnectionTokenWatch.watch` hands back: stops watching that connection (on close). */
export interface TokenWatchHandle {
  stop(): void;
}

/**
 * The signed-in connections of a graphql-ws server: each is closed with 4403 `Forbidden: expired`
 * at its token's expiry, or `Forbidden: <reason>` when a periodic re-check refuses the token.
 */
export class ConnectionTokenWatch {
  private readonly revalidations: SpreadTimer<WatchedConnection>;

  constructor(private readonly options: ConnectionTokenWatchOptions) {
    this.revalidations = new SpreadTimer({
      periodMs: options.revalidateMs,
      // Small slices: each turn's re-checks (one batched revocation read) stay a short burst.
      tickMs: Math.min(250, options.revalidateMs),
      run: (due) => {
        for (const entry of due) {
          if (entry.socket.readyState !== entry.socket.OPEN) {
            this.revalidations.delete(entry);
            continue;
          }
          options.verify(entry.credential).catch((error: unknown) => this.refused(entry.socket, error));
        }
      },
    });
  }

  /** Watches `socket` until the handle's `stop` is called (on close). */
  watch(socket: WebSocket, credential: string, expiresAt: number | undefined): TokenWatchHandle {
    const entry = new WatchedConnection(socket, credential, expiresAt, this.revalidations);
    this.revalidations.add(entry);
    return entry;
  }

  /** Stops every re-check (shutdown). */
  clear(): void {
    this.revalidations.clear();
  }

  private refused(socket: WebSocket, error: unknown): void {
    if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAUTHENTICATED) {
      forbidSocket(socket, String(error.extensions.reason ?? "invalid"));
    } else {
      this.options.logger.warn({ err: error }, "graphql-ws: could not re-verify a connection's access token");
    }
  }
}

import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { clientExtensions, ErrorCode, isKnownErrorCode, REQUEST_ID_HEADER, type Logger } from "@hv/kit";
import { digestKey } from "./digest";

/** One event of an upstream subscription: a `next` payload as the subgraph sent it. */
export interface UpstreamEvent {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/** Receives an upstream subscription's events; `error` and `complete` are final. */
export interface UpstreamListener {
  next(event: UpstreamEvent): void;
  error(errors: GraphQLError[]): void;
  complete(): void;
}

export interface UpstreamOperation {
  serviceName: string;
  query: string;
  operationName: string | undefined;
  variables: Record<string, unknown>;
  /** The subscriber's `Authorization` header ("Bearer <token>"): the subgraph authenticates the operation with it. */
  authorization: string | null;
  requestId: string;
}

export interface UpstreamStats {
  /** Distinct subscriptions running on subgraphs right now. */
  subscriptions: number;
  /** Subscribe messages sent to subgraphs since start. */
  subscribed: number;
  /** Upstream WebSocket connections currently open. */
  openConnections: number;
}

/** A subgraph's error for the client: its message and catalogued code, or an internal error. */
export function clientErrorFrom(error: GraphQLFormattedError | undefined): GraphQLError {
  const code = error?.extensions?.code;
  if (!error || typeof error.message !== "string" || !isKnownErrorCode(code)) {
    return new GraphQLError(error?.message ?? "The subgraph refused the subscription", {
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    });
  }
  return new GraphQLError(error.message, { extensions: clientExtensions(error.extensions) });
}

export function interrupted(reason: string): GraphQLError {
  return new GraphQLError(
    `The subscription was interrupted (${reason}): subscribe again, then catch up on what you missed (e.g. messages(after: lastSeq))`,
    { extensions: { code: ErrorCode.SUBSCRIPTION_INTERRUPTED } },
  );
}

/**
 * An operation-level refusal: errors without any `data` (graphql-js answers a failed subscribe
 * that way: not a member, not signed in), or a token that ran out mid-stream. It ends the
 * subscription; an event whose resolution failed (`data: null` with errors) does not.
 */
function isOperationRefusal(event: UpstreamEvent): boolean {
  if (!event.errors?.length) return false;
  if (event.data === undefined) return true;
  return event.data === null && event.errors.some((e) => e.extensions?.code === ErrorCode.UNAUTHENTICATED);
}

/** One subscription on a subgraph and its listeners; graphql-ws's sink for it (no closures of its own). */
class SharedUpstream {
  readonly listeners = new Set<UpstreamListener>();
  ended = false;
  dispose: () => void = () => undefined;

  constructor(
    readonly key: string,
    readonly connection: UpstreamConnection,
    private readonly serviceName: string,
  ) {}

  next(value: unknown): void {
    if (this.ended) return;
    const event = value as UpstreamEvent;
    if (isOperationRefusal(event)) {
      this.end({ errors: (event.errors ?? []).map(clientErrorFrom) });
      return;
    }
    for (const listener of this.listeners) listener.next(event);
  }

  error(error: unknown): void {
    if (this.ended) return;
    if (Array.isArray(error)) {
      // An `error` message: the subgraph refused the operation (validation, UNAUTHENTICATED, FORBIDDEN…).
      this.end({ errors: (error as GraphQLFormattedError[]).map(clientErrorFrom) });
    } else {
      this.end({ errors: [interrupted(`the ${this.serviceName} subgraph connection failed`)] });
    }
  }

  complete(): void {
    if (this.ended) return;
    this.end("complete");
  }

  /** Ends every listener once; later sink callbacks from graphql-ws are ignored. */
  end(how: { errors: GraphQLError[] } | "complete"): void {
    if (this.ended) return;
    this.ended = true;
    this.connection.subscriptions.delete(this);
    this.connection.pool.forget(this);
    this.dispose();
    for (const listener of this.listeners) {
      if (how === "complete") listener.complete();
      else listener.error(how.errors);
    }
    this.listeners.clear();
  }
}

/** One multiplexed graphql-ws connection to a subgraph, shared by many users' operations. */
class UpstreamConnection {
  readonly subscriptions = new Set<SharedUpstream>();
  readonly client: Client;
  open = false;

  constructor(
    readonly pool: UpstreamPool,
    url: string,
    keepAliveMs: number,
  ) {
    let socket: WebSocket | undefined;
    let pongTimeout: NodeJS.Timeout | undefined;
    this.client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: true,
      // Connect on the first operation, keep the socket a little after the last one ends.
      lazyCloseTimeout: 10_000,
      // Never resubscribe behind the clients' backs: events sent while we were away would be lost
      // silently. A drop ends every operation on this connection with SUBSCRIPTION_INTERRUPTED.
      retryAttempts: 0,
      keepAlive: keepAliveMs,
      on: {
        connected: (connected) => {
          socket = connected as WebSocket;
          this.open = true;
        },
        // A subgraph that stops answering pings is as good as gone.
        ping: (received) => {
          if (received) return;
          clearTimeout(pongTimeout);
          pongTimeout = setTimeout(() => {
            if (socket?.readyState === WebSocket.OPEN) socket.close(4408, "Pong timeout");
          }, keepAliveMs);
          pongTimeout.unref();
        },
        pong: (received) => {
          if (received) clearTimeout(pongTimeout);
        },
        closed: (event) => {
          clearTimeout(pongTimeout);
          socket = undefined;
          this.open = false;
          const code = (event as { code?: number } | undefined)?.code;
          this.interruptAll(
            `the ${pool.serviceOf(this)} subgraph connection closed${code ? ` with ${code}` : ""}`,
          );
        },
        error: () => {
          // Followed by `closed` when the socket existed; covers a connection that never opened.
          this.interruptAll(`the ${pool.serviceOf(this)} subgraph could not be reached`);
        },
      },
    });
  }

  interruptAll(reason: string): void {
    if (this.subscriptions.size === 0) return;
    this.pool.logger.warn(
      { subscriptions: this.subscriptions.size, reason },
      "upstream subscriptions interrupted",
    );
    const error = interrupted(reason);
    for (const subscription of [...this.subscriptions]) subscription.end({ errors: [error] });
  }
}

export interface UpstreamPoolOptions {
  /** Where each subgraph serves graphql-ws (its HTTP /graphql URL; http is replaced by ws). */
  urls: Record<string, string>;
  /** Upstream WebSocket connections per subgraph; operations are spread over them. */
  connectionsPerSubgraph: number;
  keepAliveMs: number;
  logger: Logger;
}

/**
 * Subscriptions to the subgraphs, MULTIPLEXED over a few graphql-ws connections per subgraph and
 * SHARED: identical operations (same subgraph, document, variables and Authorization) run once,
 * whatever the number of listeners.
 */
export class UpstreamPool {
  readonly logger: Logger;
  private readonly connections = new Map<string, UpstreamConnection[]>();
  private readonly services = new Map<UpstreamConnection, string>();
  private readonly shared = new Map<string, SharedUpstream>();
  private subscribed = 0;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.logger = options.logger;
  }

  serviceOf(connection: UpstreamConnection): string {
    return this.services.get(connection) ?? "unknown";
  }

  forget(subscription: SharedUpstream): void {
    if (this.shared.get(subscription.key) === subscription) this.shared.delete(subscription.key);
  }

  stats(): UpstreamStats {
    let open = 0;
    for (const list of this.connections.values()) for (const c of list) if (c.open) open += 1;
    return { subscriptions: this.shared.size, subscribed: this.subscribed, openConnections: open };
  }

  /** Starts (or joins) the operation; returns the function that leaves it. */
  subscribe(operation: UpstreamOperation, listener: UpstreamListener): () => void {
    const key = digestKey([
      operation.serviceName,
      operation.query,
      operation.operationName ?? null,
      operation.variables,
      operation.authorization,
    ]);
    let subscription = this.shared.get(key);
    if (!subscription || subscription.ended) {
      subscription = this.start(key, operation);
    }
    const joined = subscription;
    joined.listeners.add(listener);
    return () => {
      if (!joined.listeners.delete(listener)) return;
      if (joined.listeners.size === 0 && !joined.ended) {
        joined.ended = true;
        joined.connection.subscriptions.delete(joined);
        this.forget(joined);
        joined.dispose();
      }
    };
  }

  async stop(): Promise<void> {
    for (const subscription of [...this.shared.values()]) subscription.end("complete");
    await Promise.all([...this.connections.values()].flat().map((c) => c.client.dispose()));
    this.connections.clear();
  }

  private connectionFor(serviceName: string): UpstreamConnection {
    let list = this.connections.get(serviceName);
    if (!list) {
      const url = this.options.urls[serviceName];
      if (!url) throw new Error(`No URL for subgraph "${serviceName}"`);
      const wsUrl = url.replace(/^http/, "ws");
      list = Array.from({ length: Math.max(1, this.options.connectionsPerSubgraph) }, () => {
        const connection = new UpstreamConnection(this, wsUrl, this.options.keepAliveMs);
        this.services.set(connection, serviceName);
        return connection;
      });
      this.connections.set(serviceName, list);
    }
    // The least loaded connection takes the operation.
    return list.reduce((best, c) => (c.subscriptions.size < best.subscriptions.size ? c : best));
  }

  private start(key: string, operation: UpstreamOperation): SharedUpstream {
    const connection = this.connectionFor(operation.serviceName);
    const subscription = new SharedUpstream(key, connection, operation.serviceName);
    this.shared.set(key, subscription);
    connection.subscriptions.add(subscription);
    this.subscribed += 1;
    const extensions: Record<string, unknown> = { [REQUEST_ID_HEADER]: operation.requestId };
    if (operation.authorization !== null) extensions.authorization = operation.authorization;
    subscription.dispose = connection.client.subscribe<Record<string, unknown>, Record<string, unknown>>(
      {
        query: operation.query,
        ...(operation.operationName === undefined ? {} : { operationName: operation.operationName }),
        variables: operation.variables,
        extensions,
      },
      subscription,
    );
    return subscription;
  }
}

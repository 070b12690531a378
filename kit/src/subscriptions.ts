import type http from "node:http";
import type { Socket } from "node:net";
import {
  GraphQLError,
  parse,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type Source,
} from "graphql";
import type { SubscribePayload } from "graphql-ws";
import { WebSocketServer, type WebSocket } from "ws";
import { accessTokenRefused, type AccessTokenVerifier } from "./auth/access-tokens";
import type { Viewer } from "./auth/viewer";
import { appError, createErrorFormatter, ErrorCode } from "./errors";
import { ConnectionTokenWatch, timerAt, tokenExpiry, type TokenWatchHandle } from "./connection-auth";
import { serveGraphqlWs } from "./graphql-ws-server";
import type { Logger } from "./logger";
import { unmapIpv4 } from "./ip";
import { requestIdFrom } from "./request-id";
import type { RequestContextBase } from "./service";
import { keepSocketsAlive } from "./socket-keepalive";
import { sharedSubscribe, type SharedWhen } from "./shared-execution";
import { turnWrites } from "./turn-writes";

/**
 * Subscriptions of a subgraph over graphql-ws (the `graphql-transport-ws` protocol), on the
 * subgraph's own HTTP server and `/graphql` path.
 *
 * Who the caller is, per operation:
 * - `connectionParams.authorization: "Bearer <access token>"` names the connection's user (a
 *   phone talking to the subgraph directly: one user per connection). A refused token closes the
 *   socket with 4403 Forbidden; when the token expires (or is revoked, checked every
 *   `revalidateMs`) the socket is closed with 4403 too (ConnectionTokenWatch, as the gateway does).
 * - `payload.extensions.authorization: "Bearer <access token>"` on a subscribe message names that
 *   operation's user and wins over the connection's (the gateway multiplexes many users'
 *   operations on one upstream connection). A refused token fails that operation with
 *   UNAUTHENTICATED; when the token expires, just that operation ends with an UNAUTHENTICATED
 *   error (a `next` carrying the error, then `complete`).
 * - Neither: the operation runs with `viewer: null` and the resolvers decide (requireViewer).
 *
 * Every token goes through the same verifier as HTTP requests (signature, claims, revocations).
 */

/** What a subscription operation's context is built from: the same fields as an HTTP request's. */
export type SubscriptionContextBase = RequestContextBase;

export interface SubscriptionServerOptions<TContext> {
  httpServer: http.Server;
  schema: GraphQLSchema;
  verifier: AccessTokenVerifier;
  logger: Logger;
  isProduction: boolean;
  /**
   * Builds one operation's context (called once per subscribe message). The base's `logger` is a
   * getter on its prototype (made on first use): extend the base or hold it, never spread it.
   */
  context(base: SubscriptionContextBase): TContext | Promise<TContext>;
  /** Default `/graphql`. */
  path?: string;
  /** WebSocket ping interval; a client that misses a pong is dropped. Default 12 000 ms. */
  keepAliveMs?: number;
  /** How often a connection's access token is verified again (revocations). Default 60 000 ms. */
  revalidateMs?: number;
  /** How long stop() lets clients answer the 1001 close before cutting them off. Default 1 000 ms. */
  closeGraceMs?: number;
  /**
   * Schema coordinates (`Type.field`) whose resolvers read only the event, never the viewer or the
   * context: subscribers of one event whose operations select only these share one execution
   * (kit/src/shared-execution.ts). Default: none, every subscriber executes its own.
   */
  sharedFields?: ReadonlySet<string>;
  /** Fields shared beside `sharedFields` for the events it accepts (kit/src/shared-execution.ts). */
  sharedWhen?: SharedWhen;
}

export interface SubscriptionServer {
  /** Open WebSocket connections right now. */
  connections(): number;
  /** Subscriptions running right now, over all connections. */
  operations(): number;
  /**
   * Closes every open socket with `code` (e.g. 1012 Service Restart after the fan-out lost events):
   * clients reconnect, resubscribe and catch up. The server keeps accepting connections.
   */
  closeAll(code: number, reason: string): void;
  /** Closes every socket with 1001 (Going Away: reconnect elsewhere) and stops accepting new ones. */
  stop(): Promise<void>;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

interface Caller {
  viewer: Viewer;
  /** Epoch ms at which the token expires. */
  expiresAt: number;
}

/** A connection's caller: its token is verified again every `revalidateMs`. */
interface ConnectionCaller extends Caller {
  token: string;
}

interface ConnectionState {
  caller: ConnectionCaller | null;
  requestId: string;
  clientIp: string;
  /** Stops watching the connection's token (set while it is open and signed in). */
  watched?: TokenWatchHandle;
  /** Operation-level callers, by operation id. */
  operations: Map<string, Caller>;
  /** Ids of the subscriptions running on this connection (metrics). */
  running: Set<string>;
}

/** What a connection keeps of its upgrade request. */
interface UpgradeInfo {
  /** Its `x-request-id` header, if any. */
  requestId: string | string[] | undefined;
  clientIp: string;
  /** The TCP socket under the WebSocket (its writes are held to the end of each turn). */
  tcp: Socket;
}

/** Reads a `Bearer <token>` value from connectionParams / extensions; undefined when absent. */
function bearerOf(value: unknown): string | undefined | Error {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string")
    return accessTokenRefused("invalid", "authorization must be the string `Bearer <access token>`");
  const token = BEARER.exec(value)?.[1];
  if (token === undefined)
    return accessTokenRefused("invalid", "authorization must be `Bearer <access token>`");
  return token;
}

function authorizationIn(record: unknown): unknown {
  if (typeof record !== "object" || record === null) return undefined;
  const entries = record as Record<string, unknown>;
  return entries.authorization ?? entries.Authorization;
}

function forgetAuthorization(record: Record<string, unknown> | null | undefined): void {
  if (!record) return;
  if ("authorization" in record) record.authorization = undefined;
  if ("Authorization" in record) record.Authorization = undefined;
}

function isUnauthenticated(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAUTHENTICATED;
}

async function verifyCaller(verifier: AccessTokenVerifier, token: string): Promise<ConnectionCaller> {
  const viewer = await verifier.verify(token);
  return { viewer, token, expiresAt: tokenExpiry(token) ?? 0 }; // verified above: exp is present
}

/** How many distinct operation documents one server keeps parsed and validated. */
const DOCUMENT_CACHE_SIZE = 200;

/**
 * graphql-ws's `parse` and `validate`, remembered per query text: the operations of many
 * subscribers share one document (and its validation) instead of each holding its own. Documents
 * are never mutated by execution. Past `DOCUMENT_CACHE_SIZE` texts the oldest is forgotten.
 */
export function sharedDocuments(schema: GraphQLSchema): {
  parse(query: string | Source): DocumentNode;
  validate(schema: GraphQLSchema, document: DocumentNode): readonly GraphQLError[];
  /** The remembered copy of this query text when there is one (for the many operations that keep it). */
  text(query: string): string;
} {
  const documents = new Map<string, { text: string; document: DocumentNode }>();
  const valid = new WeakSet<DocumentNode>();
  return {
    parse(query) {
      if (typeof query !== "string") return parse(query);
      const known = documents.get(query);
      if (known) return known.document;
      const document = parse(query);
      if (documents.size >= DOCUMENT_CACHE_SIZE) documents.delete(documents.keys().next().value as string);
      documents.set(query, { text: query, document });
      return document;
    },
    text(query) {
      return documents.get(query)?.text ?? query;
    },
    validate(given, document) {
      if (given === schema && valid.has(document)) return [];
      const errors = validate(given, document);
      if (errors.length === 0 && given === schema) valid.add(document);
      return errors;
    },
  };
}

/** An async iterator whose consumer can end it at any time (graphql-ws calls `return()` on complete). */
export interface ClosableStream<T> extends AsyncIterableIterator<T> {
  return(): Promise<IteratorResult<T>>;
  throw(error: unknown): Promise<IteratorResult<T>>;
}

/**
 * The source stream, ended at `expiresAt` with one result carrying `error`. `return()` reaches the
 * source at once, even while a `next()` is pending (an async generator could not do that).
 */
export function streamUntil<T>(
  source: AsyncIterable<T>,
  expiresAt: number,
  expiredResult: () => T,
): ClosableStream<T> {
  return new StreamUntil(source[Symbol.asyncIterator](), expiresAt, expiredResult);
}

function expire(stream: StreamUntil<unknown>): void {
  stream.expired = true;
  stream.wake?.("expired");
}

// A class, not closures: one is held per open subscription, for hours.
class StreamUntil<T> implements ClosableStream<T> {
  finished = false;
  expired = false;
  // Wakes the `next()` waiting when the token runs out. (Not a Promise.race against one long-lived
  // "expired" promise: every race would leave a reaction on it until expiry, one per event.)
  wake: ((value: "expired") => void) | undefined;
  readonly timer: NodeJS.Timeout;

  constructor(
    private readonly iterator: AsyncIterator<T>,
    expiresAt: number,
    private readonly expiredResult: () => T,
  ) {
    this.timer = timerAt(expiresAt, expire, this);
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    await this.iterator.return?.();
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.finished) return { done: true, value: undefined };
    let result: IteratorResult<T> | "expired" = "expired";
    if (!this.expired) {
      try {
        result = await new Promise<IteratorResult<T> | "expired">((resolve, reject) => {
          this.wake = resolve;
          this.iterator.next().then(resolve, reject);
        });
      } finally {
        this.wake = undefined;
      }
    }
    if (result === "expired") {
      await this.finish();
      return { done: false, value: this.expiredResult() };
    }
    if (result.done) {
      this.finished = true;
      clearTimeout(this.timer);
      return { done: true, value: undefined };
    }
    return { done: false, value: result.value };
  }

  async return(): Promise<IteratorResult<T>> {
    await this.finish();
    return { done: true, value: undefined };
  }

  async throw(error: unknown): Promise<IteratorResult<T>> {
    await this.finish();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * One operation's context base, held for the subscription's life. A class: an object literal with a
 * getter is a dictionary-mode object (~400 bytes) plus a closure. The logger child is made on first
 * use (most subscriptions never log).
 */
class OperationBase implements SubscriptionContextBase {
  private child: Logger | undefined;

  constructor(
    readonly requestId: string,
    readonly viewer: Viewer | null,
    readonly clientIp: string,
    private readonly operationId: string,
    private readonly parent: Logger,
  ) {}

  get logger(): Logger {
    return (this.child ??= this.parent.child({ requestId: this.requestId, operationId: this.operationId }));
  }
}

/** What an operation whose token ran out gets last. */
const tokenExpiredResult = (): ExecutionResult => ({
  errors: [
    appError(ErrorCode.UNAUTHENTICATED, "The access token expired: subscribe again with a fresh one", {
      details: { reason: "expired" },
    }),
  ],
});

/** Serves `schema`'s operations (subscriptions above all) over graphql-ws on `httpServer`. */
export function startSubscriptionServer<TContext>(
  options: SubscriptionServerOptions<TContext>,
): SubscriptionServer {
  const { logger, verifier } = options;
  const revalidateMs = options.revalidateMs ?? 60_000;
  const closeGraceMs = options.closeGraceMs ?? 1_000;
  const wss = new WebSocketServer({ server: options.httpServer, path: options.path ?? "/graphql" });
  const states = new WeakMap<WebSocket, ConnectionState>();
  const tokenWatch = new ConnectionTokenWatch({
    revalidateMs,
    logger,
    verify: (token) => verifier.verify(token),
  });
  const formatError = createErrorFormatter({
    maskInternal: options.isProduction,
    onInternal: (error: unknown) => logger.error({ err: error }, "internal error in a subscription"),
  });
  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((error) => formatError(error.toJSON(), error));

  const stateOf = (socket: WebSocket): ConnectionState => {
    const state = states.get(socket);
    if (!state) throw new Error("graphql-ws: a socket without connection state");
    return state;
  };

  /** 1013 Try Again Later: graphql-ws clients reconnect (4500 would make them give up). */
  const tryAgainLater = (socket: WebSocket) => {
    if (socket.readyState === socket.OPEN) socket.close(1013, "Try again later");
  };

  async function operationContext(socket: WebSocket, id: string, payload: SubscribePayload): Promise<object> {
    const state = stateOf(socket);
    const caller = state.operations.get(id) ?? state.caller;
    const requestId =
      typeof payload.extensions?.["x-request-id"] === "string"
        ? requestIdFrom(payload.extensions["x-request-id"])
        : state.requestId;
    const base = new OperationBase(requestId, caller?.viewer ?? null, state.clientIp, id, logger);
    return (await options.context(base)) as object;
  }

  const documents = sharedDocuments(options.schema);
  const writes = turnWrites();
  const dispose = serveGraphqlWs<UpgradeInfo>(
    wss,
    {
      schema: options.schema,
      parse: documents.parse,
      validate: documents.validate,
      ...(options.sharedFields
        ? { subscribe: sharedSubscribe(options.schema, options.sharedFields, options.sharedWhen) }
        : {}),
      onConnect: async (ctx) => {
        const { socket, upgrade } = ctx.extra;
        const params = ctx.connectionParams;
        const state: ConnectionState = {
          caller: null,
          requestId: requestIdFrom(
            typeof params?.["x-request-id"] === "string" ? params["x-request-id"] : upgrade.requestId,
          ),
          clientIp: upgrade.clientIp,
          operations: new Map(),
          running: new Set(),
        };
        states.set(socket, state);
        const token = bearerOf(authorizationIn(params));
        if (token instanceof Error) return false;
        if (token === undefined) return true;
        try {
          state.caller = await verifyCaller(verifier, token);
        } catch (error) {
          if (isUnauthenticated(error)) {
            logger.info(
              { reason: error.extensions.reason, clientIp: state.clientIp },
              "graphql-ws: connection token refused",
            );
            return false; // 4403 Forbidden
          }
          // Keys or revocations unreachable (Redis away): our trouble, so the client should retry.
          logger.warn({ err: error }, "graphql-ws: could not verify a connection's access token");
          tryAgainLater(socket);
          return true;
        }
        state.watched = tokenWatch.watch(socket, state.caller.token, state.caller.expiresAt);
        return true;
      },
      onClose: (ctx) => {
        const state = states.get(ctx.extra.socket);
        state?.watched?.stop();
        state?.running.clear();
      },
      onSubscribe: async (ctx, id, payload: SubscribePayload) => {
        // graphql-ws keeps the payload for the operation's life: the shared copy of its text, not its own.
        (payload as { query: string }).query = documents.text(payload.query);
        const state = stateOf(ctx.extra.socket);
        const token = bearerOf(authorizationIn(payload.extensions));
        if (token === undefined) return undefined;
        if (token instanceof Error) return [token as GraphQLError];
        try {
          // Only the viewer and expiry are kept: an operation's token is not verified again.
          const { viewer, expiresAt } = await verifyCaller(verifier, token);
          state.operations.set(id, { viewer, expiresAt });
          // Nor its token (assigned undefined: a delete would turn the object into a slower dictionary).
          forgetAuthorization(payload.extensions);
        } catch (error) {
          if (isUnauthenticated(error)) return [error];
          logger.warn({ err: error }, "graphql-ws: could not verify an operation's access token");
          tryAgainLater(ctx.extra.socket);
          return [appError(ErrorCode.INTERNAL_SERVER_ERROR, "Try again later")];
        }
        return undefined;
      },
      context: async (ctx, id, payload) => {
        try {
          return await operationContext(ctx.extra.socket, id, payload);
        } catch (error) {
          logger.warn({ err: error }, "graphql-ws: could not build an operation's context");
          tryAgainLater(ctx.extra.socket);
          throw error;
        }
      },
      onOperation: (ctx, id, _payload, _args, result) => {
        if (Symbol.asyncIterator in Object(result)) states.get(ctx.extra.socket)?.running.add(id);
        const caller = stateOf(ctx.extra.socket).operations.get(id);
        if (!caller || !(Symbol.asyncIterator in Object(result))) return undefined;
        return streamUntil(result as AsyncIterable<ExecutionResult>, caller.expiresAt, tokenExpiredResult);
      },
      onNext: (ctx, _id, _payload, _args, result) => {
        // The events of one turn (many subscriptions share a gateway's connection) in one write.
        writes.hold(ctx.extra.upgrade.tcp);
        if (!result.errors?.length) return undefined;
        const formatted: FormattedExecutionResult = { errors: format(result.errors) };
        if (result.data !== undefined) formatted.data = result.data;
        if (result.extensions !== undefined) formatted.extensions = result.extensions;
        return formatted;
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
      onComplete: (ctx, id) => {
        states.get(ctx.extra.socket)?.operations.delete(id);
        states.get(ctx.extra.socket)?.running.delete(id);
      },
    },
    (request) => ({
      requestId: request.headers["x-request-id"],
      clientIp: unmapIpv4(request.socket.remoteAddress ?? "unknown"),
      tcp: request.socket,
    }),
    (error) => logger.error({ err: error }, "graphql-ws: internal error on a socket"),
  );
  // stop() closes the sockets itself (with a grace period); this is its last resort.
  void dispose;
  // Pings come from keepSocketsAlive (one spread timer instead of two timers per socket).
  const stopKeepAlive = keepSocketsAlive(wss, options.keepAliveMs ?? 12_000);

  return {
    connections: () => wss.clients.size,
    operations: () => {
      let count = 0;
      for (const socket of wss.clients) count += states.get(socket)?.running.size ?? 0;
      return count;
    },
    closeAll(code, reason) {
      for (const socket of wss.clients) socket.close(code, reason);
    },
    async stop() {
      stopKeepAlive();
      writes.flush();
      tokenWatch.clear();
      const sockets = [...wss.clients];
      const closed = sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === socket.CLOSED) return resolve();
            socket.once("close", () => resolve());
          }),
      );
      for (const socket of sockets) socket.close(1001, "Going away");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(closed),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, closeGraceMs);
        }),
      ]);
      clearTimeout(timer);
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

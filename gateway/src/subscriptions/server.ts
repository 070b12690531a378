import type http from "node:http";
import type { Socket } from "node:net";
import type { GraphQLSchema } from "graphql";
import {
  GraphQLError,
  parse,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
} from "graphql";
import { WebSocketServer, type WebSocket } from "ws";
import {
  appError,
  clientExtensions,
  CLOCK_TOLERANCE_SECONDS,
  ConnectionTokenWatch,
  createErrorFormatter,
  ErrorCode,
  forbidSocket,
  keepSocketsAlive,
  requestIdFrom,
  serveGraphqlWs,
  serviceUnavailable,
  tokenExpiry,
  turnWrites,
  type Logger,
  type TokenWatchHandle,
  unmapIpv4,
  type Viewer,
} from "@hv/kit";
import type { SubscriptionHub, Subscriber } from "./hub";
import type { PlannedSubscription, SubscriptionPlanner } from "./planner";
import type { SocketOperation, SocketOperationOutcome } from "../socket-operations";
import { OperationKinds } from "./operation-kinds";

/**
 * The gateway's graphql-ws endpoint (`graphql-transport-ws` protocol) on the same port and path as
 * HTTP: clients open ONE connection and run their subscriptions on it.
 *
 * - Token: `connectionParams.authorization = "Bearer <access token>"` (absent: anonymous). A bad,
 *   expired or revoked one is refused by closing with 4403 Forbidden and the reason (`invalid`,
 *   `expired`, `revoked`) as close reason. When the token expires (or is revoked: re-checked every
 *   `revalidateMs`), the socket is closed with 4403 too: refresh, reconnect, resubscribe, catch up.
 * - Queries and mutations too, when `runOperation` is set: each answered with one `next` (what HTTP
 *   answers with 200) then `complete`, in one socket write at the end of the event-loop turn, or
 *   one `error` (the errors HTTP answers with another status).
 * - On shutdown every socket is closed with 1001 (Going Away): reconnect, possibly to another replica.
 */
export interface SubscriptionEndpointOptions {
  httpServer: http.Server;
  planner: () => SubscriptionPlanner;
  hub: SubscriptionHub;
  /** Verifies `connectionParams.authorization` exactly as the HTTP path does the Authorization header. */
  authenticate(authorization: string | undefined): Promise<Viewer | null>;
  logger: Logger;
  isProduction: boolean;
  keepAliveMs: number;
  revalidateMs: number;
  maxSubscriptionsPerConnection: number;
  /**
   * Queries and mutations over all connections at once, from admission to answer; one more is
   * refused with SERVICE_UNAVAILABLE (`retryAfterSeconds`). Default: no cap.
   */
  maxOperationsInFlight?: number;
  /** Largest WebSocket message accepted; a bigger one closes the socket with 1009. */
  maxPayloadBytes: number;
  /** How long stop() lets clients answer the 1001 close before cutting them off. */
  closeGraceMs: number;
  /** The client's address of an upgrade request (TRUST_PROXY); default the socket's address. */
  clientIp?: (request: http.IncomingMessage) => string;
  /**
   * Lets a WebSocket handshake in (blocklist, caps, budgets), with the slot it takes; or refuses it
   * with an HTTP answer (403, 429, 503).
   */
  admitUpgrade?: (
    clientIp: string,
  ) => Promise<
    | { admitted: true; release: () => void }
    | { admitted: false; status: number; message: string; headers: Record<string, string> }
  >;
  /** A slot among a signed-in user's open connections, given back on close; null: closed with 4429. */
  takeUserSocket?: (userId: string) => (() => void) | null;
  /**
   * Edge protection for one subscribe message (safelist, budgets, query limits): the query text to
   * run, or the errors to answer with.
   */
  checkSubscribe?: (args: {
    viewer: Viewer | null;
    clientIp: string;
    payload: { query?: unknown; extensions?: unknown };
    schema: GraphQLSchema;
  }) => Promise<{ query: string } | GraphQLError[]>;
  /** Runs a query or mutation sent over the socket; absent: only subscriptions run. */
  runOperation?: (operation: SocketOperation) => Promise<SocketOperationOutcome>;
  /** The query text a subscribe message names (its own, or its persisted hash's); default its `query`. */
  resolveQuery?: (payload: {
    query?: unknown;
    extensions?: unknown;
  }) => Promise<{ query: string } | GraphQLError[]>;
  /** Most lexer tokens of a query or mutation's text (the HTTP path's parser limit). */
  maxTokens?: number;
}

export interface SubscriptionEndpoint {
  connections(): number;
  /** Queries and mutations over the sockets being run now (admission to answer). */
  operationsInFlight(): number;
  /** Closes (4403, `Forbidden: blocked`) every connection whose client address `blocked` names. */
  closeBlocked(blocked: (clientIp: string) => boolean): void;
  stop(): Promise<void>;
}

interface ConnectionState {
  viewer: Viewer | null;
  authorization: string | null;
  requestId: string;
  clientIp: string;
  /** Stops watching the connection's token (set while it is open and signed in). */
  watched?: TokenWatchHandle;
  subscriptions: number;
  /** The connection token's `exp` (epoch ms); undefined when anonymous. */
  expiresAt?: number;
}

/** What a connection keeps of its upgrade request. */
interface UpgradeInfo {
  requestId: string;
  clientIp: string;
  /** The connection's TCP socket, held (corked) to the turn's end while an answer is written. */
  tcp: Socket;
}

interface OperationContext {
  planned: PlannedSubscription;
  subscriber: Subscriber;
}

/** The context of a query or mutation that already ran: `execute` hands graphql-ws its answer. */
interface SingleAnswer {
  answer: FormattedExecutionResult;
}

function isSingleAnswer(context: unknown): context is SingleAnswer {
  return typeof context === "object" && context !== null && "answer" in context;
}

/** What graphql-ws is given for a query or mutation that already ran: any query, so that it calls `execute`. */
const SINGLE_ANSWER_DOCUMENT = parse("query{__typename}");

/** A subscription's subscriber (a class: held for hours, with its logger child made on first use). */
class SubscriberOf implements Subscriber {
  readonly viewer: Viewer | null;
  readonly authorization: string | null;
  readonly clientIp: string;
  private readonly connectionRequestId: string;
  private child: Logger | undefined;

  constructor(
    state: ConnectionState,
    readonly requestId: string,
    private readonly parent: Logger,
  ) {
    this.viewer = state.viewer;
    this.authorization = state.authorization;
    this.clientIp = state.clientIp;
    this.connectionRequestId = state.requestId;
  }

  logger(): Logger {
    return (this.child ??= this.parent.child({
      requestId: this.requestId,
      connectionRequestId: this.connectionRequestId,
    }));
  }
}

/** RFC 6455 1013 Try Again Later: a close the stock graphql-ws client retries with backoff. */
export const TRY_AGAIN_LATER = 1013;

/** A user over GATEWAY_WS_MAX_PER_USER: graphql-ws clients retry it with their backoff. */
export const TOO_MANY_CONNECTIONS = 4429;

/** Whether a result is a subgraph's refusal of an expired access token. */
function isExpiredRefusal(errors: readonly GraphQLError[] | undefined): boolean {
  return (errors ?? []).some(
    (error) => error.extensions.code === ErrorCode.UNAUTHENTICATED && error.extensions.reason === "expired",
  );
}

export function startSubscriptionEndpoint(options: SubscriptionEndpointOptions): SubscriptionEndpoint {
  const { logger, hub } = options;
  const clientIpOf =
    options.clientIp ??
    ((request: http.IncomingMessage) => unmapIpv4(request.socket.remoteAddress ?? "unknown"));
  const admitUpgrade = options.admitUpgrade;
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: "/graphql",
    maxPayload: options.maxPayloadBytes,
    ...(admitUpgrade
      ? {
          verifyClient: (
            info: { req: http.IncomingMessage },
            done: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void,
          ) => {
            admitUpgrade(clientIpOf(info.req)).then(
              (verdict) => {
                if (!verdict.admitted) return done(false, verdict.status, verdict.message, verdict.headers);
                // The address's slot is held as long as the TCP connection, upgraded or not.
                info.req.socket.on("close", verdict.release);
                done(true);
              },
              (error: unknown) => {
                logger.error({ err: error }, "graphql-ws: could not check an upgrade");
                done(false, 503, "Service Unavailable");
              },
            );
          },
        }
      : {}),
  });
  const states = new WeakMap<WebSocket, ConnectionState>();
  const tokenWatch = new ConnectionTokenWatch({
    revalidateMs: options.revalidateMs,
    logger,
    verify: (authorization) => options.authenticate(authorization),
  });
  const formatError = createErrorFormatter({
    maskInternal: options.isProduction,
    onInternal: (error: unknown) => logger.error({ err: error }, "internal error in a subscription"),
  });
  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((error) => {
      const formatted = error.toJSON();
      // Extensions a client sees on an error; everything else (serviceName, stacks…) stays inside.
      const clean: GraphQLFormattedError = {
        message: formatted.message,
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: clientExtensions(formatted.extensions),
      };
      return formatError(clean, error);
    });

  const forbid = forbidSocket;
  const kinds = new OperationKinds(options.maxTokens ?? Number.POSITIVE_INFINITY);

  /** A query or mutation over the socket, holding a subscription slot while it runs. */
  const maxOperationsInFlight = options.maxOperationsInFlight ?? Number.POSITIVE_INFINITY;
  let operationsInFlight = 0;
  const runSingle = async (
    socket: WebSocket,
    state: ConnectionState,
    payload: Record<string, unknown>,
    run: (operation: SocketOperation) => Promise<SocketOperationOutcome>,
  ): Promise<ExecutionArgs | GraphQLError[]> => {
    if (operationsInFlight >= maxOperationsInFlight) return [serviceUnavailable()];
    state.subscriptions += 1;
    operationsInFlight += 1;
    let outcome: SocketOperationOutcome;
    try {
      outcome = await run({
        authorization: state.authorization,
        clientIp: state.clientIp,
        connectionRequestId: state.requestId,
        payload,
      });
    } catch (error) {
      state.subscriptions -= 1;
      throw error;
    } finally {
      operationsInFlight -= 1;
    }
    if ("errors" in outcome) {
      state.subscriptions -= 1;
      const reason = outcome.tokenRefused;
      // After graphql-ws has sent the error message: the connection's token is refused, so it closes (4403).
      if (reason !== undefined) setImmediate(() => forbid(socket, reason));
      return outcome.errors;
    }
    // The slot is given back by onComplete, once graphql-ws has sent the answer.
    const contextValue: SingleAnswer = { answer: outcome.answer };
    return {
      schema: options.planner().pieces.apiGraphQLSchema,
      document: SINGLE_ANSWER_DOCUMENT,
      contextValue,
    };
  };

  // The subgraph ends a stream with UNAUTHENTICATED/expired at the same `exp` as the connection's
  // own timer: whichever fires first, the phone sees the contract's 4403 (refresh, reconnect,
  // catch up), not an error on one subscription. A message sent after the close is dropped.
  const closeIfConnectionExpired = (socket: WebSocket, errors: readonly GraphQLError[] | undefined) => {
    const expiresAt = states.get(socket)?.expiresAt;
    if (expiresAt === undefined || Date.now() < expiresAt - CLOCK_TOLERANCE_SECONDS * 1000) return;
    if (isExpiredRefusal(errors)) forbid(socket, "expired");
  };

  const writes = turnWrites();
  const dispose = serveGraphqlWs<UpgradeInfo>(
    wss,
    {
      onConnect: async (ctx) => {
        const { socket, upgrade } = ctx.extra;
        const params = ctx.connectionParams ?? {};
        const raw = params.authorization ?? params.Authorization;
        const state: ConnectionState = {
          viewer: null,
          authorization: null,
          requestId: upgrade.requestId,
          clientIp: upgrade.clientIp,
          subscriptions: 0,
        };
        states.set(socket, state);
        if (raw !== undefined && raw !== null && typeof raw !== "string") {
          forbid(socket, "invalid");
          return false;
        }
        const authorization = typeof raw === "string" ? raw : undefined;
        try {
          state.viewer = await options.authenticate(authorization);
        } catch (error) {
          if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAUTHENTICATED) {
            const reason = String(error.extensions.reason ?? "invalid");
            logger.info({ reason, clientIp: state.clientIp }, "graphql-ws: connection token refused");
            forbid(socket, reason);
            return false;
          }
          // The token could not be checked (JWKS or revocation store away): 1013 Try Again Later,
          // which graphql-ws clients retry (4500 would stop them for good).
          logger.error({ err: error }, "graphql-ws: could not authenticate a connection");
          socket.close(TRY_AGAIN_LATER, "Try again later");
          return false;
        }
        if (!state.viewer || authorization === undefined) return true;
        const release = options.takeUserSocket?.(state.viewer.userId);
        if (release === null) {
          logger.info(
            { userId: state.viewer.userId },
            "graphql-ws: connection over the user's open connections cap refused",
          );
          socket.close(TOO_MANY_CONNECTIONS, "Too many connections");
          return false;
        }
        if (release) socket.on("close", release);
        state.authorization = authorization;
        const expiresAt = tokenExpiry(authorization);
        if (expiresAt !== undefined) state.expiresAt = expiresAt;
        state.watched = tokenWatch.watch(socket, authorization, expiresAt);
        return true;
      },
      onClose: (ctx) => {
        states.get(ctx.extra.socket)?.watched?.stop();
      },
      onSubscribe: async (ctx, id, received) => {
        const state = states.get(ctx.extra.socket);
        if (!state) return [appError(ErrorCode.UNAUTHENTICATED, "Send connection_init first")];
        if (state.subscriptions >= options.maxSubscriptionsPerConnection) {
          return [
            appError(
              ErrorCode.RATE_LIMITED,
              `At most ${options.maxSubscriptionsPerConnection} subscriptions may run on one connection`,
            ),
          ];
        }
        let payload = received;
        if (options.runOperation) {
          const resolved = options.resolveQuery
            ? await options.resolveQuery(payload)
            : typeof payload.query === "string"
              ? { query: payload.query }
              : undefined;
          if (Array.isArray(resolved)) return resolved;
          // Checked again after the await: a burst of subscribe messages must not overshoot the limit.
          if (state.subscriptions >= options.maxSubscriptionsPerConnection) {
            return [
              appError(
                ErrorCode.RATE_LIMITED,
                `At most ${options.maxSubscriptionsPerConnection} subscriptions may run on one connection`,
              ),
            ];
          }
          if (resolved !== undefined) {
            const kind = kinds.of(resolved.query, payload.operationName);
            if (kind === "query" || kind === "mutation") {
              // As sent (Apollo resolves a persisted hash itself), but "" beside a hash means no text.
              const { query, ...rest } = payload;
              const single: Record<string, unknown> = query === "" ? rest : { ...rest, query };
              return runSingle(ctx.extra.socket, state, single, options.runOperation);
            }
            payload = { ...payload, query: resolved.query };
          }
        }
        if (options.checkSubscribe) {
          // The slot is held while the (Redis) checks run, so a burst cannot overshoot the limit.
          state.subscriptions += 1;
          const verdict = await options
            .checkSubscribe({
              viewer: state.viewer,
              clientIp: state.clientIp,
              payload,
              schema: options.planner().pieces.apiGraphQLSchema,
            })
            .finally(() => (state.subscriptions -= 1));
          if (Array.isArray(verdict)) return verdict;
          payload = { ...payload, query: verdict.query };
        }
        const planned = options.planner().prepare(payload);
        if (Array.isArray(planned)) return planned;
        const requestId = requestIdFrom(undefined);
        const connectionRequestId = state.requestId;
        const subscriber = new SubscriberOf(state, requestId, logger);
        logger.info(
          {
            requestId,
            connectionRequestId,
            operationName: planned.operationName ?? null,
            userId: state.viewer?.userId ?? null,
            operationId: id,
          },
          "subscription started",
        );
        // Counted here (not in onOperation): a burst of subscribe messages is handled concurrently.
        state.subscriptions += 1;
        const contextValue: OperationContext = { planned, subscriber };
        const args: ExecutionArgs = {
          schema: options.planner().pieces.apiGraphQLSchema,
          document: planned.document,
          variableValues: planned.variables,
          contextValue,
          ...(planned.operationName === undefined ? {} : { operationName: planned.operationName }),
        };
        return args;
      },
      subscribe: (args) => {
        const { planned, subscriber } = args.contextValue as OperationContext;
        return hub.subscribe(planned, subscriber);
      },
      execute: (args) =>
        isSingleAnswer(args.contextValue)
          ? (args.contextValue.answer as ExecutionResult)
          : {
              errors: [
                new GraphQLError("Only subscriptions run over WebSocket", {
                  extensions: { code: "BAD_REQUEST" },
                }),
              ],
            },
      onComplete: (ctx) => {
        const state = states.get(ctx.extra.socket);
        if (state) state.subscriptions = Math.max(0, state.subscriptions - 1);
      },
      onNext: (ctx, _id, _payload, args, result) => {
        closeIfConnectionExpired(ctx.extra.socket, result.errors);
        // Apollo formatted a query's or mutation's answer already, as it does HTTP's. Its `next` and
        // `complete` leave in one write.
        if (isSingleAnswer(args.contextValue)) {
          writes.hold(ctx.extra.upgrade.tcp);
          return args.contextValue.answer;
        }
        const formatted: FormattedExecutionResult = {};
        if (result.data !== undefined) formatted.data = result.data;
        if (result.errors?.length) formatted.errors = format(result.errors);
        return formatted;
      },
      onError: (ctx, _id, _payload, errors) => {
        closeIfConnectionExpired(ctx.extra.socket, errors);
        return format(errors);
      },
    },
    (request) => ({
      requestId: requestIdFrom(request.headers["x-request-id"]),
      clientIp: clientIpOf(request),
      tcp: request.socket,
    }),
    (error) => logger.error({ err: error }, "graphql-ws: internal error on a socket"),
  );
  // Pings come from keepSocketsAlive (one spread timer instead of two timers per socket).
  const stopKeepAlive = keepSocketsAlive(wss, options.keepAliveMs);

  return {
    connections: () => wss.clients.size,
    operationsInFlight: () => operationsInFlight,
    closeBlocked: (blocked) => {
      for (const socket of wss.clients) {
        const state = states.get(socket);
        if (state && blocked(state.clientIp)) {
          logger.info(
            { clientIp: state.clientIp },
            "graphql-ws: closing a connection from an address blocked since",
          );
          forbid(socket, "blocked");
        }
      }
    },
    stop: async () => {
      // graphql-ws closes every socket with 1001 (Going Away) and stops the WebSocket server once
      // they have gone; a client that does not answer the close in time is cut off.
      stopKeepAlive();
      writes.flush();
      tokenWatch.clear();
      const clients = [...wss.clients];
      const grace = setTimeout(() => {
        for (const client of clients) client.terminate();
      }, options.closeGraceMs);
      try {
        await dispose();
      } finally {
        clearTimeout(grace);
      }
    },
  };
}

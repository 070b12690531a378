import http from "node:http";
import {
  ApolloServer,
  HeaderMap,
  type ApolloServerPlugin,
  type GraphQLRequest,
  type GraphQLResponse,
  type PersistedQueryOptions,
} from "@apollo/server";
import type { GatewayInterface } from "@apollo/server-gateway-interface";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema, type ValidationRule } from "graphql";
import type { AuthContext, Viewer } from "./auth/viewer";
import {
  cacheHintsPlugin,
  collectCacheHints,
  queryCacheControl,
  viewerScopedCachePolicy,
} from "./cache-control";
import type { TrustProxy } from "./config";
import { createErrorFormatter, ErrorCode, serviceUnavailable } from "./errors";
import { asGraphQLError, holdResult, jitExecutor } from "./jit-executor";
import {
  countKnownQueryAnswer,
  knownQueries,
  plainQueryRequest,
  type KnownQuery,
  type PlainQueryBody,
} from "./known-queries";
import {
  directRequestOf,
  logGraphQLRequest,
  recordDirectAnswer,
  type DirectOperations,
  type DirectRequest,
} from "./direct-queries";
import { listen, probeRoutes, routeRequests, sendBody, sendJson, type HttpHandler } from "./http-server";
import { clientIpResolver } from "./ip";
import { jsonBodyReader } from "./json-body";
import { apolloLogger, type Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";
import { REQUEST_ID_HEADER, requestIdFrom } from "./request-id";
import type { ReadinessCheck } from "./readiness";
import { tracingStarted } from "./tracing-shutdown";

export type { GatewayInterface };
export type { HttpHandler };

/** What every request's context carries, in every process: its caller (`viewer`, `clientIp`) too. */
export interface RequestContextBase extends AuthContext {
  requestId: string;
  /** A child of the process logger bound to this request's id. */
  logger: Logger;
}

/** A request refused before Apollo sees it: answered `{ errors }` with this status and headers. */
export interface HttpRefusal {
  status: number;
  errors: GraphQLFormattedError[];
  headers?: Record<string, string>;
}

/**
 * What a request let in before its admission answered becomes once it has: "admitted" (its answer
 * is sent), a refusal (sent instead), or "again" (the caller's standing changed, e.g. a revoked
 * token: the request is answered anew, `authenticate` deciding again).
 */
export type AdmissionOutcome = "admitted" | "again" | HttpRefusal;

/**
 * `beforeBody`'s third answer: go on at once (read the body, run the operation) but send nothing
 * until `admission` settles; it must not reject.
 */
export interface PendingAdmission {
  admission: Promise<AdmissionOutcome>;
}

/**
 * `beforeBody`'s fourth answer: read the body first, then ask `afterBody` (given the parsed body,
 * undefined when it could not be read), whose answer counts as `beforeBody`'s would have; a refusal
 * from it is sent before the body's own error.
 */
export interface AdmissionAfterBody {
  afterBody: (body: unknown) => Promise<HttpRefusal | PendingAdmission | undefined>;
}

/** A /graphql request as Apollo will read it: GET carries the operation in `search`, POST in `body`. */
export interface GraphQLHttpRequest {
  method: string;
  /** The query string with its `?`, or "". */
  search: string;
  /** The parsed JSON body; undefined when there is none. */
  body: unknown;
  clientIp: string;
}

/**
 * Runs one operation through Apollo's request pipeline without HTTP (parse, validation rules,
 * persisted queries, plugins, the executor, formatError), with a context the caller built.
 */
export type OperationRunner<TContext> = (
  request: GraphQLRequest,
  contextValue: TContext,
) => Promise<GraphQLResponse>;

/**
 * What runs the operations: a schema (compiled by graphql-jit, kit/src/jit-executor.ts, unless
 * `execution` says "graphql-js" or tracing has patched graphql-js) or a gateway.
 */
export type GraphQLSource =
  { schema: GraphQLSchema; execution?: "compiled" | "graphql-js" } | { gateway: GatewayInterface };

export interface ServiceOptions<TContext extends RequestContextBase> {
  name: string;
  logger: Logger;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  isProduction: boolean;
  graphql: GraphQLSource;
  /** Whose X-Forwarded-For to believe for `clientIp` (Express's `trust proxy` semantics, kit/src/ip.ts). */
  trustProxy: TrustProxy;
  /**
   * The caller from the Authorization header: null for none (anonymous). Throwing an
   * UNAUTHENTICATED GraphQLError refuses the request with HTTP 401. Absent: everyone is anonymous.
   */
  authenticate?: (
    authorizationHeader: string | undefined,
    req: http.IncomingMessage,
  ) => Promise<Viewer | null>;
  /** Extra GET routes beside /graphql, /healthz and /readyz, by path (e.g. the JWKS). */
  getRoutes?: Record<string, HttpHandler>;
  context(base: RequestContextBase & { req: http.IncomingMessage }): Promise<TContext>;
  readiness: ReadinessCheck[];
  plugins?: ApolloServerPlugin<TContext>[];
  /** Counts this endpoint's requests, errors and latency per operation (served by the caller: getRoutes or startMetricsServer). */
  metrics?: ProcessMetrics;
  /** Extra validation rules (the gateway's query limits). */
  validationRules?: ValidationRule[];
  /** graphql-js parser limits: past `maxTokens` a document is GRAPHQL_PARSE_FAILED. */
  parseOptions?: { maxTokens?: number };
  /** Apollo's automatic persisted queries: where they are kept (default: in this process's memory). */
  persistedQueries?: PersistedQueryOptions;
  /** Largest JSON body on /graphql, in bytes (default 1 MiB); bigger is 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes?: number;
  /**
   * Runs on each /graphql request before its body is read (the gateway's blocklist and budgets): a
   * refusal is sent as it is; a pending admission lets the request run while it settles.
   */
  beforeBody?: (
    req: http.IncomingMessage,
    clientIp: string,
  ) => Promise<HttpRefusal | PendingAdmission | AdmissionAfterBody | undefined>;
  /** Runs after the JSON body is read, before Apollo (the gateway's safelist): a refusal is sent as it is. */
  beforeGraphQL?: (request: GraphQLHttpRequest) => HttpRefusal | undefined;
  /**
   * Runs first on stop, while the HTTP server still listens: close long-lived connections here
   * (WebSocket servers: tell clients to reconnect elsewhere) so the drain does not wait for them.
   */
  onStopping?: () => Promise<void>;
  /** Runs after HTTP has drained: close pools and clients here. */
  onStopped?: () => Promise<void>;
  /**
   * Lets a caller attach more to the HTTP server before it listens (e.g. a WebSocket server), with
   * the runner of operations that do not come over HTTP.
   */
  onHttpServer?: (server: http.Server, runOperation: OperationRunner<TContext>) => void;
  /**
   * A schema's plain POSTed queries and one-field mutations answered without Apollo Server's
   * pipeline, with the same answer (kit/src/known-queries.ts); default true, where it applies
   * (compiled execution, no extra plugins, persisted queries or parser limits). False: Apollo answers
   * every request.
   */
  answerKnownQueries?: boolean;
  /**
   * A gateway's plain POSTed operations answered without Apollo Server's pipeline when `run` can
   * (kit/src/direct-queries.ts), with Apollo's headers, status and bytes; else Apollo answers.
   */
  directOperations?: DirectOperations<TContext>;
}

export interface RunningService {
  name: string;
  port: number;
  /** e.g. http://127.0.0.1:4001/graphql */
  url: string;
  httpServer: http.Server;
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 5_000;

function requestLoggingPlugin<TContext extends RequestContextBase>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ contextValue }) {
      const startedAt = process.hrtime.bigint();
      return {
        async willSendResponse({ operationName, errors }) {
          logGraphQLRequest(contextValue, operationName, startedAt, errors?.length ?? 0);
        },
      };
    },
  };
}

/** A refused token becomes HTTP 401 with a `WWW-Authenticate` challenge (RFC 6750); the GraphQL error keeps code and reason. */
function unauthorized(error: GraphQLError): GraphQLError {
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: {
      ...extensions,
      http: {
        status: 401,
        headers: new HeaderMap([["www-authenticate", 'Bearer error="invalid_token"']]),
      },
    },
  });
}

/** The same error answered with HTTP `status` (and `Retry-After` when it names `retryAfterSeconds`). */
export function withHttpStatus(error: GraphQLError, status: number): GraphQLError {
  const { http: _http, ...extensions } = error.extensions;
  const retryAfter = extensions.retryAfterSeconds;
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: {
      ...extensions,
      http: {
        status,
        headers: new HeaderMap(retryAfter === undefined ? [] : [["retry-after", String(retryAfter)]]),
      },
    },
  });
}

/** A body that could not be read (too large, not JSON) gets a GraphQL-shaped JSON error. */
function unreadableBody(reason: "too-large" | "unreadable"): { errors: GraphQLFormattedError[] } {
  const tooLarge = reason === "too-large";
  return {
    errors: [
      {
        message: tooLarge ? "The request body is too large" : "The request body could not be read as JSON",
        extensions: { code: tooLarge ? ErrorCode.PAYLOAD_TOO_LARGE : "BAD_REQUEST" },
      },
    ],
  };
}

function sendRefusal(req: http.IncomingMessage, res: http.ServerResponse, refusal: HttpRefusal): void {
  for (const [name, value] of Object.entries(refusal.headers ?? {})) res.setHeader(name, value);
  sendJson(req, res, refusal.status, { errors: refusal.errors });
}

/** Apollo's view of the request's headers (repeated ones joined with ", "). */
function headerMapOf(req: http.IncomingMessage): HeaderMap {
  const headers = new HeaderMap();
  const raw = req.headers;
  for (const name in raw) {
    const value = raw[name];
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return headers;
}

/** CORS for any origin (no credentials): every /graphql answer, and the preflight (OPTIONS) answered here. */
const ALLOWED_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE";
function answerPreflight(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader("access-control-allow-methods", ALLOWED_METHODS);
  const requested = req.headers["access-control-request-headers"];
  if (requested !== undefined) res.setHeader("access-control-allow-headers", requested);
  res.setHeader("vary", "Access-Control-Request-Headers");
  res.statusCode = 204;
  res.setHeader("content-length", "0");
  res.end();
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * How long a kept-alive HTTP connection may sit idle before this process closes it: longer than
 * any client pool in front keeps one (the gateway's undici pool, load balancers' 60 s), so the
 * client always closes first and never writes a request onto a socket being closed.
 */
export const SERVICE_KEEP_ALIVE_MS = 65_000;

/**
 * One process's HTTP front on node:http: `/graphql` (Apollo Server's `executeHTTPGraphQLRequest`),
 * `/healthz` (alive), `/readyz` (its dependencies answer), extra GET routes, request ids, JSON logs
 * and a graceful stop that drains connections.
 */
export async function startService<TContext extends RequestContextBase>(
  options: ServiceOptions<TContext>,
): Promise<RunningService> {
  const { logger } = options;
  const httpServer = http.createServer();
  httpServer.keepAliveTimeout = SERVICE_KEEP_ALIVE_MS;
  httpServer.headersTimeout = SERVICE_KEEP_ALIVE_MS + 1_000;
  let stopping = false;

  const plugins: ApolloServerPlugin<TContext>[] = [
    ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: STOP_GRACE_MS }),
    options.isProduction
      ? ApolloServerPluginLandingPageDisabled()
      : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
    requestLoggingPlugin<TContext>(),
    ...(options.metrics ? [options.metrics.graphqlPlugin<TContext>()] : []),
    // Cache hints: a signed-in request's response is at most `private` (kit/src/cache-control.ts).
    viewerScopedCachePolicy<TContext>(),
    // A schema's hints without Apollo's hook on every field; a gateway keeps Apollo's plugin.
    ...("schema" in options.graphql
      ? [ApolloServerPluginCacheControlDisabled(), cacheHintsPlugin<TContext>(options.graphql.schema)]
      : []),
    ...(options.plugins ?? []),
  ];
  const common = {
    plugins,
    logger: apolloLogger(logger),
    introspection: !options.isProduction,
    // Shutdown is ours (kit/src/shutdown.ts): Apollo would stop on its own and re-send the signal,
    // which our handler would take for a second Ctrl-C.
    stopOnTerminationSignals: false,
    // Stated although they are Apollo's defaults: one operation per HTTP request (an array body is
    // refused), and no "simple" (CORS-preflight-free) requests that a browser could forge.
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    ...(options.validationRules ? { validationRules: options.validationRules } : {}),
    ...(options.parseOptions ? { parseOptions: options.parseOptions } : {}),
    ...(options.persistedQueries ? { persistedQueries: options.persistedQueries } : {}),
    includeStacktraceInErrorResponses: !options.isProduction,
    formatError: createErrorFormatter({
      maskInternal: options.isProduction,
      onInternal: (error: unknown) => logger.error({ err: error }, "internal error in a GraphQL request"),
    }),
  };
  const source = options.graphql;
  const apollo =
    "gateway" in source
      ? new ApolloServer<TContext>({ ...common, gateway: source.gateway })
      : source.execution === "graphql-js" || tracingStarted()
        ? new ApolloServer<TContext>({ ...common, schema: source.schema })
        : new ApolloServer<TContext>({ ...common, gateway: jitExecutor(source.schema) });
  await apollo.start();
  const knownQueryOf =
    "schema" in source &&
    source.execution !== "graphql-js" &&
    !tracingStarted() &&
    options.answerKnownQueries !== false &&
    !options.plugins?.length &&
    !options.persistedQueries &&
    !options.parseOptions
      ? knownQueries(source.schema, options.validationRules)
      : undefined;

  const clientIpOf = clientIpResolver(options.trustProxy);
  const readJsonBody = jsonBodyReader(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const { authenticate, beforeBody, beforeGraphQL } = options;

  const contextFor = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    clientIp: string,
  ): Promise<TContext> => {
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const requestLogger = logger.child({ requestId });
    let viewer: Viewer | null = null;
    if (authenticate) {
      try {
        viewer = await authenticate(req.headers.authorization, req);
      } catch (error) {
        if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAUTHENTICATED) {
          requestLogger.info({ reason: error.extensions.reason, clientIp }, "access token refused");
          throw unauthorized(error);
        }
        // The token could not be checked (the JWKS or the revocation store did not answer): the
        // phone is told to retry (503), not that its token is bad.
        requestLogger.error({ err: error }, "could not authenticate a request");
        throw withHttpStatus(serviceUnavailable(), 503);
      }
    }
    return options.context({ req, requestId, logger: requestLogger, viewer, clientIp });
  };

  /**
   * Runs a known query or mutation and sends its answer as Apollo Server would have (true). False
   * when Apollo must answer instead, with the same `context` promise: the caller was refused (its
   * error is Apollo's to answer; nothing ran), graphql-jit refused the variables (nothing ran:
   * graphql-js runs it), or the result has errors (held for Apollo's executor, which answers it
   * without running it again).
   */
  const answeredKnownQuery = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    known: KnownQuery,
    plain: PlainQueryBody,
    context: Promise<TContext>,
  ): Promise<boolean> => {
    const startedAt = process.hrtime.bigint();
    let contextValue: TContext;
    try {
      contextValue = await context;
    } catch {
      return false;
    }
    // A mutation's answer is never cacheable (viewerScopedCachePolicy): its hints are not collected.
    const hints = known.operation === "query" ? collectCacheHints(contextValue) : undefined;
    const result = await known.compiled.query(undefined, contextValue, plain.variables);
    if (!("data" in result)) {
      holdResult(contextValue, "graphql-js");
      return false;
    }
    if (result.errors) {
      holdResult(contextValue, { ...result, errors: result.errors.map(asGraphQLError) });
      return false;
    }
    res.setHeader(
      "cache-control",
      hints ? queryCacheControl(hints, contextValue.viewer !== null) : "no-store",
    );
    sendBody(
      req,
      res,
      200,
      "application/json; charset=utf-8",
      `${JSON.stringify({ data: result.data, extensions: result.extensions })}\n`,
    );
    countKnownQueryAnswer();
    recordDirectAnswer(
      contextValue,
      options.metrics,
      {
        operationName: known.operationName,
        metricsName: known.operationName ?? plain.operationName,
        type: known.operation,
      },
      startedAt,
    );
    return true;
  };

  const { directOperations } = options;
  /**
   * Runs a POSTed operation (`directRequestOf`) with `directOperations` and sends its answer as Apollo Server
   * would have, once the pending admission (if any) let it ("answered"; a refusal is sent instead).
   * "apollo": Apollo answers it, with the same `context` (whatever ran is held there); "again": the
   * admission asks for the request to be answered anew.
   */
  const answeredDirectly = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    plain: DirectRequest,
    context: Promise<TContext>,
    pending: Promise<AdmissionOutcome> | undefined,
  ): Promise<"answered" | "apollo" | "again"> => {
    if (!directOperations) return "apollo";
    const startedAt = process.hrtime.bigint();
    let contextValue: TContext;
    try {
      contextValue = await context;
    } catch {
      return "apollo";
    }
    const answer = await directOperations.run(plain, contextValue, req.headers);
    if (answer === undefined) return "apollo";
    const outcome = pending === undefined ? "admitted" : await pending;
    if (outcome === "again") return "again";
    if (outcome !== "admitted") {
      sendRefusal(req, res, outcome);
      return "answered";
    }
    res.setHeader("cache-control", answer.cacheControl);
    sendBody(req, res, 200, "application/json; charset=utf-8", `${JSON.stringify(answer.result)}\n`);
    recordDirectAnswer(
      contextValue,
      options.metrics,
      {
        operationName: answer.operationName,
        metricsName: answer.operationName ?? plain.operationName,
        type: answer.operationType,
      },
      startedAt,
    );
    return "answered";
  };

  const serveGraphQL = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    res.setHeader("access-control-allow-origin", "*");
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      answerPreflight(req, res);
      return;
    }
    const clientIp = clientIpOf(req);
    let pending: Promise<AdmissionOutcome> | undefined;
    let afterBody: AdmissionAfterBody["afterBody"] | undefined;
    if (beforeBody) {
      const before = await beforeBody(req, clientIp);
      if (before && "admission" in before) pending = before.admission;
      else if (before && "afterBody" in before) afterBody = before.afterBody;
      else if (before) {
        sendRefusal(req, res, before);
        return;
      }
    }
    /** Before anything is sent: the pending admission's refusal, if it refused (true: sent). */
    const refusedAfterAll = async (): Promise<boolean> => {
      const outcome = pending === undefined ? "admitted" : await pending;
      if (typeof outcome === "string") return false;
      sendRefusal(req, res, outcome);
      return true;
    };
    const read = await readJsonBody(req, res);
    if (afterBody) {
      const after = await afterBody(read.ok ? read.body : undefined);
      if (after && "admission" in after) pending = after.admission;
      else if (after) {
        sendRefusal(req, res, after);
        return;
      }
    }
    if (!read.ok) {
      if (!(await refusedAfterAll())) sendJson(req, res, read.status, unreadableBody(read.reason));
      return;
    }
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const search = queryAt < 0 ? "" : url.slice(queryAt);
    if (beforeGraphQL) {
      const refusal = beforeGraphQL({ method, search, body: read.body, clientIp });
      if (refusal) {
        if (!(await refusedAfterAll())) sendRefusal(req, res, refusal);
        return;
      }
    }
    let context: Promise<TContext> | undefined;
    if (directOperations) {
      const plain = directRequestOf(req, read.body);
      if (plain) {
        context = contextFor(req, res, clientIp);
        const direct = await answeredDirectly(req, res, plain, context, pending);
        if (direct === "answered") return;
        if (direct === "again") {
          // The caller's standing changed while it ran: answered anew, `authenticate` deciding again.
          pending = undefined;
          context = undefined;
        }
      }
    }
    if (knownQueryOf && pending === undefined) {
      const plain = plainQueryRequest(req, read.body);
      const known = plain && knownQueryOf(plain.query, plain.operationName);
      if (plain && known) {
        context = contextFor(req, res, clientIp);
        if (await answeredKnownQuery(req, res, known, plain, context)) return;
      }
    }
    const execute = () =>
      apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: {
          method: method.toUpperCase(),
          headers: headerMapOf(req),
          search,
          body: read.body,
        },
        context: () => context ?? contextFor(req, res, clientIp),
      });
    let answer: Awaited<ReturnType<typeof execute>>;
    if (pending === undefined) answer = await execute();
    else {
      // The operation ran while the admission was asked: its answer waits for the verdict.
      // Its failure is held as a value, so that it cannot go unhandled while the verdict is awaited.
      const [ran, outcome] = await Promise.all([
        execute().then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        pending,
      ]);
      if (typeof outcome !== "string") {
        sendRefusal(req, res, outcome);
        return;
      }
      if (outcome === "again") {
        context = undefined;
        answer = await execute();
      } else if (ran.ok) answer = ran.value;
      else throw ran.error;
    }
    for (const [name, value] of answer.headers) res.setHeader(name, value);
    const status = answer.status ?? 200;
    if (answer.body.kind === "complete") {
      sendBody(
        req,
        res,
        status,
        answer.headers.get("content-type") ?? "application/json",
        answer.body.string,
      );
      return;
    }
    res.statusCode = status;
    for await (const chunk of answer.body.asyncIterator) res.write(chunk);
    res.end();
  };

  httpServer.on(
    "request",
    routeRequests({
      getRoutes: { ...probeRoutes(options.name, options.readiness, () => stopping), ...options.getRoutes },
      other: (req, res, path) => {
        if (path !== "/graphql") return false;
        serveGraphQL(req, res).catch((error: unknown) => {
          logger.error({ err: error }, "could not answer a GraphQL request");
          if (res.headersSent) res.destroy();
          else
            sendJson(req, res, 500, {
              errors: [
                { message: "Internal server error", extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } },
              ],
            });
        });
        return true;
      },
      onError: (error) => logger.error({ err: error }, "an HTTP route failed"),
    }),
  );

  options.onHttpServer?.(httpServer, (request, contextValue) =>
    apollo.executeOperation(request, { contextValue }),
  );
  const { port, displayHost } = await listen(httpServer, options.port, options.host);
  const url = `http://${displayHost}:${port}/graphql`;
  logger.info({ url }, `${options.name} listening`);

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      logger.info(`${options.name} stopping`);
      await options.onStopping?.();
      await apollo.stop();
      await options.onStopped?.();
      logger.info(`${options.name} stopped`);
    })();
    return stopped;
  };
  return { name: options.name, port, url, httpServer, stop };
}

import http from "node:http";
import { addProbeRoutes, listen } from "./http-server";
import cors from "cors";
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from "express";
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type PersistedQueryOptions } from "@apollo/server";
import type { GatewayInterface } from "@apollo/server-gateway-interface";

export type { GatewayInterface };
import { expressMiddleware } from "@as-integrations/express5";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { GraphQLError, type GraphQLSchema, type ValidationRule } from "graphql";
import type { AuthContext, Viewer } from "./auth/viewer";
import { viewerScopedCachePolicy } from "./cache-control";
import type { TrustProxy } from "./config";
import { createErrorFormatter, ErrorCode, serviceUnavailable } from "./errors";
import { apolloLogger, type Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";
import { unmapIpv4 } from "./ip";
import { REQUEST_ID_HEADER, requestIdFrom } from "./request-id";
import type { ReadinessCheck } from "./readiness";

/** What every request's context carries, in every process: its caller (`viewer`, `clientIp`) too. */
export interface RequestContextBase extends AuthContext {
  requestId: string;
  /** A child of the process logger bound to this request's id. */
  logger: Logger;
}

export type GraphQLSource = { schema: GraphQLSchema } | { gateway: GatewayInterface };

export interface ServiceOptions<TContext extends RequestContextBase> {
  name: string;
  logger: Logger;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  isProduction: boolean;
  graphql: GraphQLSource;
  /** Express `trust proxy`: whose X-Forwarded-For to believe for `clientIp`. */
  trustProxy: TrustProxy;
  /**
   * The caller from the Authorization header: null for none (anonymous). Throwing an
   * UNAUTHENTICATED GraphQLError refuses the request with HTTP 401. Absent: everyone is anonymous.
   */
  authenticate?: (authorizationHeader: string | undefined, req: Request) => Promise<Viewer | null>;
  /** Extra GET routes beside /graphql, /healthz and /readyz, by path (e.g. the JWKS). */
  getRoutes?: Record<string, RequestHandler>;
  context(base: RequestContextBase & { req: Request }): Promise<TContext>;
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
  /** Express handlers on /graphql before the body is read (the gateway's blocklist and per-address budget). */
  beforeBody?: RequestHandler[];
  /** Express handlers on /graphql after the JSON body is parsed, before Apollo (the gateway's safelist). */
  beforeGraphQL?: RequestHandler[];
  /**
   * Runs first on stop, while the HTTP server still listens: close long-lived connections here
   * (WebSocket servers: tell clients to reconnect elsewhere) so the drain does not wait for them.
   */
  onStopping?: () => Promise<void>;
  /** Runs after HTTP has drained: close pools and clients here. */
  onStopped?: () => Promise<void>;
  /** Lets a caller attach more to the HTTP server before it listens (e.g. a WebSocket server). */
  onHttpServer?: (server: http.Server) => void;
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
          const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
          contextValue.logger.info(
            {
              operationName: operationName ?? null,
              durationMs: Math.round(durationMs * 10) / 10,
              errors: errors?.length ?? 0,
              userId: contextValue.viewer?.userId ?? null,
              clientIp: contextValue.clientIp,
            },
            "graphql request",
          );
        },
      };
    },
  };
}

/** The client's address: Express's `req.ip` (which honours `trust proxy`), IPv4-mapped IPv6 unwrapped. */
function clientIpOf(req: Request): string {
  return unmapIpv4(req.ip ?? req.socket.remoteAddress ?? "unknown");
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

/** A body Express could not read (too large, not JSON) gets a GraphQL-shaped JSON error, not an HTML page. */
const bodyErrorHandler: ErrorRequestHandler = (
  error: { type?: unknown; status?: unknown },
  _req,
  res,
  next,
) => {
  if (res.headersSent || typeof error.status !== "number" || error.status < 400 || error.status >= 500) {
    next(error);
    return;
  }
  const tooLarge = error.type === "entity.too.large";
  res.status(error.status).json({
    errors: [
      {
        message: tooLarge ? "The request body is too large" : "The request body could not be read as JSON",
        extensions: { code: tooLarge ? ErrorCode.PAYLOAD_TOO_LARGE : "BAD_REQUEST" },
      },
    ],
  });
};

/**
 * Express hashes every answer for an ETag; only a GET (a cacheable query) can be answered 304 by
 * it, so other methods' answers skip the hash (docs/gateway.md, "Caching").
 */
const withoutPostEtag: RequestHandler = (req, res, next) => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    const app = res.app;
    // `res.app` is Express's documented handle on the app's settings; this answer reads a view of
    // them without the ETag function.
    Object.defineProperty(res, "app", {
      value: Object.create(app, {
        settings: { value: Object.create(app.settings, { "etag fn": { value: undefined } }) },
      }),
      configurable: true,
    });
  }
  next();
};

/**
 * One process's HTTP front: `/graphql` (Apollo Server), `/healthz` (alive), `/readyz` (its
 * dependencies answer), request ids, JSON logs and a graceful stop that drains connections.
 */
export async function startService<TContext extends RequestContextBase>(
  options: ServiceOptions<TContext>,
): Promise<RunningService> {
  const { logger } = options;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", options.trustProxy);
  const httpServer = http.createServer(app);
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
  const apollo =
    "gateway" in options.graphql
      ? new ApolloServer<TContext>({ ...common, gateway: options.graphql.gateway })
      : new ApolloServer<TContext>({ ...common, schema: options.graphql.schema });
  await apollo.start();

  addProbeRoutes(app, options.name, options.readiness, () => stopping);
  for (const [path, handler] of Object.entries(options.getRoutes ?? {})) app.get(path, handler);
  app.use(
    "/graphql",
    cors<cors.CorsRequest>(),
    withoutPostEtag,
    ...(options.beforeBody ?? []),
    express.json({ limit: options.maxBodyBytes ?? "1mb" }),
    ...(options.beforeGraphQL ?? []),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
        res.setHeader(REQUEST_ID_HEADER, requestId);
        const requestLogger = logger.child({ requestId });
        const clientIp = clientIpOf(req);
        let viewer: Viewer | null = null;
        if (options.authenticate) {
          try {
            viewer = await options.authenticate(req.headers.authorization, req);
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
      },
    }),
  );

  app.use("/graphql", bodyErrorHandler);

  options.onHttpServer?.(httpServer);
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

import type { IncomingMessage } from "node:http";
import type { ApolloServerPlugin, GraphQLRequest, PersistedQueryOptions } from "@apollo/server";
import {
  GraphQLError,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from "graphql";
import {
  accessTokenRefused,
  appError,
  bearerToken,
  clientExtensions,
  ErrorCode,
  clientIpResolver,
  type AccessTokenVerifier,
  type AdmissionAfterBody,
  type AdmissionOutcome,
  type GatewayConfig,
  type GraphQLHttpRequest,
  type HttpRefusal,
  type Logger,
  type PendingAdmission,
  type Redis,
  type Viewer,
  serviceUnavailable,
  withHttpStatus,
  overBudget,
} from "@hv/kit";
import { BlocklistStore, LiveBlocklist } from "./blocklist";
import { PrefixingKeyValueCache } from "@apollo/utils.keyvaluecache";
import {
  loadManifest,
  notAllowed,
  persistedQueryHash,
  RedisPersistedQueryCache,
  Safelist,
  sha256Hex,
  type PersistedQueryManifest,
} from "./persisted";
import { queryLimitProtection } from "./query-limits";
import {
  asHttp429,
  EdgeRateLimits,
  isRateLimited,
  samePoints,
  type SensitivePoints,
  type SensitiveSpend,
} from "./rate-limits";
import { KnownOperations } from "./known-operations";
import { EdgeAdmission, type AdmissionVerdict } from "./admission";
import { SocketCaps } from "./socket-caps";
import type { PersistedTexts } from "../direct-operations";

export { BlocklistStore, LiveBlocklist, parseCidr } from "./blocklist";
export {
  buildManifest,
  loadManifest,
  renderManifest,
  sha256Hex,
  MANIFEST_PATH,
  OPERATIONS_DIR,
} from "./persisted";

interface ContextWithCaller {
  viewer: Viewer | null;
  clientIp: string;
  /** Set when the request runs before its admission answered (`EdgeProtection.admissionOf`). */
  admission?: Promise<AdmissionOutcome> | undefined;
  /** Set when the admission spent the operation's sensitive budgets too (`EdgeProtection.precountedOf`). */
  precounted?: PrecountedBudgets | undefined;
}

/**
 * The sensitive budgets the admission's round trip spent for a request, from its body, before Apollo
 * resolved its operation; `over`: the first found over (set once the admission answered).
 */
export interface PrecountedBudgets {
  points: SensitivePoints;
  over?: { limit: string; msBeforeNext: number };
}

/**
 * Uncompressed POST bodies announced at most this long are read before the admission is asked, so
 * that a known operation's budgets join its round trip.
 */
const ADMISSION_AFTER_BODY_MAX_BYTES = 16 * 1024;
/** Operations remembered by `KnownOperations`. */
const MAX_KNOWN_OPERATIONS = 256;

export interface ProtectionOptions {
  config: GatewayConfig;
  redis: Redis;
  logger: Logger;
  /** Redis key prefix of the blocklist, budgets and persisted queries (default `<EVENTS_PREFIX>:gw`). */
  keyPrefix?: string;
  /** Safelist mode: this manifest instead of operations/persisted-query-manifest.json (tests). */
  manifest?: PersistedQueryManifest;
  /** Checks access tokens' signatures; revocation is asked in the admission's Redis round trip. */
  verifier: AccessTokenVerifier;
}

/** A WebSocket upgrade let in (with the address slot to give back when the socket closes), or refused with an HTTP answer. */
export type UpgradeVerdict =
  | { admitted: true; release: () => void }
  | { admitted: false; status: number; message: string; headers: Record<string, string> };

/** What a subscribe message over WebSocket may run: the query text, or why not. */
export type SubscribeVerdict = { query: string } | GraphQLError[];

/**
 * A query or mutation over WebSocket let in (its caller, and the sensitive budgets its admission
 * spent), or refused with the errors HTTP would answer; `tokenRefused`: the connection's token is
 * refused (`revoked`, `expired`, `invalid`), so the connection must close too.
 */
export type OperationAdmission =
  | { admitted: true; viewer: Viewer | null; precounted: PrecountedBudgets | undefined }
  | { admitted: false; errors: GraphQLError[]; tokenRefused?: string };

export interface EdgeProtection {
  /**
   * kit's hook on /graphql before the body is read: blocklist (403), then one Redis round trip for
   * the per-address budget (429), the token's revocation and the per-user budget (429). When the
   * caller's budgets are known to be far from exhausted, the request runs while that round trip is
   * under way (a pending admission): its answer waits for the verdict, and only a query reaches a
   * subgraph before it (docs/gateway.md, "Protection"). A small uncompressed POST is admitted once
   * its body is read (`afterBody`), in the same round trip as its known operation's sensitive budgets.
   */
  beforeBody(
    req: IncomingMessage,
    clientIp: string,
  ): Promise<HttpRefusal | PendingAdmission | AdmissionAfterBody | undefined>;
  /** The pending admission of a request that runs before its verdict (for its context), else undefined. */
  admissionOf(req: IncomingMessage): Promise<AdmissionOutcome> | undefined;
  /** The sensitive budgets a request's admission spent (its context's `precounted`), else undefined. */
  precountedOf(req: IncomingMessage): PrecountedBudgets | undefined;
  /** HTTP requests that ran before their admission answered, and how many of those it then refused. */
  admissionStats(): { early: number; earlyRefused: number };
  /**
   * kit's `authenticate` for HTTP requests: the caller `beforeBody` admitted (null: anonymous),
   * or its refusal of the token (401, or 503 when the signing keys could not be read).
   */
  authenticate(authorizationHeader: string | undefined, req: IncomingMessage): Promise<Viewer | null>;
  /** kit's hook after the JSON body is read: the safelist (safelist mode). */
  beforeGraphQL(request: GraphQLHttpRequest): HttpRefusal | undefined;
  /** Apollo plugins: per-user and per-field budgets, Armor's error-message hygiene. */
  plugins: ApolloServerPlugin[];
  validationRules: ValidationRule[];
  parseOptions: { maxTokens: number };
  persistedQueries: PersistedQueryOptions;
  maxBodyBytes: number;
  /** The client address of a raw HTTP request (WebSocket upgrade) as TRUST_PROXY defines it. */
  clientIp(request: IncomingMessage): string;
  isBlocked(ip: string): boolean;
  /**
   * A WebSocket upgrade from `ip`: the blocklist (403), the cap on open sockets per address (429),
   * the per-address request budget, which upgrades spend like requests (429 with Retry-After), or
   * 503 when the budget cannot be read.
   */
  admitUpgrade(ip: string): Promise<UpgradeVerdict>;
  /** A slot among a signed-in user's open sockets (the function gives it back); null at the cap. */
  takeUserSocket(userId: string): (() => void) | null;
  /** Runs when the blocklist changes (to close sockets of addresses blocked since). */
  onBlocklistChange(listener: () => void): void;
  /**
   * The query text a subscribe message over WebSocket names: its `query`, or the safelisted or
   * persisted one its hash names; or why not (outside the safelist, unknown hash, no text).
   */
  resolveQuery(payload: { query?: unknown; extensions?: unknown }): Promise<SubscribeVerdict>;
  /**
   * `beforeBody`'s admission for one query or mutation over WebSocket, in the same Redis round trip:
   * blocklist, the connection token's expiry and revocation, the address and user budgets, and the
   * sensitive budgets of an operation known from its payload.
   */
  admitOperation(args: {
    authorization: string | null;
    clientIp: string;
    payload: Record<string, unknown>;
  }): Promise<OperationAdmission>;
  /**
   * Whether the budgets plugin would let this mutation through without a Redis command: its
   * sensitive budgets were spent by its admission (none over), or it has none and Redis is up.
   * Learns it as the plugin does. False: Apollo Server runs it (and the plugin spends them).
   */
  mutationSettled(
    context: { precounted?: PrecountedBudgets | undefined },
    document: DocumentNode,
    operation: OperationDefinitionNode,
    request: { query: string; operationName?: string | undefined; persistedHash?: string | undefined },
  ): boolean;
  /** Persisted hashes as Apollo Server's persisted-query cache resolves and registers them (safelist or APQ). */
  persistedTexts: PersistedTexts;
  /** Safelist, budgets and query limits for one subscribe message over WebSocket. */
  checkSubscribe(args: {
    viewer: Viewer | null;
    clientIp: string;
    payload: { query?: unknown; extensions?: unknown };
    schema: GraphQLSchema;
  }): Promise<SubscribeVerdict>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function refusal(
  status: number,
  error: GraphQLFormattedError,
  headers?: Record<string, string>,
): HttpRefusal {
  return headers === undefined ? { status, errors: [error] } : { status, errors: [error], headers };
}

/** The RATE_LIMITED error of an admission over the address or user budget. */
function overAdmissionBudget(verdict: { limit: string; retryAfterSeconds: number }): GraphQLError {
  return appError(ErrorCode.RATE_LIMITED, `Too many attempts: try again in ${verdict.retryAfterSeconds} s`, {
    details: { retryAfterSeconds: verdict.retryAfterSeconds, limit: verdict.limit },
  });
}

/** The FORBIDDEN error of a request from a blocked address. */
function blockedAddress(): GraphQLError {
  return appError(ErrorCode.FORBIDDEN, "Requests from this address are blocked", {
    details: { reason: "blocked" },
  });
}

function formatted(error: GraphQLError): GraphQLFormattedError {
  return { message: error.message, extensions: clientExtensions(error.extensions) };
}

/**
 * Everything the gateway does to keep hostile traffic away from the subgraphs (README
 * "Protection"), assembled from the configuration and wired into kit's startService and the
 * graphql-ws endpoint by gateway/src/server.ts.
 */
export function createEdgeProtection(options: ProtectionOptions): EdgeProtection {
  const { config, redis, logger } = options;
  const settings = config.protection;
  const keyPrefix = options.keyPrefix ?? `${config.eventsPrefix}:gw`;
  const log = logger.child({ component: "protection" });
  const limits = queryLimitProtection(settings.queryLimits);
  const budgets = new EdgeRateLimits(redis, settings.rateLimits, `${keyPrefix}:rl`);
  const admissionBudgets = budgets.admissionBudgets();
  const admission = new EdgeAdmission(redis, admissionBudgets.address, admissionBudgets.user);
  /** What `guardRequest` found about each admitted request's caller, for `authenticate`. */
  const callers = new WeakMap<IncomingMessage, { viewer: Viewer | null } | { refusal: unknown }>();
  /** The admissions of requests running before their verdict. */
  const pendingAdmissions = new WeakMap<IncomingMessage, Promise<AdmissionOutcome>>();
  const earlyCounts = { early: 0, earlyRefused: 0 };
  /** Requests whose admission spent their operation's sensitive budgets. */
  const precounted = new WeakMap<IncomingMessage, PrecountedBudgets>();
  const knownOperations = new KnownOperations(MAX_KNOWN_OPERATIONS);
  const store = new BlocklistStore(redis, keyPrefix);
  const blocklist = new LiveBlocklist(store, redis, settings.blocklistRefreshSeconds, log);
  const safelist =
    settings.operations === "safelist" ? new Safelist(options.manifest ?? loadManifest()) : undefined;
  const socketCaps = new SocketCaps(settings.socketCaps);
  // While the client is not connected, a budget's command would wait for ioredis's reconnect
  // attempts (seconds): refuse at once instead (503, retried), as the budgets fail closed anyway.
  const countBudget = async <T>(consume: () => Promise<T>): Promise<T> => {
    if (redis.status !== "ready") throw new Error(`redis not connected (${redis.status})`);
    return consume();
  };
  const apqCache = new RedisPersistedQueryCache(redis, `${keyPrefix}:apq:`, settings.apqTtlSeconds);
  const persistedQueries: PersistedQueryOptions = safelist
    ? { cache: safelist.asCache(), ttl: null }
    : {
        cache: PrefixingKeyValueCache.cacheDangerouslyDoesNotNeedPrefixesForIsolation(apqCache),
        ttl: settings.apqTtlSeconds,
      };

  /** The caller by its token's signature (revocation is the admission's): null for none. */
  const inspectCaller = async (header: string | undefined) => {
    if (header === undefined) return null;
    const token = bearerToken(header);
    if (token === undefined) {
      throw accessTokenRefused("invalid", "The Authorization header must be `Bearer <access token>`");
    }
    return options.verifier.inspect(token);
  };

  const guardRequest = async (
    req: IncomingMessage,
    ip: string,
  ): Promise<HttpRefusal | PendingAdmission | AdmissionAfterBody | undefined> => {
    if (blocklist.isBlocked(ip)) {
      log.info({ clientIp: ip }, "request from a blocked address refused");
      return refusal(403, formatted(blockedAddress()));
    }
    // A token that does not verify still spends the address budget; its refusal (401) comes later,
    // from `authenticate`, as it does without the admission.
    let tokenRefusal: unknown;
    const caller = await inspectCaller(req.headers.authorization).catch((error: unknown) => {
      tokenRefusal = error;
      return null;
    });
    const length = Number(req.headers["content-length"] ?? Number.NaN);
    const encoded = req.headers["content-encoding"] !== undefined;
    if (req.method === "POST" && !encoded && length <= ADMISSION_AFTER_BODY_MAX_BYTES) {
      // A small body is read first: when it names a known operation, its budgets join the admission.
      return {
        afterBody: async (body) => {
          const points = tokenRefusal === undefined ? knownOperations.pointsOfBody(body) : undefined;
          return guardCaller(req, ip, caller, tokenRefusal, points);
        },
      };
    }
    return guardCaller(req, ip, caller, tokenRefusal, undefined);
  };

  /** The admission, run early when the caller is far from its budgets, else awaited. */
  const guardCaller = async (
    req: IncomingMessage,
    ip: string,
    caller: Awaited<ReturnType<typeof inspectCaller>>,
    tokenRefusal: unknown,
    points: SensitivePoints | undefined,
  ): Promise<HttpRefusal | PendingAdmission | undefined> => {
    const spends = points === undefined ? [] : budgets.sensitiveSpends(points, caller?.viewer ?? null, ip);
    if (points !== undefined) precounted.set(req, { points });
    if (tokenRefusal === undefined && redis.status === "ready" && admission.mayRunEarly(ip, caller)) {
      // Far from its budgets: the request runs while Redis counts it; its answer waits for this.
      callers.set(req, { viewer: caller?.viewer ?? null });
      earlyCounts.early += 1;
      const outcome = admit(req, ip, caller, undefined, spends).then((refused): AdmissionOutcome => {
        const verdict = refused ?? ("refusal" in (callers.get(req) ?? {}) ? "again" : "admitted");
        if (verdict !== "admitted") earlyCounts.earlyRefused += 1;
        return verdict;
      });
      pendingAdmissions.set(req, outcome);
      return { admission: outcome };
    }
    return admit(req, ip, caller, tokenRefusal, spends);
  };

  /**
   * The admission's round trip (`what` names the caller in logs): its verdict, or the refusal when
   * the budgets' Redis is away (503: fail closed, with a code the phone retries) or a budget is spent (429).
   */
  const countAdmission = async (
    ip: string,
    caller: Awaited<ReturnType<typeof inspectCaller>>,
    spends: ReadonlyArray<SensitiveSpend>,
    what: string,
  ): Promise<
    Exclude<AdmissionVerdict, { kind: "over-budget" }> | { refused: GraphQLError; status: 429 | 503 }
  > => {
    let verdict: AdmissionVerdict;
    try {
      verdict = await countBudget(() => admission.admit(ip, caller, spends));
    } catch (error) {
      log.warn({ err: error }, `could not count ${what} against its budgets`);
      return { refused: serviceUnavailable(), status: 503 };
    }
    if (verdict.kind !== "over-budget") return verdict;
    log.info(
      { clientIp: ip, userId: caller?.viewer.userId ?? null, limit: verdict.limit },
      `${what} over a rate budget`,
    );
    return { refused: overAdmissionBudget(verdict), status: 429 };
  };

  /** The admission's round trip and its verdict; sets what `authenticate` will find (the caller or its refusal). */
  const admit = async (
    req: IncomingMessage,
    ip: string,
    caller: Awaited<ReturnType<typeof inspectCaller>>,
    tokenRefusal: unknown,
    spends: ReadonlyArray<SensitiveSpend>,
  ): Promise<HttpRefusal | undefined> => {
    const verdict = await countAdmission(ip, caller, spends, "a request");
    if ("refused" in verdict) {
      return refusal(verdict.status, formatted(verdict.refused), {
        "retry-after": String(verdict.refused.extensions.retryAfterSeconds),
      });
    }
    if (verdict.kind === "revoked") tokenRefusal = accessTokenRefused("revoked");
    else if (verdict.operationOver !== undefined) {
      const record = precounted.get(req);
      if (record !== undefined) record.over = verdict.operationOver;
    }
    callers.set(
      req,
      tokenRefusal === undefined ? { viewer: caller?.viewer ?? null } : { refusal: tokenRefusal },
    );
    return undefined;
  };

  /** A subscribe message's query text: its own, or the one its safelisted or persisted hash names. */
  const resolveQuery = async (payload: {
    query?: unknown;
    extensions?: unknown;
  }): Promise<SubscribeVerdict> => {
    if (safelist) {
      const verdict = safelist.resolve(payload.query, payload.extensions);
      return verdict instanceof GraphQLError ? [verdict] : { query: verdict.query };
    }
    // graphql-ws clients send "" beside a persisted query's hash.
    if (typeof payload.query === "string" && (payload.query !== "" || payload.extensions === undefined))
      return { query: payload.query };
    const hash = persistedQueryHash(payload.extensions);
    let stored: string | undefined;
    try {
      stored = hash === undefined ? undefined : await apqCache.get(hash);
    } catch (error) {
      log.warn({ err: error }, "could not read a persisted query for a WebSocket operation");
      return [serviceUnavailable()];
    }
    if (stored !== undefined) return { query: stored };
    return hash === undefined
      ? [appError(ErrorCode.BAD_USER_INPUT, "Send the subscription's text as `query`", { field: "query" })]
      : [new GraphQLError("PersistedQueryNotFound", { extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } })];
  };

  /** `guardRequest` and `admit` for one query or mutation over WebSocket (no early run: it waits for the verdict). */
  const admitOperation: EdgeProtection["admitOperation"] = async ({ authorization, clientIp, payload }) => {
    if (blocklist.isBlocked(clientIp)) return { admitted: false, errors: [blockedAddress()] };
    let caller: Awaited<ReturnType<typeof inspectCaller>>;
    try {
      caller = await inspectCaller(authorization ?? undefined);
    } catch (error) {
      if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAUTHENTICATED) {
        return {
          admitted: false,
          errors: [error],
          tokenRefused: String(error.extensions.reason ?? "invalid"),
        };
      }
      log.error({ err: error }, "could not authenticate a WebSocket operation");
      return { admitted: false, errors: [serviceUnavailable()] };
    }
    const points = knownOperations.pointsOfBody(payload);
    const spends =
      points === undefined ? [] : budgets.sensitiveSpends(points, caller?.viewer ?? null, clientIp);
    const verdict = await countAdmission(clientIp, caller, spends, "a WebSocket operation");
    if ("refused" in verdict) return { admitted: false, errors: [verdict.refused] };
    if (verdict.kind === "revoked") {
      return { admitted: false, errors: [accessTokenRefused("revoked")], tokenRefused: "revoked" };
    }
    const precountedBudgets: PrecountedBudgets | undefined =
      points === undefined
        ? undefined
        : verdict.operationOver === undefined
          ? { points }
          : { points, over: verdict.operationOver };
    return { admitted: true, viewer: caller?.viewer ?? null, precounted: precountedBudgets };
  };

  const guardSafelist = (request: GraphQLHttpRequest): HttpRefusal | undefined => {
    if (!safelist) return undefined;
    // GET carries `query` and `extensions` (JSON text) in the URL; POST in the JSON body. An array
    // body (a batch) is left to Apollo, which refuses it.
    let source: unknown = request.body;
    if (request.method === "GET") {
      const params = new URLSearchParams(request.search);
      source = { query: params.get("query") ?? undefined, extensions: params.get("extensions") ?? undefined };
    }
    if (Array.isArray(source) || source === null || typeof source !== "object") return undefined;
    const { query, extensions } = source as { query?: unknown; extensions?: unknown };
    const verdict = safelist.resolve(query, extensions);
    if (verdict instanceof GraphQLError) {
      log.info(
        { clientIp: request.clientIp, hash: persistedQueryHash(extensions) ?? null },
        "operation outside the safelist refused",
      );
      return refusal(400, formatted(verdict));
    }
    return undefined;
  };

  const budgetsPlugin: ApolloServerPlugin = {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, document, operation, request, source }) {
          const { viewer, clientIp, admission: pending } = contextValue as unknown as ContextWithCaller;
          // Only a query reaches a subgraph before its admission answered; anything else waits for it
          // (a refused request's answer is replaced by its refusal: this error is never sent).
          if (operation?.operation !== "query" && pending !== undefined && (await pending) !== "admitted") {
            throw new GraphQLError("The request was not admitted");
          }
          // The address and user budgets were spent by guardRequest; mutations add their fields',
          // which the admission spent already when the body named an operation known to have them.
          if (operation?.operation !== "mutation") return;
          const points = budgets.sensitivePoints(document, operation);
          knownOperations.learn(request, source, points);
          const spent = (contextValue as unknown as ContextWithCaller).precounted;
          try {
            if (spent !== undefined && samePoints(spent.points, points)) {
              if (spent.over !== undefined)
                throw overBudget({ name: spent.over.limit }, spent.over.msBeforeNext);
              return;
            }
            const spends = budgets.sensitiveSpends(points, viewer, clientIp);
            await countBudget(() => budgets.consumeSensitive(spends));
          } catch (error) {
            if (isRateLimited(error)) {
              log.info(
                { clientIp, userId: viewer?.userId ?? null, limit: error.extensions.limit },
                "request over a rate budget",
              );
              throw asHttp429(error);
            }
            log.warn({ err: error }, "could not count an operation against its budgets");
            throw withHttpStatus(serviceUnavailable(), 503);
          }
        },
      };
    },
  };

  const mutationSettled: EdgeProtection["mutationSettled"] = (context, document, operation, request) => {
    const points = budgets.sensitivePoints(document, operation);
    const learned: GraphQLRequest = { query: request.query };
    if (request.operationName !== undefined) learned.operationName = request.operationName;
    if (request.persistedHash !== undefined)
      learned.extensions = { persistedQuery: { version: 1, sha256Hash: request.persistedHash } };
    knownOperations.learn(learned, request.query, points);
    if (points.length === 0) return redis.status === "ready";
    const spent = context.precounted;
    return spent !== undefined && spent.over === undefined && samePoints(spent.points, points);
  };

  const persistedTexts: PersistedTexts = safelist
    ? {
        resolve: async (hash, query) => {
          const body = safelist.verifiedBody(hash);
          return body === undefined || (query !== undefined && query !== body)
            ? undefined
            : { query: body, register: false, reread: false };
        },
        // Apollo's set on the safelist's cache stores nothing.
        register: () => undefined,
      }
    : {
        resolve: async (hash, query) => {
          if (query !== undefined)
            return sha256Hex(query) === hash ? { query, register: true, reread: false } : undefined;
          try {
            const stored = await apqCache.get(hash);
            return stored === undefined || stored === ""
              ? undefined
              : { query: stored, register: false, reread: true };
          } catch (error) {
            log.warn({ err: error }, "could not read a persisted query");
            return undefined;
          }
        },
        register: (hash, query) => {
          apqCache.set(hash, query, { ttl: settings.apqTtlSeconds }).catch((error: unknown) => {
            log.warn({ err: error }, "could not store a persisted query");
          });
        },
      };

  return {
    mutationSettled,
    persistedTexts,
    beforeBody: guardRequest,
    admissionOf: (req) => pendingAdmissions.get(req),
    precountedOf: (req) => precounted.get(req),
    admissionStats: () => ({ ...earlyCounts }),
    async authenticate(_authorizationHeader, req) {
      const found = callers.get(req);
      if (found === undefined) throw new Error("authenticate ran on a request guardRequest did not admit");
      if ("refusal" in found) throw found.refusal;
      return found.viewer;
    },
    beforeGraphQL: guardSafelist,
    plugins: [budgetsPlugin, ...limits.plugins],
    validationRules: limits.validationRules,
    parseOptions: { maxTokens: limits.maxTokens },
    persistedQueries,
    maxBodyBytes: settings.maxBodyBytes,
    clientIp: clientIpResolver(config.trustProxy),
    isBlocked: (ip) => blocklist.isBlocked(ip),
    async admitUpgrade(ip) {
      if (blocklist.isBlocked(ip)) {
        log.info({ clientIp: ip }, "graphql-ws: upgrade from a blocked address refused");
        return { admitted: false, status: 403, message: "Forbidden", headers: {} };
      }
      const release = socketCaps.takeAddress(ip);
      if (!release) {
        log.info(
          { clientIp: ip, max: socketCaps.perAddress },
          "graphql-ws: upgrade over the open sockets cap of its address refused",
        );
        return {
          admitted: false,
          status: 429,
          message: "Too many open connections from this address",
          headers: {},
        };
      }
      try {
        await countBudget(() => budgets.consumeAddress(ip));
        return { admitted: true, release };
      } catch (error) {
        release();
        if (isRateLimited(error)) {
          log.info(
            { clientIp: ip, limit: error.extensions.limit },
            "graphql-ws: upgrade over the address budget refused",
          );
          return {
            admitted: false,
            status: 429,
            message: "Too Many Requests",
            headers: { "retry-after": String(error.extensions.retryAfterSeconds ?? 1) },
          };
        }
        log.warn({ err: error }, "could not count an upgrade against its address budget");
        const unavailable = serviceUnavailable();
        return {
          admitted: false,
          status: 503,
          message: "Service Unavailable",
          headers: { "retry-after": String(unavailable.extensions.retryAfterSeconds) },
        };
      }
    },
    takeUserSocket: (userId) => socketCaps.takeUser(userId),
    onBlocklistChange: (listener) => blocklist.onChange(listener),
    resolveQuery,
    admitOperation,
    async checkSubscribe({ viewer, clientIp, payload, schema }) {
      const resolved = await resolveQuery(payload);
      if (Array.isArray(resolved)) return resolved;
      const query = resolved.query;
      try {
        await countBudget(async () => {
          await budgets.consumeAddress(clientIp);
          await budgets.consumeSubscribe(viewer, clientIp);
        });
      } catch (error) {
        if (isRateLimited(error)) return [error];
        // The budgets' Redis is away: this subscription is refused, the socket stays open.
        log.warn({ err: error }, "could not count a subscription against its budgets");
        return [serviceUnavailable()];
      }
      const checked = limits.check(schema, query);
      return Array.isArray(checked) ? checked : { query };
    },
    start: () => blocklist.start(),
    stop: () => blocklist.stop(),
  };
}

export type { PersistedQueryManifest } from "./persisted";
export { notAllowed };

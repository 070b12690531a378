import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from "@apollo/gateway";
import {
  accessTokenDigest,
  appError,
  bearerToken,
  clientExtensions,
  ErrorCode,
  isKnownErrorCode,
  REQUEST_ID_HEADER,
  REVOCATION_ASSERTION_HEADER,
  type AdmissionOutcome,
  type ProcessMetrics,
  type RequestContextBase,
  type RevocationAssertions,
} from "@hv/kit";
import { GraphQLError } from "graphql";
import { FlatHeaders } from "./subgraph-fetcher";
import type { PrecountedBudgets } from "./protection";

type FetcherResponse = Parameters<RemoteGraphQLDataSource["errorFromResponse"]>[0];
type GatewayResponse = Awaited<ReturnType<RemoteGraphQLDataSource["process"]>>;
type FetchRequest = Parameters<RemoteGraphQLDataSource["didEncounterError"]>[1];

/** A subgraph request ready to fetch (header names lower-cased). */
interface PreparedFetch {
  method: "POST";
  headers: Record<string, string>;
  body: string;
}

interface SubgraphErrorBody {
  errors?: Array<{ message?: unknown; extensions?: Record<string, unknown> }>;
}

interface CacheHint {
  maxAge: number;
  scope?: "PUBLIC" | "PRIVATE";
}

interface CachePolicyLike {
  restrict(hint: CacheHint): void;
}

/**
 * A subgraph response's `Cache-Control` as a cache hint, read as @apollo/gateway reads it: no
 * `max-age=<digits>` is 0 (not cacheable), `private` / `public` set the scope.
 */
export function cacheHintOf(header: string | null): CacheHint {
  const directives = new Map<string, string | true>();
  if (header) {
    for (const part of header.trim().split(/\s*,\s*/)) {
      const [key = "", value] = part.split(/\s*=\s*/, 2);
      directives.set(key, value === undefined ? true : value.replace(/^"|"$/g, ""));
    }
  }
  const hint: CacheHint = { maxAge: 0 };
  const maxAge = directives.get("max-age");
  if (typeof maxAge === "string" && /^[0-9]+$/.test(maxAge)) hint.maxAge = Number(maxAge);
  if (directives.get("private") === true) hint.scope = "PRIVATE";
  if (directives.get("public") === true) hint.scope = "PUBLIC";
  return hint;
}

/** Hints by header text: subgraphs send a handful of distinct `Cache-Control` values. */
const hintsByHeader = new Map<string, Readonly<CacheHint>>();
const MAX_CACHED_HINTS = 256;

/** `cacheHintOf`, remembered per header text (the hint is only read). */
function cachedHintOf(header: string | null): Readonly<CacheHint> {
  if (header === null) return cacheHintOf(null);
  let hint = hintsByHeader.get(header);
  if (!hint) {
    hint = Object.freeze(cacheHintOf(header));
    if (hintsByHeader.size >= MAX_CACHED_HINTS) hintsByHeader.clear();
    hintsByHeader.set(header, hint);
  }
  return hint;
}

/** Narrows the client request's cache policy by a subgraph answer's `Cache-Control`, as @apollo/gateway does. */
export function restrictCachePolicy(incomingRequestContext: unknown, header: string | null): void {
  const policy = (incomingRequestContext as { overallCachePolicy?: unknown } | undefined)?.overallCachePolicy;
  if (policy && typeof policy === "object" && "restrict" in policy) {
    (policy as CachePolicyLike).restrict(cachedHintOf(header));
  }
}

/** Statuses of a proxy or load balancer in front of a subgraph with no instance to serve. */
const UNAVAILABLE_STATUSES = new Set([502, 503, 504]);

/** What the client sees when a subgraph cannot be reached; the cause (with its address) is only logged. */
export function upstreamUnavailable(): GraphQLError {
  return appError(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    "A service behind the gateway is unavailable; try again later",
  );
}

/** The gateway's request context: the base plus the raw Authorization header, to pass on. */
export interface GatewayContext extends RequestContextBase {
  /** The caller's `Authorization` header, already verified at the edge; null when none was sent. */
  authorization: string | null;
  /** While the request runs before its admission answered: that answer (gateway/src/protection). */
  admission?: Promise<AdmissionOutcome> | undefined;
  /** The sensitive budgets the admission spent for this request (gateway/src/protection). */
  precounted?: PrecountedBudgets | undefined;
  /**
   * REVOCATION_ASSERTION_HEADER for this request's fetches with its token: the value, or, while its
   * admission has not answered, what it will be then (undefined if the admission refuses).
   */
  revocationAssertion?: string | Promise<string | undefined> | undefined;
}

/**
 * Sets `context.revocationAssertion`, the assertion that the request's admission found its token
 * not revoked: at once when the admission answered before the request ran, else a promise of it
 * that settles when the admission answers (undefined when it refuses). Other contexts
 * (subscriptions' events, fetches as nobody) carry none.
 */
export function vouchForRevocation(context: GatewayContext, assertions: RevocationAssertions): void {
  if (context.viewer === null || context.authorization === null) return;
  const token = bearerToken(context.authorization);
  if (token === undefined) return;
  // Signed before a pending admission answers and handed out only if it admits: its time is
  // never after the check it vouches for.
  const assertion = assertions.sign(accessTokenDigest(token), Date.now());
  context.revocationAssertion =
    context.admission === undefined
      ? assertion
      : context.admission.then((outcome) => (outcome === "admitted" ? assertion : undefined));
}

/**
 * Every fetch to a subgraph carries the client request's id (one id ties all log lines together),
 * the caller's access token (each subgraph verifies it again: no identity header is trusted), the
 * admission's revocation assertion when there is one, and the client's address as
 * `x-forwarded-for` (subgraphs trust it from the gateway via TRUST_PROXY).
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  // Set from the constructor's config object (RemoteGraphQLDataSource assigns it): `declare` keeps
  // class fields from resetting them.
  /** The subgraph's name in the supergraph (the metrics' `subgraph` label). */
  declare readonly subgraphName?: string;
  /** Counts every fetch (duration, outcome): queries, mutations and subscriptions' per-event fetches. */
  declare readonly metrics?: ProcessMetrics;

  constructor(
    config: Partial<RemoteGraphQLDataSource<GatewayContext>> & {
      subgraphName?: string;
      metrics?: ProcessMetrics;
    },
  ) {
    super(config);
  }

  override async process(options: GraphQLDataSourceProcessOptions<GatewayContext>) {
    const ctx = options.context as Partial<GatewayContext>;
    const pending = typeof ctx.authorization === "string" ? ctx.revocationAssertion : undefined;
    // Built while a pending admission is asked; a fetch with the caller's token then waits for
    // it, so the subgraph skips its own revocation lookup.
    const prepared = this.apq || this.didReceiveResponse ? undefined : this.prepare(options);
    const assertion = typeof pending === "object" ? await pending : pending;
    if (prepared && assertion !== undefined) prepared.headers[REVOCATION_ASSERTION_HEADER] = assertion;
    const startedAt = process.hrtime.bigint();
    let outcome: "ok" | "graphql_error" | "http_error" = "http_error";
    try {
      const response = prepared ? await this.send(options, prepared) : await super.process(options);
      outcome = response.errors?.length ? "graphql_error" : "ok";
      return response;
    } finally {
      this.metrics?.observeSubgraphFetch(
        this.subgraphName ?? "unknown",
        Number(process.hrtime.bigint() - startedAt) / 1e9,
        outcome,
      );
    }
  }

  /**
   * RemoteGraphQLDataSource's request for how the gateway uses it (no APQ to subgraphs, no
   * `didReceiveResponse`; with either, Apollo's own `process` runs): the same body, headers and
   * hooks, without node-fetch `Headers` and `Request` per fetch; `send` fetches it.
   */
  private prepare(options: GraphQLDataSourceProcessOptions<GatewayContext>): PreparedFetch {
    const { request } = options;
    const headers = new FlatHeaders();
    for (const [name, value] of request.http?.headers ?? []) headers.append(name, value);
    headers.set("content-type", "application/json");
    request.http = { method: "POST", url: this.url, headers };
    this.willSendRequest(options);
    if (!request.query) throw new Error("Missing query");
    const { http: _http, query, ...rest } = request;
    return { method: "POST", headers: headers.toRecord(), body: JSON.stringify({ query, ...rest }) };
  }

  /** RemoteGraphQLDataSource's fetch, errors and cache-policy restriction for a `prepare`d request. */
  private async send(
    options: GraphQLDataSourceProcessOptions<GatewayContext>,
    init: PreparedFetch,
  ): Promise<GatewayResponse> {
    const { context } = options;
    let response: FetcherResponse | undefined;
    let answer: GatewayResponse;
    try {
      response = await this.fetcher(this.url, init);
      if (!response.ok) throw await this.errorFromResponse(response);
      const body = await this.parseBody(response);
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new Error(`Expected JSON response body, but received: ${String(body)}`);
      }
      answer = { ...body, http: response };
    } catch (error) {
      // This class's didEncounterError reads neither the fetch request nor the response.
      this.didEncounterError(
        error as Error,
        undefined as unknown as FetchRequest,
        response,
        context as GatewayContext,
      );
      throw error;
    }
    if (this.honorSubgraphCacheControlHeader && "incomingRequestContext" in options) {
      restrictCachePolicy(options.incomingRequestContext, response.headers.get("cache-control"));
    }
    return answer;
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    const headers = request.http?.headers;
    if (!headers) return;
    // Outside a client request (e.g. the gateway's own health checks) the context is empty.
    const ctx = context as Partial<GatewayContext>;
    if (typeof ctx.requestId === "string") headers.set(REQUEST_ID_HEADER, ctx.requestId);
    if (typeof ctx.authorization === "string") headers.set("authorization", ctx.authorization);
    if (typeof ctx.clientIp === "string") headers.set("x-forwarded-for", ctx.clientIp);
  }

  /**
   * A fetch that failed below GraphQL (connection refused or reset, a body that is not JSON) is
   * logged with its cause and reaches the client as UPSTREAM_UNAVAILABLE: never the raw error,
   * which names the subgraph's address. Catalogued errors (UPSTREAM_TIMEOUT, a subgraph's refusal)
   * pass unchanged.
   */
  override didEncounterError(
    error: Error,
    _fetchRequest: unknown,
    _fetchResponse?: unknown,
    context?: GatewayContext,
  ): never {
    if (error instanceof GraphQLError && isKnownErrorCode(error.extensions.code)) throw error;
    const logger = (context as Partial<GatewayContext> | undefined)?.logger;
    logger?.warn({ err: error, subgraph: this.subgraphName ?? "unknown" }, "a subgraph could not be reached");
    throw upstreamUnavailable();
  }

  /**
   * A subgraph refuses a whole request with an HTTP error when it cannot even execute it: a
   * variable its scalars reject (400, BAD_USER_INPUT), a refused token (401). The gateway's schema
   * cannot check custom scalars, so pass the subgraph's catalogued error on rather than Apollo's
   * opaque "400: Bad Request".
   */
  override async errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
    const fallback = await super.errorFromResponse(response);
    const body = (fallback.extensions.response as { body?: unknown } | undefined)?.body as
      SubgraphErrorBody | undefined;
    const first = body?.errors?.[0];
    const code = first?.extensions?.code;
    if (UNAVAILABLE_STATUSES.has(response.status) && !isKnownErrorCode(code)) return upstreamUnavailable();
    if (
      !first ||
      typeof first.message !== "string" ||
      !isKnownErrorCode(code) ||
      code === ErrorCode.INTERNAL_SERVER_ERROR
    ) {
      // Apollo codes a bare 401/403 as UNAUTHENTICATED/FORBIDDEN, which production does not mask:
      // drop the subgraph's URL and body from what the client could see.
      const fallbackCode = fallback.extensions.code;
      if (isKnownErrorCode(fallbackCode) && fallbackCode !== ErrorCode.INTERNAL_SERVER_ERROR) {
        return new GraphQLError(fallback.message, { extensions: { code: fallbackCode } });
      }
      return fallback;
    }
    return new GraphQLError(first.message, { extensions: clientExtensions(first.extensions) });
  }
}

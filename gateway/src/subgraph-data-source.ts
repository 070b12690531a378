import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from "@apollo/gateway";
import {
  ErrorCode,
  isKnownErrorCode,
  REQUEST_ID_HEADER,
  type ProcessMetrics,
  type RequestContextBase,
} from "@hv/kit";
import { GraphQLError } from "graphql";

type FetcherResponse = Parameters<RemoteGraphQLDataSource["errorFromResponse"]>[0];

interface SubgraphErrorBody {
  errors?: Array<{ message?: unknown; extensions?: Record<string, unknown> }>;
}

/** Extensions a client may see when a subgraph refuses a request: the code and what explains it. */
const PASSED_EXTENSIONS = ["code", "field", "reason", "retryAfterSeconds"];

/** The gateway's request context: the base plus the raw Authorization header, to pass on. */
export interface GatewayContext extends RequestContextBase {
  /** The caller's `Authorization` header, already verified at the edge; null when none was sent. */
  authorization: string | null;
}

/**
 * Every fetch to a subgraph carries the client request's id (one id ties all log lines together),
 * the caller's access token (each subgraph verifies it again: no identity header is trusted) and
 * the client's address as `x-forwarded-for` (subgraphs trust it from the gateway via TRUST_PROXY).
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
    const startedAt = process.hrtime.bigint();
    let outcome: "ok" | "graphql_error" | "http_error" = "http_error";
    try {
      const response = await super.process(options);
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
    const extensions = Object.fromEntries(
      PASSED_EXTENSIONS.filter((key) => first.extensions?.[key] !== undefined).map((key) => [
        key,
        first.extensions?.[key],
      ]),
    );
    return new GraphQLError(first.message, { extensions });
  }
}

import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";

/**
 * The one catalogue of error codes clients see in `extensions.code`. Mobile clients switch on
 * these; never rename one, only add.
 */
export const ErrorCode = {
  BAD_USER_INPUT: "BAD_USER_INPUT",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /** Login or password confirmation failed; never says whether the email exists. */
  INVALID_CREDENTIALS: "INVALID_CREDENTIALS",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  RATE_LIMITED: "RATE_LIMITED",
  CONFLICT: "CONFLICT",
  /** A per-user allowance of stored or pending things is used up (e.g. unfinished uploads); `extensions` name the limit. */
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  /**
   * This person cannot be added to or invited into a conversation. Deliberately one answer for an
   * unknown id, a hidden, banned or deleted account, a block either way and a declined invitation,
   * so it tells nobody which; `extensions.field` names the id.
   */
  USER_UNAVAILABLE: "USER_UNAVAILABLE",
  /**
   * A subscription ended because its source went away (a subgraph instance restarted, the gateway
   * lost its upstream connection, or the client fell too far behind): subscribe again, then catch
   * up on what was missed (e.g. `messages(after: lastSeq)`).
   */
  SUBSCRIPTION_INTERRUPTED: "SUBSCRIPTION_INTERRUPTED",
  /**
   * The gateway runs only the app's persisted operations (GATEWAY_OPERATIONS=safelist) and this
   * one is not among them: send a known operation's `extensions.persistedQuery.sha256Hash`.
   */
  PERSISTED_QUERY_NOT_ALLOWED: "PERSISTED_QUERY_NOT_ALLOWED",
  /** A service behind the gateway did not answer within GATEWAY_SUBGRAPH_TIMEOUT_MS: try again later. */
  UPSTREAM_TIMEOUT: "UPSTREAM_TIMEOUT",
  /**
   * A service behind the gateway could not be reached (connection refused or reset, or it
   * answered 502/503/504). Retry with backoff; in a partial answer, only the fields that service
   * provides are null (e.g. a chat message's `sender` while Users is down).
   */
  UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE",
  /**
   * The gateway cannot serve any request now: a store of its own (Redis: budgets, blocklist,
   * persisted queries) does not answer. HTTP 503 with `Retry-After`: retry after that many seconds.
   */
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  /** The HTTP body is larger than GATEWAY_MAX_BODY_BYTES (HTTP 413). */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes Apollo Server itself produces before our resolvers run. */
const APOLLO_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

const KNOWN_CODES = new Set<string>([...Object.values(ErrorCode), ...APOLLO_CODES]);

/**
 * The `extensions` a client may see on an error: the code and the catalogued details that explain
 * it. In production every other key (`stacktrace`, `exception`, `serviceName`, a subgraph's
 * `response`…) is dropped, whatever the service that produced the error. A new detail key must be
 * listed here to reach a client.
 */
export const CLIENT_EXTENSIONS: readonly string[] = [
  "code",
  "field",
  "reason",
  "retryAfterSeconds",
  "limit",
  "status",
  "max",
  "maxBytes",
  "maxPhotos",
  "current",
  "pendingUploads",
  "pendingBytes",
  "maxPendingUploads",
  "maxPendingBytes",
];

/** Only the CLIENT_EXTENSIONS keys of `extensions`. */
export function clientExtensions(extensions: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key of CLIENT_EXTENSIONS) if (extensions?.[key] !== undefined) kept[key] = extensions[key];
  return kept;
}

/**
 * graphql-js's hints ("Did you mean "name"?", "Did you mean the enum value "MALE"?") name parts of
 * the schema a production client was not shown; production answers leave them out.
 */
export function withoutSuggestions(message: string): string {
  return message.replace(/\s*Did you mean [^?]*\?/g, "");
}

export interface AppErrorOptions {
  /** Which input field is wrong, e.g. `input.displayName`. */
  field?: string;
  /** Extra machine-readable detail that is safe to show the client. */
  details?: Record<string, unknown>;
}

/** A client-facing error with a catalogued code. */
export function appError(code: ErrorCode, message: string, options: AppErrorOptions = {}): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code,
      ...(options.field === undefined ? {} : { field: options.field }),
      ...options.details,
    },
  });
}

/** Seconds a client is told to wait (`Retry-After`) when the gateway's own store is down. */
export const SERVICE_UNAVAILABLE_RETRY_SECONDS = 5;

/** SERVICE_UNAVAILABLE with `retryAfterSeconds`; HTTP answers carry it as 503 with `Retry-After`. */
export function serviceUnavailable(): GraphQLError {
  return appError(ErrorCode.SERVICE_UNAVAILABLE, "The service is briefly unavailable; try again shortly", {
    details: { retryAfterSeconds: SERVICE_UNAVAILABLE_RETRY_SECONDS },
  });
}

export function isKnownErrorCode(code: unknown): boolean {
  return typeof code === "string" && KNOWN_CODES.has(code);
}

/**
 * Apollo `formatError`: in production, anything that is not a catalogued client error becomes a
 * bare INTERNAL_SERVER_ERROR, so no internal message or stack reaches a client; a catalogued one
 * keeps only CLIENT_EXTENSIONS and loses schema suggestions from its message.
 */
export function createErrorFormatter(options: { maskInternal: boolean; onInternal?: (error: unknown) => void }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    if (isKnownErrorCode(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      if (!options.maskInternal) return formatted;
      return {
        ...formatted,
        message: withoutSuggestions(formatted.message),
        extensions: clientExtensions(formatted.extensions),
      };
    }
    options.onInternal?.(unwrapResolverError(error));
    if (!options.maskInternal) return formatted;
    return {
      message: "Internal server error",
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}

import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";

/**
 * The one catalogue of error codes clients see in `extensions.code`. Mobile clients switch on
 * these; never rename one, only add. Each code's comment is its entry in docs/errors.md
 * (`pnpm run docs:generate`): when it happens, and an `@retry` line saying what the client does.
 */
export const ErrorCode = {
  /**
   * An argument is wrong, missing, too large or malformed; `extensions.field` names it when one
   * input is to blame, always as a path into the field's arguments (`input.birthDate`,
   * `latitude`, `input.memberIds[2]`). Also a variable that does not fit the schema.
   * @retry No: the same input fails again. Fix the named field (show it to the user).
   */
  BAD_USER_INPUT: "BAD_USER_INPUT",
  /**
   * No valid access token where one is needed. `extensions.reason`: `expired` or `revoked` (the
   * session may still refresh), `invalid` (bad signature, issuer, audience or shape), or absent
   * when no token was sent. At the gateway every HTTP answer carrying it has status 401 with a
   * `WWW-Authenticate: Bearer` challenge, whatever the cause (partial data may come with it).
   * @retry After `refreshSession` once for `expired`/`revoked`, then the same request; on
   * `invalid`, or when the refresh fails, sign in again.
   */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /**
   * Login or password confirmation failed; never says whether the email exists.
   * @retry Only with other credentials typed by the user; repeated failures spend the login budget.
   */
  INVALID_CREDENTIALS: "INVALID_CREDENTIALS",
  /**
   * The token of an emailed link (verification, password reset, email change) is unknown,
   * malformed, for another action or account (`extensions.reason` `invalid`), already used
   * (`used`), or expired (`expired`).
   * @retry No: the same token fails again. On `used` from `verifyEmail` the address is confirmed:
   * show the login screen; otherwise offer a new mail (sign up again, or request a new reset).
   */
  INVALID_TOKEN: "INVALID_TOKEN",
  /**
   * Signed in, but not allowed to do this; `extensions.reason` says why (`blocked`, `banned`,
   * `closed`, `role`, `not-sender`, `match-required`, `attachment-taken`, …).
   * @retry No: the answer stays the same until the situation changes.
   */
  FORBIDDEN: "FORBIDDEN",
  /**
   * The thing does not exist, or the viewer may not know it exists (a blocked person, a
   * conversation the viewer is not in): both look the same on purpose.
   * @retry No.
   */
  NOT_FOUND: "NOT_FOUND",
  /**
   * A budget of attempts is spent (per user, client address or account);
   * `extensions.retryAfterSeconds` says when it refills and `extensions.limit` names the budget.
   * At the gateway the HTTP status is 429 with a `Retry-After` header.
   * @retry Yes, after `retryAfterSeconds`, not sooner.
   */
  RATE_LIMITED: "RATE_LIMITED",
  /**
   * The request conflicts with the current state: the email is taken, a pass on a match, a photo
   * not READY yet, nothing uploaded yet, a deleted message, a full profile, or a conversation that
   * changed while sending (the message says which).
   * @retry Only the "changed while sending" case, with the same `clientMessageId`; otherwise
   * change the state first (or the input).
   */
  CONFLICT: "CONFLICT",
  /**
   * A per-user allowance of stored or pending things is used up (e.g. unfinished uploads);
   * `extensions` name the limit and the current use.
   * @retry After finishing or deleting some of those things, not by waiting alone.
   */
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  /**
   * The account is suspended by a moderator: no login, refresh or password-reset session until
   * `extensions.until` (ISO time).
   * @retry Not before `until`; then log in again.
   */
  ACCOUNT_SUSPENDED: "ACCOUNT_SUSPENDED",
  /**
   * Moderation: another moderator holds the claim on this case (`extensions.until`: when that
   * claim expires), or the case is no longer open.
   * @retry Pick another case; or retry after `until` if the case is still needed.
   */
  CASE_CLAIMED: "CASE_CLAIMED",
  /**
   * This person cannot be added to or invited into a conversation. Deliberately one answer for an
   * unknown id, a hidden, banned or deleted account, a block either way and a declined invitation,
   * so it tells nobody which; `extensions.field` names the id.
   * @retry No: the same request gets the same answer.
   */
  USER_UNAVAILABLE: "USER_UNAVAILABLE",
  /**
   * A subscription ended because its source went away (a subgraph instance restarted, the gateway
   * lost its upstream connection, or the client fell too far behind): the socket stays open.
   * @retry Yes: subscribe again (after a short random delay), then catch up on what was missed
   * (e.g. `messages(after: lastSeq)`).
   */
  SUBSCRIPTION_INTERRUPTED: "SUBSCRIPTION_INTERRUPTED",
  /**
   * The gateway runs only the app's persisted operations (`GATEWAY_OPERATIONS=safelist`) and this
   * one is not among them (HTTP 400), over HTTP and WebSocket.
   * @retry No: send a known operation's `extensions.persistedQuery.sha256Hash` (an app build
   * whose operations the server knows).
   */
  PERSISTED_QUERY_NOT_ALLOWED: "PERSISTED_QUERY_NOT_ALLOWED",
  /**
   * A service behind the gateway did not answer within `GATEWAY_SUBGRAPH_TIMEOUT_MS`: that part of
   * the answer is null, the rest may be there.
   * @retry Yes, later, with backoff; mutations only if they are idempotent (e.g. `sendMessage`
   * with the same `clientMessageId`).
   */
  UPSTREAM_TIMEOUT: "UPSTREAM_TIMEOUT",
  /**
   * A service behind the gateway could not be reached (connection refused or reset, or it
   * answered 502/503/504); in a partial answer, only the fields that service provides are null
   * (e.g. a chat message's `sender` while Users is down).
   * @retry Yes, with backoff; mutations only if they are idempotent (e.g. `sendMessage` with the
   * same `clientMessageId`).
   */
  UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE",
  /**
   * The gateway cannot serve any request now: a store of its own (Redis: budgets, blocklist,
   * persisted queries) does not answer. HTTP 503 with `Retry-After` and `retryAfterSeconds`.
   * @retry Yes, after `retryAfterSeconds` (the `Retry-After` header).
   */
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  /**
   * The HTTP body is larger than `GATEWAY_MAX_BODY_BYTES` (HTTP 413).
   * @retry No: send less (large files go to the upload URL, never through GraphQL).
   */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /**
   * Something failed on the server; in production the message is always "Internal server error"
   * and nothing internal is shown.
   * @retry Yes, a few times with backoff; mutations only if they are idempotent.
   */
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Codes Apollo Server (or the gateway in its place) produces before our resolvers run. Documented
 * in docs/errors.md like ErrorCode.
 */
export const ApolloErrorCode = {
  /**
   * The document is not valid GraphQL syntax, or has more lexical tokens than `GATEWAY_MAX_TOKENS`.
   * @retry No: the operation text is wrong.
   */
  GRAPHQL_PARSE_FAILED: "GRAPHQL_PARSE_FAILED",
  /**
   * The operation does not validate against the schema, or is deeper, has more aliases,
   * directives or cost than the gateway allows (`extensions.limit` names the limit then).
   * @retry No: the operation must change.
   */
  GRAPHQL_VALIDATION_FAILED: "GRAPHQL_VALIDATION_FAILED",
  /**
   * The request itself is malformed (no query, a bad body or content type, a missing CSRF
   * preflight header, the defer directive over WebSocket).
   * @retry No: fix the request.
   */
  BAD_REQUEST: "BAD_REQUEST",
  /**
   * Automatic persisted queries: the gateway does not know this hash yet.
   * @retry Yes, at once: send the same request with the full `query` text and the hash.
   */
  PERSISTED_QUERY_NOT_FOUND: "PERSISTED_QUERY_NOT_FOUND",
  /**
   * Persisted queries are not enabled where the request was sent.
   * @retry Yes, at once, with the full `query` text and no hash.
   */
  PERSISTED_QUERY_NOT_SUPPORTED: "PERSISTED_QUERY_NOT_SUPPORTED",
  /**
   * The document has several operations and `operationName` names none of them (or is missing).
   * @retry No: send the right `operationName`.
   */
  OPERATION_RESOLUTION_FAILURE: "OPERATION_RESOLUTION_FAILURE",
} as const;

const KNOWN_CODES = new Set<string>([...Object.values(ErrorCode), ...Object.values(ApolloErrorCode)]);

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
  "until",
];

/** Only the CLIENT_EXTENSIONS keys of `extensions`. */
export function clientExtensions(
  extensions: Readonly<Record<string, unknown>> | undefined,
): Record<string, unknown> {
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
  /** Which input is wrong: a path into the field's arguments, e.g. `input.displayName`, `userIds[1]`. */
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
export function createErrorFormatter(options: {
  maskInternal: boolean;
  onInternal?: (error: unknown) => void;
}) {
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

import type http from "node:http";
import {
  answeredAsPlainJson,
  isRecord,
  MAX_KNOWN_TEXT,
  plainFields,
  plainQueryRequest,
} from "./known-queries";
import type { Logger } from "./logger";
import type { ProcessMetrics } from "./metrics";
import type { RequestContextBase } from "./service";

/**
 * A POSTed operation (`directRequestOf`): its text, or its persisted hash (version 1), or both;
 * variables and name.
 */
export interface DirectRequest {
  /** undefined: only the hash was sent (Apollo Server reads the text from its persisted-query cache). */
  query: string | undefined;
  /** `extensions.persistedQuery.sha256Hash`, when the request's only extension is that (version 1). */
  persistedHash?: string | undefined;
  variables: Record<string, unknown>;
  operationName: string | undefined;
}

/**
 * The request's operation when Apollo Server would read it as a plain POST (`plainQueryRequest`), or
 * as one whose only extension is a version-1 persisted query hash, beside its text or without it;
 * undefined for anything else (Apollo answers it).
 */
export function directRequestOf(req: http.IncomingMessage, body: unknown): DirectRequest | undefined {
  if (!isRecord(body) || body.extensions === undefined || body.extensions === null)
    return plainQueryRequest(req, body);
  const persistedHash = persistedHashOnly(body.extensions);
  if (persistedHash === undefined || !answeredAsPlainJson(req)) return undefined;
  const query = body.query ?? undefined;
  // Apollo checks "" against the hash (and refuses it): left to it, as a non-string is.
  if (query !== undefined && (typeof query !== "string" || query === "" || query.length > MAX_KNOWN_TEXT))
    return undefined;
  const fields = plainFields(body);
  return fields && { query, persistedHash, ...fields };
}

/** The hash of `extensions` that hold nothing but `{ persistedQuery: { version: 1, sha256Hash } }`. */
export function persistedHashOnly(extensions: unknown): string | undefined {
  if (!isRecord(extensions)) return undefined;
  const persisted = extensions.persistedQuery;
  if (!isRecord(persisted) || Object.keys(extensions).length !== 1) return undefined;
  const { version, sha256Hash } = persisted;
  if (version !== 1 || typeof sha256Hash !== "string" || Object.keys(persisted).length !== 2)
    return undefined;
  return sha256Hash;
}

/** An operation answered without Apollo Server: its result (data only, no errors) and how to label it. */
export interface DirectAnswer {
  result: { data: Record<string, unknown> | null };
  /** The response's `Cache-Control`, as Apollo's cache-control plugins would set it. */
  cacheControl: string;
  /** The resolved operation's own name (null: anonymous) and its type, for the request log and metrics. */
  operationName: string | null;
  operationType: "query" | "mutation";
}

/**
 * Operations a gateway answers without Apollo Server's request pipeline (`startService`'s
 * `directOperations`). `run` answers, or says undefined: Apollo Server must answer, and finds
 * under the same context whatever already ran (the executor's to answer without running it again).
 */
export interface DirectOperations<TContext extends RequestContextBase> {
  run(
    request: DirectRequest,
    contextValue: TContext,
    headers: http.IncomingHttpHeaders,
  ): Promise<DirectAnswer | undefined>;
}

/** Every /graphql request's log line (info), whether Apollo Server answered it or not. */
export function logGraphQLRequest(
  context: { logger: Logger; viewer: { userId: string } | null; clientIp: string },
  operationName: string | null | undefined,
  startedAt: bigint,
  errors: number,
): void {
  const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
  context.logger.info(
    {
      operationName: operationName ?? null,
      durationMs: Math.round(durationMs * 10) / 10,
      errors,
      userId: context.viewer?.userId ?? null,
      clientIp: context.clientIp,
    },
    "graphql request",
  );
}

/**
 * What an answer given without Apollo Server records, as Apollo's plugins would have: the request's
 * log line (`operationName`, no errors) and its metrics (`metricsName`, of `type`).
 */
export function recordDirectAnswer(
  context: { logger: Logger; viewer: { userId: string } | null; clientIp: string },
  metrics: ProcessMetrics | undefined,
  answer: { operationName: string | null; metricsName: string | null | undefined; type: string },
  startedAt: bigint,
): void {
  logGraphQLRequest(context, answer.operationName, startedAt, 0);
  metrics?.observeGraphQLRequest(
    answer.metricsName,
    answer.type,
    Number(process.hrtime.bigint() - startedAt) / 1e9,
    [],
  );
}

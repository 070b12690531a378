import type http from "node:http";
import type { Logger } from "./logger";
import type { RequestContextBase } from "./service";

/** A plain POSTed operation (kit/src/known-queries.ts `plainQueryRequest`): text, variables, name. */
export interface DirectRequest {
  query: string;
  variables: Record<string, unknown>;
  operationName: string | undefined;
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

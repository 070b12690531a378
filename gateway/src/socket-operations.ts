import type { GraphQLRequest } from "@apollo/server";
import {
  ApolloErrorCode,
  appError,
  isRecord,
  ErrorCode,
  recordDirectAnswer,
  persistedHashOnly,
  requestIdFrom,
  type DirectOperations,
  type Logger,
  type ProcessMetrics,
  type OperationRunner,
  type RevocationAssertions,
} from "@hv/kit";
import { GraphQLError, type FormattedExecutionResult } from "graphql";
import type { EdgeProtection } from "./protection";
import { vouchForRevocation, type GatewayContext } from "./subgraph-data-source";

/** What a query or mutation over WebSocket came to: HTTP's 200 answer, or the errors of its other statuses. */
export type SocketOperationOutcome =
  { answer: FormattedExecutionResult } | { errors: GraphQLError[]; tokenRefused?: string };

/** One query or mutation sent over a graphql-ws connection, with what the connection knows of its caller. */
export interface SocketOperation {
  /** The connection's `connectionParams.authorization`; null: anonymous. */
  authorization: string | null;
  clientIp: string;
  connectionRequestId: string;
  /** The subscribe message's payload as graphql-ws checked it (`query` left out when it was "" beside a hash). */
  payload: Record<string, unknown>;
}

const NO_HEADERS = {};

function badRequest(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ApolloErrorCode.BAD_REQUEST } });
}

function requestOf(payload: Record<string, unknown>): GraphQLRequest {
  const request: GraphQLRequest = {};
  if (typeof payload.query === "string") request.query = payload.query;
  if (typeof payload.operationName === "string") request.operationName = payload.operationName;
  if (isRecord(payload.variables)) request.variables = payload.variables;
  if (isRecord(payload.extensions)) request.extensions = payload.extensions;
  return request;
}

/**
 * Queries and mutations over the gateway's graphql-ws socket, through the HTTP path's protections
 * and Apollo's request pipeline: the admission (blocklist, the connection token's expiry and
 * revocation, address, user and known sensitive budgets in one Redis round trip), then Apollo
 * (persisted queries, query limits, sensitive budgets, plugins, the compiled query executor).
 */
export function socketOperations(options: {
  protection: EdgeProtection;
  runOperation: OperationRunner<GatewayContext>;
  /** Seen operations answered without Apollo Server's pipeline (gateway/src/direct-operations.ts). */
  direct?: DirectOperations<GatewayContext> | undefined;
  metrics?: ProcessMetrics;
  assertions: RevocationAssertions | undefined;
  logger: Logger;
}): (operation: SocketOperation) => Promise<SocketOperationOutcome> {
  const { protection, runOperation, direct, metrics, assertions, logger } = options;
  return async ({ authorization, clientIp, connectionRequestId, payload }) => {
    const admitted = await protection.admitOperation({ authorization, clientIp, payload });
    if (!admitted.admitted) {
      return admitted.tokenRefused === undefined
        ? { errors: admitted.errors }
        : { errors: admitted.errors, tokenRefused: admitted.tokenRefused };
    }
    const requestId = requestIdFrom(undefined);
    const context: GatewayContext = {
      requestId,
      logger: logger.child({ requestId, connectionRequestId }),
      viewer: admitted.viewer,
      clientIp,
      authorization: admitted.viewer === null ? null : authorization,
      precounted: admitted.precounted,
    };
    if (assertions) vouchForRevocation(context, assertions);
    const request = requestOf(payload);
    const persistedHash =
      request.extensions === undefined ? undefined : persistedHashOnly(request.extensions);
    if (
      direct &&
      (request.extensions === undefined ? request.query !== undefined : persistedHash !== undefined)
    ) {
      const startedAt = process.hrtime.bigint();
      const answer = await direct.run(
        {
          query: request.query,
          persistedHash,
          variables: request.variables ?? {},
          operationName: request.operationName,
        },
        context,
        NO_HEADERS,
      );
      if (answer) {
        recordDirectAnswer(
          context,
          metrics,
          {
            operationName: answer.operationName,
            metricsName: answer.operationName ?? request.operationName,
            type: answer.operationType,
          },
          startedAt,
        );
        return { answer: answer.result };
      }
    }
    const response = await runOperation(request, context);
    if (response.body.kind !== "single") {
      return {
        errors: [badRequest("Incremental delivery (@defer) is served over HTTP only")],
      };
    }
    const result = response.body.singleResult;
    if ((response.http.status ?? 200) < 400) return { answer: result };
    if (!result.errors?.length) {
      return {
        errors: [appError(ErrorCode.INTERNAL_SERVER_ERROR, "The operation was refused without a reason")],
      };
    }
    return {
      errors: result.errors.map(
        (error) =>
          new GraphQLError(error.message, {
            ...(error.path ? { path: error.path } : {}),
            ...(error.extensions ? { extensions: error.extensions } : {}),
          }),
      ),
    };
  };
}

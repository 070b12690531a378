import type { ApolloServerPlugin } from "@apollo/server";
import { ErrorCode } from "@hv/kit";

/**
 * Every HTTP answer carrying UNAUTHENTICATED has status 401 with a `WWW-Authenticate: Bearer`
 * challenge, whatever the cause (no token, expired, revoked, malformed; refused here or in a subgraph).
 */
export function unauthenticatedStatusPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== "single") return;
          const refused = response.body.singleResult.errors?.find(
            (error) => error.extensions?.code === ErrorCode.UNAUTHENTICATED,
          );
          if (!refused) return;
          response.http.status = 401;
          const reason = refused.extensions?.reason;
          response.http.headers.set(
            "www-authenticate",
            reason === undefined ? "Bearer" : 'Bearer error="invalid_token"',
          );
        },
      };
    },
  };
}

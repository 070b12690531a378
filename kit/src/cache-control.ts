import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLResolveInfo } from "graphql";
import type { AuthContext } from "./auth/viewer";

/**
 * Cache hints: every subgraph's schema declares `@cacheControl` (Apollo's documented definition
 * for subgraphs) and Apollo Server's cache-control plugin (installed by default) turns the hints of
 * what a request touched into the response's `Cache-Control` (`max-age=N, public|private`, else
 * `no-store`). The gateway restricts its own response's policy by every subgraph response's header
 * (RemoteGraphQLDataSource `honorSubgraphCacheControlHeader`): the most restrictive hint wins, and
 * a subgraph without hints (or an error) makes the whole response `no-store`.
 *
 * On top of the hints, a signed-in request's response is never `public`: whatever its hints say,
 * a response computed for a viewer (blocks, hidden profiles, owner-only fields, signed URLs,
 * distances) may differ from another viewer's, so a shared cache (CDN, proxy) must not keep it. Anonymous responses keep the
 * schema's hints. A mutation's response is never cacheable at all (its fields may return types
 * with hints, e.g. `updateProfile: User!`). The policy is restricted after execution: restricting
 * before would make Apollo's cache-control plugin ignore every field hint (it takes an already-set
 * policy as a cache hit's).
 */
export function viewerScopedCachePolicy<TContext extends AuthContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async executionDidStart(requestContext) {
          return {
            async executionDidEnd() {
              if (requestContext.operation.operation !== "query")
                requestContext.overallCachePolicy.restrict({ maxAge: 0 });
              if (contextValue.viewer) requestContext.overallCachePolicy.restrict({ scope: "PRIVATE" });
            },
          };
        },
      };
    },
  };
}

/**
 * A resolver's dynamic cache hint: narrows the field's policy (never widens it). A no-op where
 * Apollo's cache-control plugin is not running (subscriptions over graphql-ws).
 */
export function restrictCacheHint(
  info: GraphQLResolveInfo,
  hint: { maxAge?: number; scope?: "PUBLIC" | "PRIVATE" },
): void {
  const cacheControl = (
    info as {
      cacheControl?: {
        cacheHint?: { restrict(hint: { maxAge?: number; scope?: "PUBLIC" | "PRIVATE" }): void };
      };
    }
  ).cacheControl;
  cacheControl?.cacheHint?.restrict(hint);
}

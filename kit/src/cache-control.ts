import type { ApolloServerPlugin, GraphQLRequestContext } from "@apollo/server";
import {
  defaultFieldResolver,
  getNamedType,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  type ConstDirectiveNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from "graphql";
import type { AuthContext } from "./auth/viewer";

/**
 * Cache hints: every subgraph's schema declares `@cacheControl` (Apollo's documented definition
 * for subgraphs) and `cacheHintsPlugin` (below, in every subgraph) turns the hints of what a
 * request touched into the response's `Cache-Control` (`max-age=N, public|private`, else
 * `no-store`) as Apollo's cache-control plugin would. The gateway restricts its own response's
 * policy by every subgraph response's header (RemoteGraphQLDataSource
 * `honorSubgraphCacheControlHeader`) and Apollo's plugin writes it: the most restrictive hint wins,
 * and a subgraph without hints (or an error) makes the whole response `no-store`.
 *
 * On top of the hints, a signed-in request's response is never `public`: whatever its hints say,
 * a response computed for a viewer (blocks, hidden profiles, owner-only fields, signed URLs,
 * distances) may differ from another viewer's, so a shared cache (CDN, proxy) must not keep it. Anonymous responses keep the
 * schema's hints. A mutation's response is never cacheable at all (its fields may return types
 * with hints, e.g. `updateProfile: User!`). The policy is restricted after execution: restricting
 * before would make Apollo's cache-control plugin (the gateway's) ignore every field hint (it takes
 * an already-set policy as a cache hit's).
 */
export function viewerScopedCachePolicy<TContext extends AuthContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async executionDidStart(requestContext) {
          return {
            async executionDidEnd() {
              // Apollo runs this with no operation when none resolved (several and no name).
              const operation = requestContext.operation as typeof requestContext.operation | undefined;
              if (operation?.operation !== "query") requestContext.overallCachePolicy.restrict({ maxAge: 0 });
              if (contextValue.viewer) requestContext.overallCachePolicy.restrict({ scope: "PRIVATE" });
            },
          };
        },
      };
    },
  };
}

type CacheScope = "PUBLIC" | "PRIVATE";
/** A cache hint: an unset `maxAge` or `scope` restricts nothing. */
export interface CacheHint {
  maxAge?: number;
  scope?: CacheScope;
}
interface CacheAnnotation extends CacheHint {
  inheritMaxAge?: boolean;
}
type CachePolicy = GraphQLRequestContext<object>["overallCachePolicy"];

/** Each running request's policy, by its context (set by `cacheHintsPlugin`). */
const requestPolicies = new WeakMap<object, Pick<CachePolicy, "restrict">>();
const instrumented = new WeakSet<GraphQLSchema>();

/** `@cacheControl(maxAge, scope, inheritMaxAge)` read as Apollo's cache-control plugin reads it. */
function annotationOf(directives: readonly ConstDirectiveNode[] | undefined): CacheAnnotation | undefined {
  const directive = directives?.find((node) => node.name.value === "cacheControl");
  if (!directive?.arguments) return undefined;
  const argument = (name: string) => directive.arguments?.find((node) => node.name.value === name)?.value;
  const maxAge = argument("maxAge");
  const scope = argument("scope");
  const inheritMaxAge = argument("inheritMaxAge");
  const scopeName = scope?.kind === "EnumValue" ? scope.value : undefined;
  const hint: CacheAnnotation = {};
  if (scopeName === "PUBLIC" || scopeName === "PRIVATE") hint.scope = scopeName;
  if (inheritMaxAge?.kind === "BooleanValue" && inheritMaxAge.value) hint.inheritMaxAge = true;
  else if (maxAge?.kind === "IntValue") hint.maxAge = parseInt(maxAge.value, 10);
  return hint;
}

function typeAnnotation(type: GraphQLCompositeType): CacheAnnotation {
  for (const node of [type.astNode, ...type.extensionASTNodes]) {
    const hint = annotationOf(node?.directives);
    if (hint) return hint;
  }
  return {};
}

/** `target` narrowed by `hint`: the lower max age, PRIVATE over PUBLIC (Apollo's `restrict`). */
export function restrictHint(target: CacheHint, hint: CacheHint): void {
  if (hint.maxAge !== undefined && (target.maxAge === undefined || hint.maxAge < target.maxAge))
    target.maxAge = hint.maxAge;
  if (hint.scope !== undefined && target.scope !== "PRIVATE") target.scope = hint.scope;
}

/**
 * What a field adds to its request's policy each time it resolves, as Apollo's cache-control plugin
 * computes it (`defaultMaxAge` 0): its return type's hint, replaced by its own (`inheritMaxAge`
 * keeps the type's), and max age 0 when neither set one on a field returning an object that does
 * not inherit, or on a root field.
 */
function fieldHint(field: GraphQLField<unknown, unknown>, isRootField: boolean): CacheHint {
  const hint: CacheHint = {};
  let inheritMaxAge = false;
  const target = getNamedType(field.type);
  const composite = isCompositeType(target);
  if (composite) {
    const annotation = typeAnnotation(target);
    if (annotation.maxAge !== undefined) hint.maxAge = annotation.maxAge;
    if (annotation.scope !== undefined) hint.scope = annotation.scope;
    inheritMaxAge = annotation.inheritMaxAge === true;
  }
  const own = annotationOf(field.astNode?.directives) ?? {};
  if (own.inheritMaxAge && hint.maxAge === undefined) {
    inheritMaxAge = true;
    if (own.scope !== undefined) hint.scope = own.scope;
  } else {
    if (own.maxAge !== undefined) hint.maxAge = own.maxAge;
    if (own.scope !== undefined) hint.scope = own.scope;
  }
  if (hint.maxAge === undefined && ((composite && !inheritMaxAge) || isRootField)) hint.maxAge = 0;
  return hint;
}

const restricts = (hint: CacheHint) => hint.maxAge !== undefined || hint.scope !== undefined;

/**
 * Makes every field that has a hint narrow its request's policy when it resolves; fields without
 * one keep their resolver untouched. Federation's `_entities` narrows by each representation's
 * type, as @apollo/subgraph does under Apollo's plugin. Idempotent.
 */
function instrument(schema: GraphQLSchema): void {
  if (instrumented.has(schema)) return;
  instrumented.add(schema);
  const rootTypes = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]);
  // What `_entities` narrows by for a representation of each entity type, by type name.
  const entityHints = new Map<string, CacheHint>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (isObjectType(type) || isInterfaceType(type)) entityHints.set(type.name, typeAnnotation(type));
  }
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    const isRootType = rootTypes.has(type);
    for (const field of Object.values(type.getFields())) {
      const resolve: GraphQLFieldResolver<unknown, object> = field.resolve ?? defaultFieldResolver;
      if (isRootType && field.name === "_entities") {
        field.resolve = (
          source,
          args: { representations?: Array<{ __typename?: unknown }> },
          context,
          info,
        ) => {
          const policy = requestPolicies.get(context);
          if (policy) {
            const hint: CacheHint = {};
            for (const { __typename } of args.representations ?? []) {
              const entityHint = typeof __typename === "string" ? entityHints.get(__typename) : undefined;
              if (entityHint) restrictHint(hint, entityHint);
            }
            if (hint.maxAge === undefined && info.path.prev === undefined) hint.maxAge = 0;
            policy.restrict(hint);
          }
          return resolve(source, args, context, info);
        };
        continue;
      }
      const nested = fieldHint(field, false);
      const atRoot = isRootType ? fieldHint(field, true) : nested;
      if (!restricts(nested) && !restricts(atRoot)) continue;
      field.resolve = (source, args, context, info) => {
        requestPolicies.get(context)?.restrict(info.path.prev === undefined ? atRoot : nested);
        return resolve(source, args, context, info);
      };
    }
  }
}

const CACHEABLE_HEADER = /^max-age=(\d+), (public|private)$/;

/**
 * Apollo's cache-control plugin without its hook on every field (install it with
 * `ApolloServerPluginCacheControlDisabled()`): the same `Cache-Control` from the schema's
 * `@cacheControl` hints of the fields a request resolved, `max-age=N, public|private` or `no-store`
 * (any error, no hint, max age 0), narrowed by a header already set. Instruments `schema`'s resolvers.
 */
export function cacheHintsPlugin<TContext extends object>(
  schema: GraphQLSchema,
): ApolloServerPlugin<TContext> {
  instrument(schema);
  return {
    async requestDidStart({ contextValue, overallCachePolicy }) {
      requestPolicies.set(contextValue, overallCachePolicy);
      return {
        async willSendResponse({ response }) {
          const existing = response.http.headers.get("cache-control");
          const policy: CacheHint = {};
          restrictHint(policy, overallCachePolicy);
          let uncacheable = false;
          if (existing === "no-store") uncacheable = true;
          else if (existing !== undefined) {
            const match = CACHEABLE_HEADER.exec(existing);
            // A header this plugin cannot read is left as it is.
            if (!match) return;
            restrictHint(policy, {
              maxAge: Number(match[1]),
              scope: match[2] === "public" ? "PUBLIC" : "PRIVATE",
            });
          }
          const cacheable =
            !uncacheable &&
            policy.maxAge !== undefined &&
            policy.maxAge > 0 &&
            response.body.kind === "single" &&
            !response.body.singleResult.errors;
          response.http.headers.set(
            "cache-control",
            cacheable ? `max-age=${policy.maxAge}, ${(policy.scope ?? "PUBLIC").toLowerCase()}` : "no-store",
          );
        },
      };
    },
  };
}

/**
 * A resolver's dynamic cache hint: narrows its request's policy (never widens it), on top of the
 * fields' hints. A no-op outside a request `cacheHintsPlugin` runs for (subscriptions over graphql-ws).
 */
export function restrictCacheHint(context: object, hint: CacheHint): void {
  requestPolicies.get(context)?.restrict(hint);
}

/**
 * For a query answered without Apollo (kit/src/known-queries.ts): collects the hints its resolvers
 * give under `context` into the returned hint, as `cacheHintsPlugin` does into Apollo's policy.
 */
export function collectCacheHints(context: object): CacheHint {
  const collected: CacheHint = {};
  requestPolicies.set(context, { restrict: (hint: CacheHint) => restrictHint(collected, hint) });
  return collected;
}

/**
 * The `Cache-Control` that `cacheHintsPlugin` and `viewerScopedCachePolicy` give a query's answer
 * without errors and without a header already set, from its resolvers' collected hints.
 */
export function queryCacheControl(collected: CacheHint, signedIn: boolean): string {
  const policy: CacheHint = {};
  restrictHint(policy, collected);
  if (signedIn) restrictHint(policy, { scope: "PRIVATE" });
  return policy.maxAge !== undefined && policy.maxAge > 0
    ? `max-age=${policy.maxAge}, ${(policy.scope ?? "PUBLIC").toLowerCase()}`
    : "no-store";
}

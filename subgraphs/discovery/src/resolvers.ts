import { DateTimeScalar, type GraphQLResolverMap } from "@hv/kit";
import type { DiscoveryContext } from "./context";
import { locationResolvers } from "./modules/location";
import { matchResolvers } from "./modules/matches";
import { nearbyResolvers } from "./modules/nearby";
import { swipeResolvers } from "./modules/swipes";

export type { DiscoveryContext } from "./context";

const modules = [locationResolvers, nearbyResolvers, swipeResolvers, matchResolvers];

/** Each capability's resolvers, merged per type. */
export const resolvers = {
  DateTime: DateTimeScalar,
  ...Object.fromEntries(
    [...new Set(modules.flatMap((module) => Object.keys(module)))].map((type) => [
      type,
      Object.assign({}, ...modules.map((module) => (module as Record<string, object>)[type] ?? {})),
    ]),
  ),
} as GraphQLResolverMap<DiscoveryContext>;

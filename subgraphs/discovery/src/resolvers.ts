import { DateTimeScalar } from "@hv/kit";
import type { CompleteResolvers } from "./generated/resolvers-types";
import { locationResolvers } from "./modules/location";
import { matchResolvers } from "./modules/matches";
import { nearbyResolvers } from "./modules/nearby";
import { swipeResolvers } from "./modules/swipes";

export type { DiscoveryContext } from "./context";

export const resolvers: CompleteResolvers = {
  DateTime: DateTimeScalar,
  Query: { ...nearbyResolvers.Query, ...matchResolvers.Query },
  Mutation: { ...locationResolvers.Mutation, ...swipeResolvers.Mutation, ...matchResolvers.Mutation },
  User: locationResolvers.User,
  Match: matchResolvers.Match,
};

import { isUuid, type GraphQLResolverMap, type RequestContextBase } from "@hv/kit";
import type { DiscoveryLoaders } from "./loaders";

export interface DiscoveryContext extends RequestContextBase {
  loaders: DiscoveryLoaders;
}

interface UserReference {
  id: string;
}

export const resolvers: GraphQLResolverMap<DiscoveryContext> = {
  User: {
    __resolveReference: (reference: UserReference) => ({ id: reference.id }),
    isDiscoverable: (user: UserReference, _: unknown, { loaders }: DiscoveryContext) =>
      isUuid(user.id) ? loaders.hasFreshLocation.load(user.id.toLowerCase()) : false,
  },
};

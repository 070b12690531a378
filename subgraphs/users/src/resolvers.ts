import { DateTimeScalar, isUuid, requireUuid, type GraphQLResolverMap, type RequestContextBase } from "@hv/kit";
import type { UsersLoaders } from "./loaders";

export interface UsersContext extends RequestContextBase {
  loaders: UsersLoaders;
}

export const resolvers: GraphQLResolverMap<UsersContext> = {
  DateTime: DateTimeScalar,
  Query: {
    user: (_: unknown, args: { id: string }, { loaders }: UsersContext) =>
      loaders.userById.load(requireUuid(args.id, "id")),
  },
  User: {
    __resolveReference: (reference: { id: string }, { loaders }: UsersContext) =>
      isUuid(reference.id) ? loaders.userById.load(reference.id.toLowerCase()) : null,
  },
};

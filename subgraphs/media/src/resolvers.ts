import { isUuid, type GraphQLResolverMap, type RequestContextBase } from "@hv/kit";
import type { MediaLoaders } from "./loaders";

export interface MediaContext extends RequestContextBase {
  loaders: MediaLoaders;
}

interface Reference {
  id: string;
}

export const resolvers: GraphQLResolverMap<MediaContext> = {
  Media: {
    __resolveReference: (reference: Reference, { loaders }: MediaContext) =>
      isUuid(reference.id) ? loaders.mediaById.load(reference.id.toLowerCase()) : null,
  },
  User: {
    __resolveReference: (reference: Reference) => ({ id: reference.id }),
    photos: (user: Reference, _: unknown, { loaders }: MediaContext) =>
      isUuid(user.id) ? loaders.profilePhotosByOwner.load(user.id.toLowerCase()) : [],
  },
};

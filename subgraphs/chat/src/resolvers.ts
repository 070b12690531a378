import { DateTimeScalar, isUuid, requireUuid, type GraphQLResolverMap, type RequestContextBase } from "@hv/kit";
import type { ChatLoaders } from "./loaders";

export interface ChatContext extends RequestContextBase {
  loaders: ChatLoaders;
}

export const resolvers: GraphQLResolverMap<ChatContext> = {
  DateTime: DateTimeScalar,
  Query: {
    conversation: (_: unknown, args: { id: string }, { loaders }: ChatContext) =>
      loaders.conversationById.load(requireUuid(args.id, "id")),
  },
  Conversation: {
    __resolveReference: (reference: { id: string }, { loaders }: ChatContext) =>
      isUuid(reference.id) ? loaders.conversationById.load(reference.id.toLowerCase()) : null,
  },
};

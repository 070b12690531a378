import { notStoredYet, type EventHandlers, type Logger } from "@hv/kit";
import type { ChatDb } from "./db";

/** What Chat does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit). */
export function chatEventHandlers(db: ChatDb, logger: Logger): EventHandlers<"chat"> {
  return {
    async "user.deleted"({ userId }, { eventId }) {
      const purged = await db.$transaction(async (tx) => {
        const direct = await tx.conversation.findMany({
          where: { kind: "DIRECT", members: { some: { userId } } },
          select: { id: true },
        });
        const directIds = direct.map((conversation) => conversation.id);
        const memberships = await tx.conversationMember.deleteMany({ where: { userId } });
        // A direct conversation left with fewer than two people is over: it goes, with its other member.
        const remaining = await tx.conversationMember.groupBy({
          by: ["conversationId"],
          where: { conversationId: { in: directIds } },
          _count: { _all: true },
        });
        const alive = new Set(remaining.filter((row) => row._count._all >= 2).map((row) => row.conversationId));
        const over = directIds.filter((id) => !alive.has(id));
        const conversations = await tx.conversation.deleteMany({ where: { id: { in: over } } });
        return { memberships: memberships.count, directConversations: conversations.count };
      });
      logger.info({ eventId, userId, ...purged }, "user.deleted: conversation memberships purged");
    },
    // Chat stores blocks with messaging.
    "user.blocked": notStoredYet(logger),
    // Chat stores blocks with messaging.
    "user.unblocked": notStoredYet(logger),
    // Chat stores bans with messaging.
    "user.banned": notStoredYet(logger),
    // Chat opens a match's conversation with matching (conversations have no match id yet).
    "match.created": notStoredYet(logger),
    // Chat closes a match's conversation with matching (conversations have no match id yet).
    "match.ended": notStoredYet(logger),
  };
}

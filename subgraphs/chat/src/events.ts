import type { EventHandlers, Logger } from "@hv/kit";
import type { ChatDb } from "./db";
import type { ChatServices } from "./modules/context";
import { closeMatchConversation, ensureDirect, publishConversationEvent } from "./modules/conversations";

/**
 * What Chat does with the events it subscribes to (see SUBSCRIPTIONS in @hv/kit). With `live`
 * (the running subgraph's services), conversation changes are also published to subscribers.
 */
export function chatEventHandlers(db: ChatDb, logger: Logger, live?: ChatServices): EventHandlers<"chat"> {
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
        // Their messages in groups go too (tombstones would still name them as sender).
        const messages = await tx.message.deleteMany({ where: { senderId: userId } });
        await tx.reaction.deleteMany({ where: { userId } });
        await tx.block.deleteMany({ where: { OR: [{ blockerId: userId }, { blockedId: userId }] } });
        await tx.chatSettings.deleteMany({ where: { userId } });
        return { memberships: memberships.count, directConversations: conversations.count, messages: messages.count };
      });
      logger.info({ eventId, userId, ...purged }, "user.deleted: chat data purged");
    },
    async "user.blocked"({ blockerId, blockedId }) {
      await db.block.upsert({
        where: { blockerId_blockedId: { blockerId, blockedId } },
        create: { blockerId, blockedId },
        update: {},
      });
    },
    async "user.unblocked"({ blockerId, blockedId }) {
      await db.block.deleteMany({ where: { blockerId, blockedId } });
    },
    async "user.banned"({ userId }) {
      await db.bannedUser.upsert({ where: { userId }, create: { userId }, update: {} });
    },
    async "match.created"({ matchId, userIds }, { eventId }) {
      const { id, created } = await ensureDirect(db, userIds[0], userIds[1], matchId);
      if (created && live) await publishConversationEvent(live, id, "MEMBERS_CHANGED", null, 0);
      logger.info({ eventId, matchId, conversationId: id, created }, "match.created: direct conversation open");
    },
    async "match.ended"({ matchId, userIds }, { eventId }) {
      const closed = await closeMatchConversation(db, live, matchId, userIds);
      logger.info({ eventId, matchId, conversationId: closed }, "match.ended: direct conversation closed");
    },
  };
}

import type { EventHandlers, Logger } from "@hv/kit";
import type { ChatDb } from "./db";
import type { ChatServices } from "./modules/context";
import {
  closeMatchConversation,
  closePairConversation,
  ensureDirect,
  publishConversationEvent,
} from "./modules/conversations";
import { removeMessageByModerator } from "./modules/messages";
import { discardHold, releaseHold } from "./modules/holds";
import { applyProfileChanged, markDeleted } from "./modules/people";

/** What a deletion changed, for the live events published after it commits. */
interface Purge {
  /** DIRECT conversations left to the other person, closed. */
  closed: Array<{ id: string; lastSeq: number }>;
  /** Groups that go on without the person. */
  groups: Array<{ id: string; lastSeq: number }>;
  messages: number;
  memberships: number;
  conversationsDeleted: number;
}

/**
 * Purges a deleted account from Chat in one transaction. The other people keep their conversations
 * and their own messages: a one-to-one conversation stays with the other person, closed with reason
 * ACCOUNT_DELETED; a group goes on (an owner's role passes as when leaving). The account's own
 * messages, reactions, invitations, blocks and settings are gone; only a tombstone of its id stays
 * (people.deleted_at). A conversation nobody is left in is deleted. A redelivery finds nothing left.
 */
async function purgeAccount(db: ChatDb, userId: string, at: Date): Promise<Purge> {
  return db.$transaction(async (tx) => {
    const memberships = await tx.conversationMember.findMany({
      where: { userId },
      select: { conversationId: true, role: true, conversation: { select: { kind: true, lastSeq: true } } },
    });
    const removed = await tx.conversationMember.deleteMany({ where: { userId } });
    const messages = await tx.message.deleteMany({ where: { senderId: userId } });
    await tx.reaction.deleteMany({ where: { userId } });
    await tx.mediaSender.deleteMany({ where: { senderId: userId } });
    await tx.groupInvitation.deleteMany({
      where: { OR: [{ inviteeId: userId }, { inviterId: userId, status: "PENDING" }] },
    });
    await tx.block.deleteMany({ where: { OR: [{ blockerId: userId }, { blockedId: userId }] } });
    await tx.chatSettings.deleteMany({ where: { userId } });
    await tx.bannedUser.deleteMany({ where: { userId } });
    await markDeleted(tx, userId, at);
    const ids = memberships.map((membership) => membership.conversationId);
    const left = await tx.conversationMember.findMany({
      where: { conversationId: { in: ids } },
      orderBy: { joinedAt: "asc" },
      select: { conversationId: true, userId: true, role: true },
    });
    const purge: Purge = {
      closed: [],
      groups: [],
      messages: messages.count,
      memberships: removed.count,
      conversationsDeleted: 0,
    };
    const empty: string[] = [];
    for (const membership of memberships) {
      const { conversationId } = membership;
      const rest = left.filter((member) => member.conversationId === conversationId);
      const entry = { id: conversationId, lastSeq: membership.conversation.lastSeq };
      if (rest.length === 0) {
        empty.push(conversationId);
      } else if (membership.conversation.kind === "DIRECT") {
        await tx.conversation.update({
          where: { id: conversationId },
          data: { closedAt: at, closedReason: "ACCOUNT_DELETED", directKey: null, version: { increment: 1 } },
        });
        purge.closed.push(entry);
      } else {
        if (membership.role === "OWNER" && !rest.some((member) => member.role === "OWNER")) {
          const heir = rest.find((member) => member.role === "ADMIN") ?? rest[0];
          if (heir)
            await tx.conversationMember.update({
              where: { conversationId_userId: { conversationId, userId: heir.userId } },
              data: { role: "OWNER" },
            });
        }
        await tx.conversation.update({ where: { id: conversationId }, data: { version: { increment: 1 } } });
        purge.groups.push(entry);
      }
    }
    // Their messages first, not by the foreign key's cascade (docs/realtime-measurements.md, round 9).
    if (empty.length > 0) await tx.message.deleteMany({ where: { conversationId: { in: empty } } });
    purge.conversationsDeleted = (await tx.conversation.deleteMany({ where: { id: { in: empty } } })).count;
    return purge;
  });
}

export function chatEventHandlers(db: ChatDb, logger: Logger, live?: ChatServices): EventHandlers<"chat"> {
  return {
    async "user.deleted"({ userId }, { eventId, occurredAt }) {
      const purge = await purgeAccount(db, userId, occurredAt);
      if (live) {
        for (const conversation of purge.closed)
          await publishConversationEvent(
            live,
            conversation.id,
            "CONVERSATION_CLOSED",
            null,
            conversation.lastSeq,
          );
        for (const conversation of purge.groups)
          await publishConversationEvent(
            live,
            conversation.id,
            "MEMBERS_CHANGED",
            null,
            conversation.lastSeq,
          );
      }
      logger.info(
        {
          eventId,
          userId,
          memberships: purge.memberships,
          messages: purge.messages,
          closed: purge.closed.length,
          conversationsDeleted: purge.conversationsDeleted,
        },
        "user.deleted: chat data purged",
      );
    },
    async "user.profile_changed"(profile, { occurredAt }) {
      await applyProfileChanged(db, profile, occurredAt);
    },
    /**
     * A block stops contact at once, match or not: the pair's one-to-one conversation closes (and
     * is hidden from the blocker, see hiddenByBlocks), and invitations between the two are withdrawn.
     */
    async "user.blocked"({ blockerId, blockedId }, { eventId }) {
      await db.block.upsert({
        where: { blockerId_blockedId: { blockerId, blockedId } },
        create: { blockerId, blockedId },
        update: {},
      });
      const withdrawn = await db.groupInvitation.deleteMany({
        where: {
          status: "PENDING",
          OR: [
            { inviterId: blockerId, inviteeId: blockedId },
            { inviterId: blockedId, inviteeId: blockerId },
          ],
        },
      });
      const closed = await closePairConversation(db, live, blockerId, blockedId);
      logger.info(
        { eventId, conversationId: closed, invitationsWithdrawn: withdrawn.count },
        "user.blocked: contact stopped",
      );
    },
    /** Lifts the block only: a closed conversation stays closed (a new match opens a new one). */
    async "user.unblocked"({ blockerId, blockedId }) {
      await db.block.deleteMany({ where: { blockerId, blockedId } });
    },
    async "user.banned"({ userId }) {
      await db.bannedUser.upsert({ where: { userId }, create: { userId }, update: {} });
    },
    /** REMOVE_MESSAGE deletes the message for everyone (MESSAGE_DELETED live); other actions change nothing here. */
    async "match.created"({ matchId, userIds }, { eventId }) {
      const { id, created } = await ensureDirect(db, userIds[0], userIds[1], matchId);
      if (created && live) await publishConversationEvent(live, id, "MEMBERS_CHANGED", null, 0);
      logger.info(
        { eventId, matchId, conversationId: id, created },
        "match.created: direct conversation open",
      );
    },
    /**
     * A moderator's decision: REMOVE_MESSAGE deletes the message for everyone; about a held account,
     * DISMISS releases its held messages, BAN and SUSPEND keep them withheld for good.
     */
    async "moderation.action_taken"(
      { caseId, targetKind, targetId, targetUserId, action, moderatorId },
      { eventId },
    ) {
      if (action === "REMOVE_MESSAGE" && targetKind === "MESSAGE") {
        const removed = await removeMessageByModerator(db, live, targetId, moderatorId);
        logger.info(
          { eventId, caseId, messageId: targetId, removed },
          "moderation.action_taken: message removed",
        );
        return;
      }
      if (!live) return;
      if (action === "DISMISS") {
        const delivered = await releaseHold(live, targetUserId, logger);
        logger.info(
          { eventId, caseId, userId: targetUserId, delivered },
          "moderation.action_taken: hold released",
        );
      } else if (action === "BAN" || action === "SUSPEND") {
        await discardHold(live, targetUserId);
        logger.info(
          { eventId, caseId, userId: targetUserId, action },
          "moderation.action_taken: held messages withheld for good",
        );
      }
    },
    async "match.ended"({ matchId, userIds }, { eventId }) {
      const closed = await closeMatchConversation(db, live, matchId, userIds);
      logger.info({ eventId, matchId, conversationId: closed }, "match.ended: direct conversation closed");
    },
  };
}

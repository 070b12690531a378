import { appError, ErrorCode, outboxEventData, requireModerator, requireUuid, requireViewer } from "@hv/kit";
import type { UsersContext } from "../context";
import { cleanText } from "./input";
import { profileChangedPayload } from "./profile";

type ReportReason = "SPAM" | "HARASSMENT" | "INAPPROPRIATE_CONTENT" | "FAKE_PROFILE" | "UNDERAGE" | "SCAM" | "OTHER";

/** The other person must exist (banned or not: a block must still work) and not be the viewer. */
async function otherUser(context: UsersContext, id: string, field: string, viewerId: string): Promise<string> {
  const userId = requireUuid(id, field);
  if (userId === viewerId) throw appError(ErrorCode.BAD_USER_INPUT, "You cannot do this to yourself", { field });
  const exists = await context.services.db.user.count({ where: { id: userId } });
  if (exists === 0) throw appError(ErrorCode.NOT_FOUND, "No such user", { field });
  return userId;
}

export const safetyResolvers = {
  Query: {
    async myBlockedUserIds(_: unknown, __: unknown, context: UsersContext) {
      const viewer = requireViewer(context);
      const blocks = await context.services.db.block.findMany({
        where: { blockerId: viewer.userId },
        select: { blockedId: true },
        orderBy: { createdAt: "asc" },
      });
      return blocks.map((block) => block.blockedId);
    },
  },
  Mutation: {
    /** Idempotent: blocking twice changes nothing and emits no second event. */
    async blockUser(_: unknown, args: { userId: string }, context: UsersContext) {
      const viewer = requireViewer(context);
      const blockedId = await otherUser(context, args.userId, "userId", viewer.userId);
      const { db } = context.services;
      await db.$transaction(async (tx) => {
        const inserted = await tx.block.createMany({ data: [{ blockerId: viewer.userId, blockedId }], skipDuplicates: true });
        if (inserted.count > 0) {
          await tx.outboxEvent.create({ data: outboxEventData("user.blocked", { blockerId: viewer.userId, blockedId }) });
        }
      });
      context.services.flushEvents();
      return true;
    },
    async unblockUser(_: unknown, args: { userId: string }, context: UsersContext) {
      const viewer = requireViewer(context);
      const blockedId = requireUuid(args.userId, "userId");
      await context.services.db.$transaction(async (tx) => {
        const removed = await tx.block.deleteMany({ where: { blockerId: viewer.userId, blockedId } });
        if (removed.count > 0) {
          await tx.outboxEvent.create({ data: outboxEventData("user.unblocked", { blockerId: viewer.userId, blockedId }) });
        }
      });
      context.services.flushEvents();
      return true;
    },
    async reportUser(
      _: unknown,
      { input }: { input: { userId: string; reason: ReportReason; details?: string | null } },
      context: UsersContext,
    ) {
      const viewer = requireViewer(context);
      const reportedId = await otherUser(context, input.userId, "input.userId", viewer.userId);
      const details = input.details == null ? null : cleanText(input.details, "input.details", { min: 0, max: 1000, multiline: true }) || null;
      return context.services.db.report.create({
        data: { reporterId: viewer.userId, reportedId, reason: input.reason, details },
        select: { id: true, createdAt: true },
      });
    },
    /** Moderators: the profile disappears at once and every session of the user ends. */
    async banUser(_: unknown, args: { userId: string }, context: UsersContext) {
      const moderator = requireModerator(context);
      const userId = await otherUser(context, args.userId, "userId", moderator.userId);
      const { db, sessions, profiles } = context.services;
      await db.$transaction(async (tx) => {
        const user = await tx.user.update({ where: { id: userId }, data: { bannedAt: new Date() }, omit: { passwordHash: true, email: true } });
        await tx.outboxEvent.create({ data: outboxEventData("user.banned", { userId }) });
        await tx.outboxEvent.create({ data: outboxEventData("user.profile_changed", profileChangedPayload(user)) });
      });
      context.services.flushEvents();
      await sessions.endAll(userId, "banned");
      await profiles.invalidate(userId);
      return true;
    },
  },
};

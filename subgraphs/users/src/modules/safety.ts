import { appError, ErrorCode, outboxEventData, requireModerator, requireUuid, requireViewer } from "@hv/kit";
import type { UsersContext } from "../context";
import { cleanText } from "./input";
import { caseAboutUser, resolveCase } from "./moderation";
import { fileReport } from "./moderation-queue";

type ReportReason =
  "SPAM" | "HARASSMENT" | "INAPPROPRIATE_CONTENT" | "FAKE_PROFILE" | "UNDERAGE" | "SCAM" | "OTHER";

/** The other person must exist (banned or not: a block must still work) and not be the viewer. */
async function otherUser(
  context: UsersContext,
  id: string,
  field: string,
  viewerId: string,
): Promise<string> {
  const userId = requireUuid(id, field);
  if (userId === viewerId)
    throw appError(ErrorCode.BAD_USER_INPUT, "You cannot do this to yourself", { field });
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
        const inserted = await tx.block.createMany({
          data: [{ blockerId: viewer.userId, blockedId }],
          skipDuplicates: true,
        });
        if (inserted.count > 0) {
          await tx.outboxEvent.create({
            data: outboxEventData("user.blocked", { blockerId: viewer.userId, blockedId }),
          });
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
          await tx.outboxEvent.create({
            data: outboxEventData("user.unblocked", { blockerId: viewer.userId, blockedId }),
          });
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
      const details =
        input.details == null
          ? null
          : cleanText(input.details, "input.details", { min: 0, max: 1000, multiline: true }) || null;
      const { db } = context.services;
      return db.$transaction(async (tx) => {
        const target = await tx.user.findUniqueOrThrow({
          where: { id: reportedId },
          select: { displayName: true, bio: true },
        });
        const filed = await fileReport(tx, {
          reporterId: viewer.userId,
          targetKind: "USER",
          targetId: reportedId,
          targetUserId: reportedId,
          reason: input.reason,
          details,
          snapshot: { displayName: target.displayName, bio: target.bio },
        });
        return { id: filed.id, createdAt: filed.createdAt };
      });
    },
    /** Deprecated alias: files a case about the user and resolves it with BAN (audited, evented). */
    async banUser(_: unknown, args: { userId: string }, context: UsersContext) {
      const moderator = requireModerator(context);
      const userId = await otherUser(context, args.userId, "userId", moderator.userId);
      const caseId = await caseAboutUser(context, moderator, userId);
      await resolveCase(context, moderator, {
        caseId,
        action: "BAN",
        reason: "banUser (deprecated mutation)",
      });
      return true;
    },
  },
};

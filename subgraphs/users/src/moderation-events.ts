import type { EventHandlers, Logger } from "@hv/kit";
import type { UsersDb } from "./db";
import { fileReport, type ReportReason } from "./modules/moderation-queue";

/** Chat's message report reasons, as the queue's. */
const MESSAGE_REASONS: Record<string, ReportReason> = {
  SPAM: "SPAM",
  HARASSMENT: "HARASSMENT",
  INAPPROPRIATE: "INAPPROPRIATE_CONTENT",
  SCAM: "SCAM",
  OTHER: "OTHER",
};

/**
 * The moderation queue's intake from other subgraphs. Each report is filed once per source
 * (`sourceId`: the report's id in Chat or Media, the signal's event id), so a redelivered event
 * changes nothing. A reporter unknown to Users (deleted since) files no report.
 */
export function usersEventHandlers(db: UsersDb, logger: Logger): EventHandlers<"users"> {
  const reporterExists = async (id: string) => (await db.user.count({ where: { id } })) > 0;
  return {
    async "message.reported"(event, { eventId }) {
      if (!(await reporterExists(event.reporterId))) return;
      const filed = await db.$transaction((tx) =>
        fileReport(tx, {
          reporterId: event.reporterId,
          targetKind: "MESSAGE",
          targetId: event.messageId,
          targetUserId: event.senderId,
          reason: MESSAGE_REASONS[event.reason] ?? "OTHER",
          details: event.note,
          snapshot: {
            messageId: event.messageId,
            conversationId: event.conversationId,
            senderId: event.senderId,
            text: event.text,
            sentAt: event.sentAt,
          },
          sourceId: `message:${event.reportId}`,
        }),
      );
      logger.info({ eventId, caseId: filed.caseId }, "message.reported: filed");
    },
    async "media.reported"(event, { eventId }) {
      if (!(await reporterExists(event.reporterId))) return;
      const filed = await db.$transaction((tx) =>
        fileReport(tx, {
          reporterId: event.reporterId,
          targetKind: "MEDIA",
          targetId: event.mediaId,
          targetUserId: event.ownerId,
          reason: event.reason,
          details: event.note,
          snapshot: {
            mediaId: event.mediaId,
            ownerId: event.ownerId,
            kind: event.kind,
            variantKeys: event.variantKeys,
          },
          sourceId: `media:${event.reportId}`,
        }),
      );
      logger.info({ eventId, caseId: filed.caseId }, "media.reported: filed");
    },
    async "safety.signal_raised"(event, { eventId }) {
      const filed = await db.$transaction((tx) =>
        fileReport(tx, {
          reporterId: null,
          targetKind: "USER",
          targetId: event.userId,
          targetUserId: event.userId,
          reason: "SPAM",
          details: event.detail.slice(0, 1000),
          snapshot: null,
          signal: event.signal,
          sourceId: `signal:${eventId}`,
        }),
      );
      logger.info({ eventId, caseId: filed.caseId, signal: event.signal }, "safety.signal_raised: filed");
    },
  };
}

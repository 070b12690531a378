import type { PushJob } from "./jobs";
import type { PushNotification } from "./providers/types";

/**
 * The words of a notification. English only for now: the app can localise with `data.kind`
 * (a localised `title-loc-key`/`body-loc-key` is a later step).
 */
export function renderNotification(
  job: PushJob,
  actorName: string,
  messagePreviews: boolean,
  timing: Pick<PushNotification, "expiresAt" | "ttlSeconds">,
): PushNotification {
  if (job.kind === "message") {
    const { message } = job;
    const body = !messagePreviews ? "New message" : (message.preview ?? "Sent an attachment");
    return {
      kind: "message",
      title: actorName,
      body,
      // The app badge: unread in all unmuted conversations; this one's count for older events.
      badge: message.totalUnreadCount ?? message.unreadCount,
      collapseKey: message.conversationId,
      data: {
        conversationId: message.conversationId,
        conversationKind: message.conversationKind,
        messageId: message.messageId,
        seq: String(message.seq),
        senderId: job.actorId,
      },
      ...timing,
    };
  }
  return {
    kind: "match",
    title: "New match",
    body: `You and ${actorName} liked each other`,
    collapseKey: `match-${job.match.matchId}`,
    data: { matchId: job.match.matchId, userId: job.actorId },
    ...timing,
  };
}

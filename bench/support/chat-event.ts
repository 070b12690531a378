import type { ChatEventPayload } from "@hv/chat/src/modules/bus";

/** A MESSAGE_ADDED event as Chat publishes it: `seq` in `conversationId`, sent by `senderId`. */
export function sampleMessageEvent(
  seq: number,
  ids: { conversationId: string; senderId: string; messageId: string },
): ChatEventPayload {
  return {
    kind: "MESSAGE_ADDED",
    conversationId: ids.conversationId,
    seq,
    actorId: ids.senderId,
    occurredAt: new Date().toISOString(),
    message: {
      id: ids.messageId,
      conversationId: ids.conversationId,
      seq,
      senderId: ids.senderId,
      clientMessageId: `client-${seq}`,
      text: "hello there",
      replyToId: null,
      createdAt: new Date(),
      editedAt: null,
      deletedAt: null,
      version: seq,
      attachmentIds: [],
      reactions: [],
    },
  };
}

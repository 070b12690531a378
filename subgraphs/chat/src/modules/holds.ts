import type { Logger } from "@hv/kit";
import { Prisma } from "../generated/prisma/client";
import type { ChatServices } from "./context";
import { storeMessage, type NewMessage } from "./messages";
import type { MessageRow } from "./rows";

/**
 * Messages of held accounts (docs/spam-signals.md): stored in held_messages without a seq, shown
 * only to their sender, given the conversation's next seqs when a moderator releases the hold.
 */

interface HeldRow {
  id: string;
  conversation_id: string;
  sender_id: string;
  client_message_id: string;
  text: string | null;
  reply_to_id: string | null;
  attachment_ids: string[] | null;
  created_at: Date;
  /** The seq the sender is shown: the conversation's last seq plus this message's place among the held. */
  seq: number;
}

const SELECT_HELD = Prisma.sql`
  SELECT h.id::text, h.conversation_id::text, h.sender_id::text, h.client_message_id, h.text, h.reply_to_id::text,
         h.attachment_ids::text[] AS attachment_ids, h.created_at,
         (c.last_seq + row_number() OVER (PARTITION BY h.conversation_id ORDER BY h.created_at, h.id))::int AS seq
    FROM held_messages h JOIN conversations c ON c.id = h.conversation_id`;

function toRow(held: HeldRow): MessageRow {
  return {
    id: held.id,
    conversationId: held.conversation_id,
    seq: held.seq,
    senderId: held.sender_id,
    clientMessageId: held.client_message_id,
    text: held.text,
    replyToId: held.reply_to_id,
    createdAt: held.created_at,
    editedAt: null,
    deletedAt: null,
    version: 0,
    attachmentIds: held.attachment_ids ?? [],
    reactions: [],
  };
}

/** The sender's held messages in a conversation, oldest first, as the sender sees them. */
export async function heldFor(
  services: ChatServices,
  conversationId: string,
  senderId: string,
): Promise<MessageRow[]> {
  const rows = await services.sql.query<HeldRow>(Prisma.sql`${SELECT_HELD}
     WHERE h.conversation_id = ${conversationId}::uuid AND h.sender_id = ${senderId}::uuid
     ORDER BY h.created_at, h.id`);
  return rows.map(toRow);
}

export async function findHeld(
  services: ChatServices,
  conversationId: string,
  senderId: string,
  clientMessageId: string,
): Promise<MessageRow | null> {
  return (
    (await heldFor(services, conversationId, senderId)).find(
      (row) => row.clientMessageId === clientMessageId,
    ) ?? null
  );
}

/** Stores a withheld message and tells only the sender (their other devices) about it. */
export async function holdMessage(services: ChatServices, message: NewMessage): Promise<MessageRow> {
  await services.sql.query(Prisma.sql`
    INSERT INTO held_messages (id, conversation_id, sender_id, client_message_id, text, reply_to_id, attachment_ids, created_at)
    VALUES (${message.messageId}::uuid, ${message.conversationId}::uuid, ${message.senderId}::uuid, ${message.clientMessageId},
            ${message.text}, ${message.replyToId}::uuid, ${message.attachmentIds}::uuid[], ${message.now}::timestamptz)
    ON CONFLICT (conversation_id, sender_id, client_message_id) DO NOTHING`);
  const row = await findHeld(services, message.conversationId, message.senderId, message.clientMessageId);
  if (!row) throw new Error("a held message vanished while it was stored");
  await services.bus.publish([message.senderId], {
    kind: "MESSAGE_ADDED",
    conversationId: row.conversationId,
    seq: row.seq,
    message: row,
    actorId: message.senderId,
    occurredAt: new Date().toISOString(),
  });
  return row;
}

/**
 * Ends the hold and delivers the held messages in the order they were sent, each with the
 * conversation's next seq (as if sent now, same id). One that can no longer be stored (the
 * conversation closed, a block) stays withheld. Safe to repeat.
 */
export async function releaseHold(services: ChatServices, userId: string, logger: Logger): Promise<number> {
  await services.sql.query(Prisma.sql`DELETE FROM held_senders WHERE user_id = ${userId}::uuid`);
  const held = await services.sql.query<HeldRow>(Prisma.sql`${SELECT_HELD}
     WHERE h.sender_id = ${userId}::uuid AND h.discarded_at IS NULL
     ORDER BY h.created_at, h.id`);
  let delivered = 0;
  for (const message of held) {
    const stored = await storeMessage(services, {
      messageId: message.id,
      conversationId: message.conversation_id,
      senderId: userId,
      clientMessageId: message.client_message_id,
      text: message.text,
      attachmentIds: message.attachment_ids ?? [],
      replyToId: message.reply_to_id,
      now: message.created_at,
    });
    if (stored instanceof Error) {
      logger.info(
        { messageId: message.id, reason: stored.message },
        "held message not deliverable: stays withheld",
      );
      await services.sql.query(
        Prisma.sql`UPDATE held_messages SET discarded_at = now() WHERE id = ${message.id}::uuid`,
      );
      continue;
    }
    await services.sql.query(Prisma.sql`DELETE FROM held_messages WHERE id = ${message.id}::uuid`);
    delivered += 1;
  }
  return delivered;
}

/** A ban or suspension: the hold ends and what it held is never delivered (the sender still sees it). */
export async function discardHold(services: ChatServices, userId: string): Promise<void> {
  await services.sql.query(Prisma.sql`
    WITH hold AS (DELETE FROM held_senders WHERE user_id = ${userId}::uuid)
    UPDATE held_messages SET discarded_at = now() WHERE sender_id = ${userId}::uuid AND discarded_at IS NULL`);
}

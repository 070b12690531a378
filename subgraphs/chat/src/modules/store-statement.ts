import { prepared, type SqlStatement } from "@hv/kit";
import { Prisma } from "../generated/prisma/client";

export type ConversationKind = "DIRECT" | "GROUP";

/** A new message, as STORE writes it (a send, or a held message released). */
export interface NewMessage {
  messageId: string;
  conversationId: string;
  senderId: string;
  clientMessageId: string;
  text: string | null;
  attachmentIds: string[];
  replyToId: string | null;
  now: Date;
}

/** The send's pre-check: membership, the conversation's kind and state, ban, hold, an earlier send with this id. */
export function precheckStatement(
  conversationId: string,
  senderId: string,
  clientMessageId: string,
): SqlStatement {
  return prepared(
    "chat_send_precheck",
    Prisma.sql`
    SELECT c.kind::text AS kind, c.closed_at IS NOT NULL AS closed,
           EXISTS (SELECT 1 FROM banned_users WHERE user_id = ${senderId}::uuid) AS banned,
           EXISTS (SELECT 1 FROM held_senders WHERE user_id = ${senderId}::uuid) AS held,
           (SELECT e.id::text FROM messages e
             WHERE e.conversation_id = ${conversationId}::uuid AND e.sender_id = ${senderId}::uuid
               AND e.client_message_id = ${clientMessageId}) AS existing
      FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.conversation_id = ${conversationId}::uuid AND m.user_id = ${senderId}::uuid`,
  );
}

/** Whose pre-check is asked: a sender's send to a conversation, under its client message id. */
export interface PrecheckedSend {
  conversationId: string;
  senderId: string;
  clientMessageId: string;
}

/**
 * The pre-checks of several sends in one statement: row `ord` answers the `ord`-th (from 1) of the
 * arrays; a send whose sender is not a member has no row. The same reads as `precheckStatement`.
 */
export function precheckBatchStatement(batch: ReadonlyArray<PrecheckedSend>): SqlStatement {
  return prepared(
    "chat_send_precheck_batch",
    Prisma.sql`
    SELECT t.ord::int AS ord, c.kind::text AS kind, c.closed_at IS NOT NULL AS closed,
           EXISTS (SELECT 1 FROM banned_users WHERE user_id = t.sender_id) AS banned,
           EXISTS (SELECT 1 FROM held_senders WHERE user_id = t.sender_id) AS held,
           (SELECT e.id::text FROM messages e
             WHERE e.conversation_id = t.conversation_id AND e.sender_id = t.sender_id
               AND e.client_message_id = t.client_message_id) AS existing
      FROM unnest(${batch.map((w) => w.conversationId)}::uuid[], ${batch.map((w) => w.senderId)}::uuid[],
                  ${batch.map((w) => w.clientMessageId)}::text[]) WITH ORDINALITY
             AS t(conversation_id, sender_id, client_message_id, ord)
      JOIN conversation_members m ON m.conversation_id = t.conversation_id AND m.user_id = t.sender_id
      JOIN conversations c ON c.id = m.conversation_id`,
  );
}

/** A block either way between the sender and member `o`. */
const blockWithMember = (senderId: string) => Prisma.sql`
  (b.blocker_id = ${senderId}::uuid AND b.blocked_id = o.user_id) OR (b.blocked_id = ${senderId}::uuid AND b.blocker_id = o.user_id)`;

/**
 * STORE, one statement (one transaction), in the variant the send needs: each part a send may not
 * use (the one-to-one block check, the reply check, the attachments) is in the text only when it
 * applies, so the common text send initialises a small plan. Each variant is its own prepared
 * statement (`chat_send_store_<kind>_r<0|1>_a<0|1>`). `kind` unknown (a held message released)
 * keeps both kinds' checks.
 *
 * - conv: the conversation row's lock and seq = last_seq + 1 (a concurrent sender waits for the
 *   lock and then sees the new last_seq: seq is gap-free, assigned in the storing transaction).
 *   Its conditions (open, of the kind the caller read, sender a member and not banned, no block
 *   either way in a one-to-one, the replied message in this conversation) are re-checked on the
 *   locked row: no row, nothing stored.
 * - msg: the message. A racing retry with the same clientMessageId that committed first makes
 *   this a unique violation, which rolls the whole statement back (seq included).
 * - att, mine: attachments, the sender's own read/delivered markers.
 * - others, recipients, event: the outbox event with each recipient (not muted, not blocked
 *   either way), their unread count in this conversation and in all their unmuted ones (badge).
 *   In a one-to-one nobody is blocked with the sender once conv has its row.
 */
export function storeStatement(
  message: NewMessage,
  eventBase: Record<string, unknown>,
  eventId: string,
  kind: ConversationKind | undefined,
): SqlStatement {
  const { messageId, conversationId, senderId, clientMessageId, text, attachmentIds, replyToId, now } =
    message;
  const reply = replyToId !== null;
  const attachments = attachmentIds.length > 0;
  // One string for the three timestamps (node-postgres would format a Date once for each).
  const at = now.toISOString();
  const directBlock = Prisma.sql`NOT EXISTS (
                SELECT 1 FROM conversation_members o JOIN blocks b ON ${blockWithMember(senderId)}
                 WHERE o.conversation_id = c.id AND o.user_id <> ${senderId}::uuid)`;
  const kindCheck =
    kind === "DIRECT"
      ? Prisma.sql`AND c.kind = 'DIRECT' AND ${directBlock}`
      : kind === "GROUP"
        ? Prisma.sql`AND c.kind <> 'DIRECT'`
        : Prisma.sql`AND (c.kind <> 'DIRECT' OR ${directBlock})`;
  const replyCheck = reply
    ? Prisma.sql`AND EXISTS (SELECT 1 FROM messages r WHERE r.id = ${replyToId}::uuid AND r.conversation_id = c.id)`
    : Prisma.empty;
  const attachmentRows = attachments
    ? Prisma.sql`, att AS (
        INSERT INTO message_attachments (message_id, media_id, position)
        SELECT ${messageId}::uuid, a.media_id, (a.ord - 1)::int
          FROM msg, unnest(${attachmentIds}::uuid[]) WITH ORDINALITY AS a(media_id, ord)
      )`
    : Prisma.empty;
  const blocked =
    kind === "DIRECT"
      ? Prisma.sql`false`
      : Prisma.sql`EXISTS (SELECT 1 FROM blocks b WHERE ${blockWithMember(senderId)})`;
  const name = `chat_send_store_${(kind ?? "any").toLowerCase()}_r${Number(reply)}_a${Number(attachments)}`;
  return prepared(
    name,
    Prisma.sql`
      WITH conv AS (
        UPDATE conversations c SET last_seq = c.last_seq + 1, version = c.version + 1, last_activity_at = ${at}::timestamptz
         WHERE c.id = ${conversationId}::uuid
           AND c.closed_at IS NULL
           AND EXISTS (SELECT 1 FROM conversation_members s WHERE s.conversation_id = c.id AND s.user_id = ${senderId}::uuid)
           AND NOT EXISTS (SELECT 1 FROM banned_users WHERE user_id = ${senderId}::uuid)
           ${kindCheck} ${replyCheck}
        RETURNING c.kind::text AS kind, c.last_seq AS seq, c.version AS version
      ), msg AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, text, reply_to_id, created_at, version)
        SELECT ${messageId}::uuid, ${conversationId}::uuid, conv.seq, ${senderId}::uuid, ${clientMessageId}::text,
               ${text}::text, ${reply ? Prisma.sql`${replyToId}::uuid` : Prisma.sql`NULL`}, ${at}::timestamptz, conv.version
          FROM conv
        RETURNING seq, version
      )${attachmentRows}, mine AS (
        UPDATE conversation_members m
           SET last_read_seq = GREATEST(m.last_read_seq, msg.seq), delivered_seq = GREATEST(m.delivered_seq, msg.seq)
          FROM msg
         WHERE m.conversation_id = ${conversationId}::uuid AND m.user_id = ${senderId}::uuid
      ), others AS (
        SELECT o.user_id, o.muted, o.last_read_seq, ${blocked} AS blocked
          FROM conversation_members o
         WHERE o.conversation_id = ${conversationId}::uuid AND o.user_id <> ${senderId}::uuid
      ), recipients AS (
        -- total: this conversation (whose new last_seq this statement's snapshot cannot see) plus
        -- the recipient's other conversations they have not muted, each counted as unreadCount is.
        SELECT o.user_id, GREATEST(0, msg.seq - o.last_read_seq) AS unread,
               GREATEST(0, msg.seq - o.last_read_seq) + COALESCE((
                 SELECT sum(GREATEST(0, c2.last_seq - m2.last_read_seq))
                   FROM conversation_members m2 JOIN conversations c2 ON c2.id = m2.conversation_id
                  WHERE m2.user_id = o.user_id AND m2.conversation_id <> ${conversationId}::uuid AND NOT m2.muted), 0)::int AS total
          FROM others o, msg
         WHERE NOT o.muted AND NOT o.blocked
      ), event AS (
        INSERT INTO outbox_events (id, type, payload, created_at)
        SELECT ${eventId}::uuid, 'message.created',
               ${JSON.stringify(eventBase)}::jsonb || jsonb_build_object(
                 'seq', msg.seq,
                 'conversationKind', conv.kind,
                 'recipients', COALESCE(
                   (SELECT jsonb_agg(jsonb_build_object('userId', r.user_id, 'unreadCount', r.unread, 'totalUnreadCount', r.total) ORDER BY r.user_id) FROM recipients r),
                   '[]'::jsonb)),
               ${at}::timestamptz
          FROM conv, msg
        RETURNING payload
      )
      SELECT conv.kind, msg.seq, msg.version, (SELECT payload FROM event) AS event,
             ${senderId}::text || ARRAY(SELECT o.user_id::text FROM others o WHERE NOT o.blocked) AS audience
        FROM conv, msg`,
  );
}

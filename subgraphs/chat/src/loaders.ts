import { prepared, signMediaGrant } from "@hv/kit";
import DataLoader from "dataloader";
import { Prisma } from "./generated/prisma/client";
import type { ChatServices } from "./modules/context";
import { hiddenByBlocks } from "./modules/conversations";
import { invitationsOf, type InvitationRow } from "./modules/invitations";
import { presenceOf } from "./modules/presence";
import {
  MESSAGE_INCLUDE,
  messageFromJson,
  toMessageRow,
  type ConversationRow,
  type MessageJson,
  type MessageRow,
} from "./modules/rows";

const GRANT_TTL_SECONDS = 10 * 60;

/** One member of a conversation, as `ConversationMember` resolves from it. */
export interface MemberRow {
  userId: string;
  role: ConversationRow["me"]["role"];
  lastReadSeq: number;
  deliveredSeq: number;
  joinedAt: Date;
}

/** A conversation with the viewer's membership and its last message, one row of `conversationsByMatch`. */
type ConversationMembershipRow = Omit<ConversationRow, "me" | "lastMessage"> &
  ConversationRow["me"] & { lastMessage: MessageJson | null; lastSenderBlocked: boolean };

/**
 * The viewer's conversations opened by these matches, less DIRECT ones with someone the viewer
 * blocked (as `hiddenByBlocks`), each with its last message (as JSON: `lastMessage`, null when
 * there is none) and whether a block either way stands between the viewer and that message's
 * sender: what `Conversation.lastMessage` needs, in one plain statement.
 */
const conversationsByMatch = (viewerId: string, matchIds: readonly string[]) => Prisma.sql`
  SELECT c.id::text AS id, c.kind::text AS kind, c.title, c.created_at AS "createdAt", c.closed_at AS "closedAt",
         c.closed_reason::text AS "closedReason", c.match_id::text AS "matchId", c.last_seq AS "lastSeq",
         c.last_activity_at AS "lastActivityAt", m.role::text AS role, m.last_read_seq AS "lastReadSeq",
         m.delivered_seq AS "deliveredSeq", m.muted, to_json(last) AS "lastMessage",
         EXISTS (SELECT 1 FROM blocks b
                  WHERE (b.blocker_id = ${viewerId}::uuid AND b.blocked_id = last.sender)
                     OR (b.blocker_id = last.sender AND b.blocked_id = ${viewerId}::uuid)) AS "lastSenderBlocked"
    FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
    LEFT JOIN LATERAL (
      SELECT ${MESSAGE_COLUMNS}, m.sender_id AS sender
        FROM messages m WHERE m.conversation_id = c.id AND m.seq = c.last_seq AND c.last_seq > 0) last ON true
   WHERE m.user_id = ${viewerId}::uuid AND c.match_id = ANY(${[...matchIds]}::uuid[])
     AND NOT (c.kind = 'DIRECT' AND EXISTS (
       SELECT 1 FROM blocks b JOIN conversation_members o ON o.user_id = b.blocked_id
        WHERE b.blocker_id = ${viewerId}::uuid AND o.conversation_id = c.id))`;

/** A message's columns (the row aliased `m`) with its attachments and reactions, in `toMessageRow`'s input shape. */
const MESSAGE_COLUMNS = Prisma.sql`
  m.id::text AS id, m.conversation_id::text AS "conversationId", m.seq, m.sender_id::text AS "senderId",
  m.client_message_id AS "clientMessageId", m.text, m.reply_to_id::text AS "replyToId",
  m.created_at AS "createdAt", m.edited_at AS "editedAt", m.deleted_at AS "deletedAt", m.version,
  COALESCE((SELECT json_agg(json_build_object('mediaId', a.media_id::text, 'position', a.position) ORDER BY a.position)
              FROM message_attachments a WHERE a.message_id = m.id), '[]'::json) AS attachments,
  COALESCE((SELECT json_agg(json_build_object('emoji', r.emoji, 'userId', r.user_id::text) ORDER BY r.created_at)
              FROM reactions r WHERE r.message_id = m.id), '[]'::json) AS reactions`;

/** Messages by (conversation, seq). */
const messagesBySeq = (pairs: ReadonlyArray<{ conversationId: string; seq: number }>) => Prisma.sql`
  SELECT ${MESSAGE_COLUMNS}
    FROM unnest(${pairs.map((pair) => pair.conversationId)}::uuid[], ${pairs.map((pair) => pair.seq)}::int[]) AS k(conversation_id, seq)
    JOIN messages m ON m.conversation_id = k.conversation_id AND m.seq = k.seq`;

/**
 * Of these media ids, those the viewer may read, with their sender: the one sender Chat knows for
 * the media (media_senders), a live message of theirs holding it in a conversation the viewer
 * belongs to, and no block between the viewer and the sender either way; one plain statement.
 */
const readableMedia = (viewerId: string, mediaIds: readonly string[]) => Prisma.sql`
  SELECT s.media_id::text AS "mediaId", s.sender_id::text AS "senderId"
    FROM media_senders s
   WHERE s.media_id = ANY(${[...mediaIds]}::uuid[])
     AND EXISTS (
       SELECT 1 FROM message_attachments a
         JOIN messages msg ON msg.id = a.message_id
         JOIN conversation_members cm ON cm.conversation_id = msg.conversation_id AND cm.user_id = ${viewerId}::uuid
        WHERE a.media_id = s.media_id AND msg.sender_id = s.sender_id AND msg.deleted_at IS NULL)
     AND NOT EXISTS (
       SELECT 1 FROM blocks b
        WHERE (b.blocker_id = ${viewerId}::uuid AND b.blocked_id = s.sender_id)
           OR (b.blocker_id = s.sender_id AND b.blocked_id = ${viewerId}::uuid))`;

type MembershipWithConversation = {
  role: ConversationRow["me"]["role"];
  lastReadSeq: number;
  deliveredSeq: number;
  muted: boolean;
  conversation: Omit<ConversationRow, "me"> & Record<string, unknown>;
};

function toConversationRow(row: MembershipWithConversation): ConversationRow {
  const { conversation } = row;
  return {
    id: conversation.id,
    kind: conversation.kind,
    title: conversation.title,
    createdAt: conversation.createdAt,
    closedAt: conversation.closedAt,
    closedReason: conversation.closedReason,
    matchId: conversation.matchId,
    lastSeq: conversation.lastSeq,
    lastActivityAt: conversation.lastActivityAt,
    me: { role: row.role, lastReadSeq: row.lastReadSeq, deliveredSeq: row.deliveredSeq, muted: row.muted },
  };
}

/** One set per request (and per subscription event): each loader turns N lookups into one query. */
export function createLoaders(services: ChatServices, viewerId: string | null) {
  const { db, sql } = services;
  /** Per person: everyone they blocked or who blocked them. */
  const blocked = new DataLoader<string, Set<string>>(async (ids) => {
    const rows = await sql.query<{ blockerId: string; blockedId: string }>(Prisma.sql`
      SELECT blocker_id::text AS "blockerId", blocked_id::text AS "blockedId" FROM blocks
       WHERE blocker_id = ANY(${[...ids]}::uuid[]) OR blocked_id = ANY(${[...ids]}::uuid[])`);
    return ids.map(
      (id) =>
        new Set(
          rows.flatMap((row) =>
            row.blockerId === id ? [row.blockedId] : row.blockedId === id ? [row.blockerId] : [],
          ),
        ),
    );
  });
  return {
    /** The conversation with the viewer's membership; null for non-members (and everyone when signed out). */
    conversationById: new DataLoader<string, ConversationRow | null>(async (ids) => {
      if (!viewerId) return ids.map(() => null);
      const hidden = await hiddenByBlocks(db, viewerId);
      const rows = await db.conversationMember.findMany({
        where: { userId: viewerId, conversationId: { in: [...ids] }, conversation: hidden },
        select: { role: true, lastReadSeq: true, deliveredSeq: true, muted: true, conversation: true },
      });
      const byId = new Map(rows.map((row) => [row.conversation.id, toConversationRow(row)]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    /** The viewer's conversation opened by each match id (Match.conversation); null when none or hidden. */
    conversationByMatchId: new DataLoader<string, ConversationRow | null>(async (matchIds) => {
      if (!viewerId) return matchIds.map(() => null);
      const rows = await sql.query<ConversationMembershipRow>(
        prepared("chat_conversations_by_match", conversationsByMatch(viewerId, matchIds)),
      );
      const byMatch = new Map<string | null, ConversationRow>();
      for (const row of rows) {
        byMatch.set(row.matchId, {
          id: row.id,
          kind: row.kind,
          title: row.title,
          createdAt: row.createdAt,
          closedAt: row.closedAt,
          closedReason: row.closedReason,
          matchId: row.matchId,
          lastSeq: row.lastSeq,
          lastActivityAt: row.lastActivityAt,
          me: {
            role: row.role,
            lastReadSeq: row.lastReadSeq,
            deliveredSeq: row.deliveredSeq,
            muted: row.muted,
          },
          lastMessage:
            row.lastMessage === null || row.lastSenderBlocked ? null : messageFromJson(row.lastMessage),
        });
      }
      return matchIds.map((id) => byMatch.get(id) ?? null);
    }),
    /** The viewer's own invitations by id (INVITATION_RECEIVED events); null for anyone else's. */
    invitationById: new DataLoader<string, InvitationRow | null>(async (ids) =>
      viewerId ? invitationsOf(db, viewerId, ids) : ids.map(() => null),
    ),
    /** Pending invitees of each group (shown to its OWNER and ADMINs). */
    invitedTo: new DataLoader<string, string[]>(async (conversationIds) => {
      const rows = await db.groupInvitation.findMany({
        where: { conversationId: { in: [...conversationIds] }, status: "PENDING" },
        orderBy: { createdAt: "asc" },
        select: { conversationId: true, inviteeId: true },
      });
      return conversationIds.map((id) =>
        rows.filter((row) => row.conversationId === id).map((row) => row.inviteeId),
      );
    }),
    membersOf: new DataLoader<string, MemberRow[]>(async (ids) => {
      const rows = await db.conversationMember.findMany({
        where: { conversationId: { in: [...ids] } },
        orderBy: { joinedAt: "asc" },
      });
      return ids.map((id) => rows.filter((row) => row.conversationId === id));
    }),
    messageById: new DataLoader<string, MessageRow | null>(async (ids) => {
      const rows = await db.message.findMany({ where: { id: { in: [...ids] } }, include: MESSAGE_INCLUDE });
      const byId = new Map(rows.map((row) => [row.id, toMessageRow(row)]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    /** Last message by (conversation, seq) pairs: key `${conversationId}:${seq}`. */
    messageBySeq: new DataLoader<string, MessageRow | null>(async (keys) => {
      const pairs = keys.map((key) => {
        const [conversationId = "", seq = "0"] = key.split(":");
        return { conversationId, seq: Number(seq) };
      });
      const rows = await sql.query<Parameters<typeof toMessageRow>[0]>(messagesBySeq(pairs));
      const byKey = new Map(rows.map((row) => [`${row.conversationId}:${row.seq}`, toMessageRow(row)]));
      return keys.map((key) => byKey.get(key) ?? null);
    }),
    blocked,
    presence: new DataLoader<string, { online: boolean; lastSeenAt: Date | null } | null>(async (ids) => {
      if (!viewerId) return ids.map(() => null);
      const [hidden, shared, viewerBlocks, states] = await Promise.all([
        db.chatSettings.findMany({
          where: { userId: { in: [...ids] }, presenceHidden: true },
          select: { userId: true },
        }),
        db.conversationMember.findMany({
          where: { userId: { in: [...ids] }, conversation: { members: { some: { userId: viewerId } } } },
          select: { userId: true },
          distinct: ["userId"],
        }),
        blocked.load(viewerId),
        presenceOf(services, ids),
      ]);
      const hiddenIds = new Set(hidden.map((row) => row.userId));
      const sharing = new Set(shared.map((row) => row.userId));
      return ids.map((id, index) =>
        hiddenIds.has(id) || viewerBlocks.has(id) || (id !== viewerId && !sharing.has(id))
          ? null
          : (states[index] ?? null),
      );
    }),
    /** A read grant for each media id the viewer may read (member of a conversation with a live message holding it). */
    readGrant: new DataLoader<string, string | null>(async (mediaIds) => {
      if (!viewerId) return mediaIds.map(() => null);
      const rows = await sql.query<{ mediaId: string; senderId: string }>(readableMedia(viewerId, mediaIds));
      if (rows.length === 0) return mediaIds.map(() => null);
      const senderOf = new Map(rows.map((row) => [row.mediaId, row.senderId]));
      const expiresAt = Math.floor(Date.now() / 1000) + GRANT_TTL_SECONDS;
      return mediaIds.map((mediaId) => {
        const ownerId = senderOf.get(mediaId);
        return ownerId
          ? signMediaGrant({ mediaId, viewerId, ownerId, expiresAt }, services.config.mediaGrantSecret)
          : null;
      });
    }),
  };
}
export type ChatLoaders = ReturnType<typeof createLoaders>;

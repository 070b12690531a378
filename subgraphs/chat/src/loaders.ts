import { signMediaGrant } from "@hv/kit";
import DataLoader from "dataloader";
import type { ChatServices } from "./modules/context";
import { hiddenByBlocks } from "./modules/conversations";
import { invitationsOf, type InvitationRow } from "./modules/invitations";
import { presenceOf } from "./modules/presence";
import { MESSAGE_INCLUDE, toMessageRow, type ConversationRow, type MessageRow } from "./modules/rows";

const GRANT_TTL_SECONDS = 10 * 60;

/** One member of a conversation, as `ConversationMember` resolves from it. */
export interface MemberRow {
  userId: string;
  role: ConversationRow["me"]["role"];
  lastReadSeq: number;
  deliveredSeq: number;
  joinedAt: Date;
}

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
  const { db } = services;
  const blocked = new DataLoader<string, Set<string>>(async (ids) => {
    const rows = await db.block.findMany({
      where: { OR: [{ blockerId: { in: [...ids] } }, { blockedId: { in: [...ids] } }] },
      select: { blockerId: true, blockedId: true },
    });
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
      const hidden = await hiddenByBlocks(db, viewerId);
      const rows = await db.conversationMember.findMany({
        where: { userId: viewerId, conversation: { ...hidden, matchId: { in: [...matchIds] } } },
        select: { role: true, lastReadSeq: true, deliveredSeq: true, muted: true, conversation: true },
      });
      const byMatch = new Map(rows.map((row) => [row.conversation.matchId, toConversationRow(row)]));
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
      const rows = await db.message.findMany({ where: { OR: pairs }, include: MESSAGE_INCLUDE });
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
      const [rows, senders] = await Promise.all([
        db.messageAttachment.findMany({
          where: {
            mediaId: { in: [...mediaIds] },
            message: { deletedAt: null, conversation: { members: { some: { userId: viewerId } } } },
          },
          select: { mediaId: true, message: { select: { senderId: true } } },
        }),
        // Each media id has one sender in Chat (sendMessage refuses another): the grant names them,
        // and only a message of theirs holding it counts (older duplicates by others are ignored).
        db.mediaSender.findMany({
          where: { mediaId: { in: [...mediaIds] } },
          select: { mediaId: true, senderId: true },
        }),
      ]);
      const senderOf = new Map(senders.map((row) => [row.mediaId, row.senderId]));
      const viewerBlocks = await blocked.load(viewerId);
      const expiresAt = Math.floor(Date.now() / 1000) + GRANT_TTL_SECONDS;
      return mediaIds.map((mediaId) => {
        const holder = rows.find(
          (row) =>
            row.mediaId === mediaId &&
            row.message.senderId === senderOf.get(mediaId) &&
            !viewerBlocks.has(row.message.senderId),
        );
        return holder
          ? signMediaGrant(
              { mediaId, viewerId, ownerId: holder.message.senderId, expiresAt },
              services.config.mediaGrantSecret,
            )
          : null;
      });
    }),
  };
}
export type ChatLoaders = ReturnType<typeof createLoaders>;

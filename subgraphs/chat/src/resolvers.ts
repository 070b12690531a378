import {
  appError,
  DateTimeScalar,
  ErrorCode,
  isUuid,
  requireUuid,
  requireViewer,
  type SharedWhen,
} from "@hv/kit";
import type { CompleteResolvers } from "./generated/resolvers-types";
import { requireMembership } from "./modules/access";
import { inSeqOrder, mapStream, ORDER_HOLD_MS, type ChatEventPayload } from "./modules/bus";
import type { ChatContext } from "./modules/context";
import * as conversations from "./modules/conversations";
import * as invitations from "./modules/invitations";
import type { InvitationRow } from "./modules/invitations";
import * as messages from "./modules/messages";
import { beat } from "./modules/presence";
import type { ConversationRow, MessageRow } from "./modules/rows";

export type { ChatContext };

const conversation = (id: string, { loaders }: ChatContext) => loaders.conversationById.load(id);
const userRef = (id: string) => ({ __typename: "User", id });

/** The message at the conversation's last seq, null when its sender and the viewer blocked each other. */
async function lastMessageOf(row: ConversationRow, context: ChatContext): Promise<MessageRow | null> {
  const message = await context.loaders.messageBySeq.load(`${row.id}:${row.lastSeq}`);
  if (!message || !context.viewer) return message;
  const blocked = await context.loaders.blocked.load(context.viewer.userId);
  return blocked.has(message.senderId) ? null : message;
}

/** A resolved conversation (the mutations return one the viewer belongs to). */
async function conversationOrThrow(id: string, context: ChatContext): Promise<ConversationRow> {
  const row = await conversation(id, context);
  if (!row) throw appError(ErrorCode.NOT_FOUND, "No such conversation", { field: "conversationId" });
  return row;
}

/**
 * The fields of live events whose resolvers read only the event (never the viewer, the context or
 * a loader): subscribers of one event selecting only these share one execution. Not here, as they
 * differ per viewer: `ChatEvent.invitation`, `Message.reactions` (reactedByMe), `Message.replyTo`
 * (loader), `Media.readGrant`, `User.presence`.
 */
export const sharedEventFields: ReadonlySet<string> = new Set([
  "Subscription.myChatEvents",
  "Subscription.conversationEvents",
  "ChatEvent.kind",
  "ChatEvent.conversationId",
  "ChatEvent.seq",
  "ChatEvent.message",
  "ChatEvent.actor",
  "ChatEvent.occurredAt",
  "Message.id",
  "Message.conversationId",
  "Message.seq",
  "Message.sender",
  "Message.senderId",
  "Message.clientMessageId",
  "Message.text",
  "Message.attachments",
  "Message.createdAt",
  "Message.editedAt",
  "Message.deleted",
  "Message.version",
  "User.id",
  "Media.id",
]);

/**
 * Shared beside `sharedEventFields` for an event whose message has no reactions (`reactions` is
 * `[]` for every viewer, `reactedByMe` never runs) and that names no invitation (`invitation` is
 * null, nothing below it runs): what a new message's event is.
 */
export const sharedEventFieldsWhen: SharedWhen = {
  fields: new Set([
    "Message.reactions",
    "ReactionCount.emoji",
    "ReactionCount.count",
    "ReactionCount.reactedByMe",
    "ChatEvent.invitation",
    "GroupInvitation.id",
    "GroupInvitation.conversationId",
    "GroupInvitation.title",
    "GroupInvitation.inviter",
    "GroupInvitation.status",
    "GroupInvitation.createdAt",
  ]),
  holds: (event) => {
    const { message, invitationId } = event as ChatEventPayload;
    return !invitationId && (message === null || message.reactions.length === 0);
  },
};

export const resolvers: CompleteResolvers = {
  DateTime: DateTimeScalar,
  Query: {
    conversation: (_: unknown, args: { id: string }, context: ChatContext) => {
      requireViewer(context);
      return conversation(requireUuid(args.id, "id"), context);
    },
    conversations: async (_, args, context) => {
      const page = await conversations.listConversations(context.services.db, requireViewer(context), args);
      const nodes = await Promise.all(page.edges.map((edge) => conversation(edge.node.id, context)));
      return {
        ...page,
        edges: page.edges.flatMap((edge, index) =>
          nodes[index] ? [{ cursor: edge.cursor, node: nodes[index] }] : [],
        ),
      };
    },
    messages: (_: unknown, args: messages.HistoryArgs, context: ChatContext) =>
      messages.history(context.services, requireViewer(context), args),
    messageChanges: (_: unknown, args: messages.ChangesArgs, context: ChatContext) =>
      messages.messageChanges(context.services, requireViewer(context), args),
    myInvitations: (_: unknown, args: { first?: unknown; after?: unknown }, context: ChatContext) =>
      invitations.myInvitations(context.services, requireViewer(context), args),
  },
  Mutation: {
    sendMessage: (_: unknown, args: { input?: messages.SendMessageInput }, context: ChatContext) =>
      messages.sendMessage(context.services, requireViewer(context), args.input ?? {}),
    editMessage: (_: unknown, args: { messageId: string; text: string }, context: ChatContext) =>
      messages.editMessage(context.services, requireViewer(context), args.messageId, args.text),
    deleteMessage: (_: unknown, args: { messageId: string }, context: ChatContext) =>
      messages.deleteMessage(context.services, requireViewer(context), args.messageId),
    reactToMessage: (
      _: unknown,
      args: { messageId: string; emoji: string; add?: boolean },
      context: ChatContext,
    ) =>
      messages.reactToMessage(
        context.services,
        requireViewer(context),
        args.messageId,
        args.emoji,
        args.add ?? true,
      ),
    reportMessage: (
      _: unknown,
      args: { messageId: string; reason: string; note?: string | null },
      context: ChatContext,
    ) =>
      messages.reportMessage(
        context.services,
        requireViewer(context),
        args.messageId,
        args.reason,
        args.note,
      ),
    markRead: (_: unknown, args: { conversationId: string; seq: number }, context: ChatContext) =>
      conversations.markUpTo(context.services, requireViewer(context), args.conversationId, args.seq, "READ"),
    markDelivered: (_: unknown, args: { conversationId: string; seq: number }, context: ChatContext) =>
      conversations.markUpTo(
        context.services,
        requireViewer(context),
        args.conversationId,
        args.seq,
        "DELIVERED",
      ),
    typing: (_: unknown, args: { conversationId: string }, context: ChatContext) =>
      conversations.typing(context.services, requireViewer(context), args.conversationId),
    heartbeat: async (_: unknown, __: unknown, context: ChatContext) => {
      await beat(context.services, requireViewer(context).userId);
      return true;
    },
    setPresenceVisible: async (_: unknown, args: { visible: boolean }, context: ChatContext) => {
      const viewer = requireViewer(context);
      if (typeof args.visible !== "boolean")
        throw appError(ErrorCode.BAD_USER_INPUT, "visible must be a boolean", { field: "visible" });
      await context.services.db.chatSettings.upsert({
        where: { userId: viewer.userId },
        create: { userId: viewer.userId, presenceHidden: !args.visible },
        update: { presenceHidden: !args.visible },
      });
      return args.visible;
    },
    muteConversation: async (
      _: unknown,
      args: { conversationId: string; muted: boolean },
      context: ChatContext,
    ) =>
      conversationOrThrow(
        await conversations.mute(context.services, requireViewer(context), args.conversationId, args.muted),
        context,
      ),
    openDirectConversation: async (_: unknown, args: { userId: string }, context: ChatContext) =>
      conversationOrThrow(
        await conversations.openDirectConversation(context.services, requireViewer(context), args.userId),
        context,
      ),
    createGroupConversation: async (
      _: unknown,
      args: { input?: { title?: unknown; memberIds?: unknown } },
      context: ChatContext,
    ) =>
      conversationOrThrow(
        await conversations.createGroup(context.services, requireViewer(context), args.input ?? {}),
        context,
      ),
    addGroupMembers: async (
      _: unknown,
      args: { conversationId: string; userIds: string[] },
      context: ChatContext,
    ) =>
      conversationOrThrow(
        await conversations.addMembers(
          context.services,
          requireViewer(context),
          args.conversationId,
          args.userIds,
        ),
        context,
      ),
    removeGroupMember: async (
      _: unknown,
      args: { conversationId: string; userId: string },
      context: ChatContext,
    ) =>
      conversationOrThrow(
        await conversations.removeMember(
          context.services,
          requireViewer(context),
          args.conversationId,
          args.userId,
        ),
        context,
      ),
    setGroupMemberRole: async (
      _: unknown,
      args: { conversationId: string; userId: string; role: string },
      context: ChatContext,
    ) =>
      conversationOrThrow(
        await conversations.setRole(
          context.services,
          requireViewer(context),
          args.conversationId,
          args.userId,
          args.role,
        ),
        context,
      ),
    leaveConversation: (_: unknown, args: { conversationId: string }, context: ChatContext) =>
      conversations.leave(context.services, requireViewer(context), args.conversationId),
    acceptInvitation: async (_: unknown, args: { invitationId: string }, context: ChatContext) =>
      conversationOrThrow(
        await invitations.acceptInvitation(context.services, requireViewer(context), args.invitationId),
        context,
      ),
    declineInvitation: (_: unknown, args: { invitationId: string }, context: ChatContext) =>
      invitations.declineInvitation(context.services, requireViewer(context), args.invitationId),
  },
  Subscription: {
    myChatEvents: {
      subscribe: (_: unknown, __: unknown, context: ChatContext) => {
        const viewer = requireViewer(context);
        const stopBeating = context.services.presence.keepOnline(viewer.userId);
        return inSeqOrder(context.services.bus.subscribe(viewer.userId), ORDER_HOLD_MS, stopBeating);
      },
      resolve: (event: ChatEventPayload, _: unknown, context: ChatContext) => {
        context.refreshLoaders();
        return event;
      },
    },
    conversationEvents: {
      subscribe: async (_: unknown, args: { conversationId: string }, context: ChatContext) => {
        const viewer = requireViewer(context);
        const { conversationId } = await requireMembership(
          context.services.db,
          args.conversationId,
          viewer.userId,
        );
        return mapStream(inSeqOrder(context.services.bus.subscribe(viewer.userId), ORDER_HOLD_MS), (event) =>
          event.conversationId === conversationId ? event : undefined,
        );
      },
      resolve: (event: ChatEventPayload, _: unknown, context: ChatContext) => {
        context.refreshLoaders();
        return event;
      },
    },
  },
  ChatEvent: {
    actor: (event: ChatEventPayload) => (event.actorId ? userRef(event.actorId) : null),
    occurredAt: (event: ChatEventPayload) => new Date(event.occurredAt),
    invitation: (event: ChatEventPayload, _: unknown, context: ChatContext) =>
      event.invitationId ? context.loaders.invitationById.load(event.invitationId) : null,
  },
  GroupInvitation: {
    inviter: (row: InvitationRow) => userRef(row.inviterId),
  },
  Match: {
    __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
    conversation: (match: { id: string }, _: unknown, context: ChatContext) =>
      isUuid(match.id) ? context.loaders.conversationByMatchId.load(match.id.toLowerCase()) : null,
  },
  Conversation: {
    __resolveReference: (reference: { id: string }, context: ChatContext) =>
      isUuid(reference.id) ? conversation(reference.id.toLowerCase(), context) : null,
    memberCount: async (row: ConversationRow, _: unknown, { loaders }: ChatContext) =>
      (await loaders.membersOf.load(row.id)).length,
    members: async (row: ConversationRow, _: unknown, { loaders }: ChatContext) =>
      loaders.membersOf.load(row.id),
    lastMessage: (row: ConversationRow, _: unknown, context: ChatContext) => {
      if (row.lastSeq === 0) return null;
      // Synchronous when the row came with its last message (Match.conversation).
      return row.lastMessage !== undefined ? row.lastMessage : lastMessageOf(row, context);
    },
    unreadCount: (row: ConversationRow) => Math.max(0, row.lastSeq - row.me.lastReadSeq),
    myRole: (row: ConversationRow) => row.me.role,
    muted: (row: ConversationRow) => row.me.muted,
    closed: (row: ConversationRow) => row.closedAt !== null,
    match: (row: ConversationRow) => (row.matchId ? { __typename: "Match", id: row.matchId } : null),
    invited: async (row: ConversationRow, _: unknown, { loaders }: ChatContext) =>
      row.kind === "GROUP" && (row.me.role === "OWNER" || row.me.role === "ADMIN")
        ? (await loaders.invitedTo.load(row.id)).map(userRef)
        : [],
  },
  ConversationMember: {
    user: (member) => userRef(member.userId),
  },
  Message: {
    sender: (message: MessageRow) => userRef(message.senderId),
    senderId: (message: MessageRow) => message.senderId,
    attachments: (message: MessageRow) => message.attachmentIds.map((id) => ({ __typename: "Media", id })),
    replyTo: async (message: MessageRow, _: unknown, context: ChatContext) => {
      if (!message.replyToId) return null;
      const original = await context.loaders.messageById.load(message.replyToId);
      return original && original.conversationId === message.conversationId ? original : null;
    },
    reactions: (message: MessageRow, _: unknown, { viewer }: ChatContext) =>
      message.reactions.map((reaction) => ({
        emoji: reaction.emoji,
        count: reaction.userIds.length,
        reactedByMe: viewer !== null && reaction.userIds.includes(viewer.userId),
      })),
    deleted: (message: MessageRow) => message.deletedAt !== null,
  },
  User: {
    __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
    presence: (user: { id: string }, _: unknown, context: ChatContext) =>
      isUuid(user.id) ? context.loaders.presence.load(user.id.toLowerCase()) : null,
  },
  Media: {
    __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
    readGrant: (media: { id: string }, _: unknown, context: ChatContext) =>
      isUuid(media.id) ? context.loaders.readGrant.load(media.id.toLowerCase()) : null,
  },
};

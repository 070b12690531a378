import { appError, ErrorCode, outboxEventData, requireUuid, type Viewer } from "@hv/kit";
import type { ChatDb } from "../db";
import { audienceOf, blockedWith, conversationNotFound, messageNotFound, requireMembership } from "./access";
import type { ChatEventKind } from "./bus";
import type { ChatServices } from "./context";
import { MESSAGE_INCLUDE, toMessageRow, type MessageRow } from "./rows";
import * as validate from "./validate";

export interface SendMessageInput {
  conversationId?: unknown;
  clientMessageId?: unknown;
  text?: unknown;
  attachmentIds?: unknown;
  replyToId?: unknown;
}

const forbidden = (reason: string, message: string) => appError(ErrorCode.FORBIDDEN, message, { details: { reason } });

async function findByClientId(db: ChatDb, conversationId: string, senderId: string, clientMessageId: string) {
  const found = await db.message.findUnique({
    where: { conversationId_senderId_clientMessageId: { conversationId, senderId, clientMessageId } },
    include: MESSAGE_INCLUDE,
  });
  return found ? toMessageRow(found) : null;
}

/**
 * Stores a message with the conversation's next seq (under the conversation row's lock) and, in
 * the same transaction, its `message.created` outbox event; then publishes it. A retried send
 * (same conversation, sender and clientMessageId) returns the message stored first.
 */
export async function sendMessage(services: ChatServices, viewer: Viewer, input: SendMessageInput): Promise<MessageRow> {
  const { db, config } = services;
  const senderId = viewer.userId;
  const conversationId = requireUuid(input.conversationId, "input.conversationId");
  const clientMessageId = validate.clientMessageId(input.clientMessageId, "input.clientMessageId");
  const text =
    input.text === undefined || input.text === null ? null : validate.messageText(input.text, "input.text", config.messageMaxLength);
  const attachmentIds =
    input.attachmentIds === undefined || input.attachmentIds === null
      ? []
      : validate.uuidList(input.attachmentIds, "input.attachmentIds", config.maxAttachments);
  const replyToId = input.replyToId === undefined || input.replyToId === null ? null : requireUuid(input.replyToId, "input.replyToId");
  if (text === null && attachmentIds.length === 0) {
    throw appError(ErrorCode.BAD_USER_INPUT, "A message needs text or attachments", { field: "input.text" });
  }

  const membership = await requireMembership(db, conversationId, senderId, "input.conversationId");
  const earlier = await findByClientId(db, conversationId, senderId, clientMessageId);
  if (earlier) return earlier;
  if (membership.closedAt) throw forbidden("closed", "This conversation is closed");
  if (await db.bannedUser.findUnique({ where: { userId: senderId } })) throw forbidden("banned", "This account may not send messages");
  await services.sendBurst.consume(senderId);
  await services.sendSustained.consume(senderId);

  const stored = await db.$transaction(async (tx) => {
    // One sender at a time per conversation: seq is last_seq + 1 under this lock.
    const locked = await tx.$queryRaw<Array<{ last_seq: number; kind: "DIRECT" | "GROUP"; closed_at: Date | null }>>`
      SELECT last_seq, kind, closed_at FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    const conversation = locked[0];
    if (!conversation) throw conversationNotFound("input.conversationId");
    // A concurrent retry may have stored it while we waited for the lock.
    const raced = await tx.message.findUnique({
      where: { conversationId_senderId_clientMessageId: { conversationId, senderId, clientMessageId } },
      include: MESSAGE_INCLUDE,
    });
    if (raced) return { row: toMessageRow(raced), created: false };
    if (conversation.closed_at) throw forbidden("closed", "This conversation is closed");
    const members = await tx.conversationMember.findMany({
      where: { conversationId },
      select: { userId: true, muted: true, lastReadSeq: true },
    });
    if (!members.some((member) => member.userId === senderId)) throw conversationNotFound("input.conversationId");
    const blocked = await blockedWith(tx, senderId);
    const others = members.filter((member) => member.userId !== senderId);
    if (conversation.kind === "DIRECT" && others.some((member) => blocked.has(member.userId))) {
      throw forbidden("blocked", "You cannot message this person");
    }
    if (replyToId) {
      const original = await tx.message.findFirst({ where: { id: replyToId, conversationId }, select: { id: true } });
      if (!original) throw messageNotFound("input.replyToId");
    }
    const seq = conversation.last_seq + 1;
    const now = new Date();
    await tx.conversation.update({ where: { id: conversationId }, data: { lastSeq: seq, lastActivityAt: now } });
    const message = await tx.message.create({
      data: {
        conversationId,
        seq,
        senderId,
        clientMessageId,
        text,
        replyToId,
        createdAt: now,
        attachments: { create: attachmentIds.map((mediaId, position) => ({ mediaId, position })) },
      },
      include: MESSAGE_INCLUDE,
    });
    // Sending means the sender has read (and got) everything up to their own message.
    await tx.conversationMember.update({
      where: { conversationId_userId: { conversationId, userId: senderId } },
      data: { lastReadSeq: seq, deliveredSeq: seq },
    });
    const recipients = others
      .filter((member) => !member.muted && !blocked.has(member.userId))
      .map((member) => ({ userId: member.userId, unreadCount: Math.max(0, seq - member.lastReadSeq) }));
    await tx.outboxEvent.create({
      data: outboxEventData("message.created", {
        messageId: message.id,
        conversationId,
        conversationKind: conversation.kind,
        senderId,
        seq,
        sentAt: now.toISOString(),
        preview: text === null ? null : [...text].slice(0, 200).join(""),
        recipients,
      }),
    });
    return { row: toMessageRow(message), created: true };
  });
  if (stored.created) {
    services.flushEvents();
    await publishMessageEvent(services, "MESSAGE_ADDED", stored.row, senderId);
  }
  return stored.row;
}

export async function publishMessageEvent(services: ChatServices, kind: ChatEventKind, row: MessageRow, actorId: string): Promise<void> {
  const audience = await audienceOf(services.db, row.conversationId, actorId);
  await services.bus.publish(audience, {
    kind,
    conversationId: row.conversationId,
    seq: row.seq,
    message: row,
    actorId,
    occurredAt: new Date().toISOString(),
  });
}

/** The message if the viewer is a member of its conversation (and not blocked with its sender). */
async function visibleMessage(services: ChatServices, viewer: Viewer, messageIdInput: unknown) {
  const messageId = requireUuid(messageIdInput, "messageId");
  const message = await services.db.message.findUnique({ where: { id: messageId }, include: MESSAGE_INCLUDE });
  if (!message) throw messageNotFound();
  const member = await services.db.conversationMember.findUnique({
    where: { conversationId_userId: { conversationId: message.conversationId, userId: viewer.userId } },
    select: { role: true },
  });
  if (!member) throw messageNotFound();
  if (message.senderId !== viewer.userId && (await blockedWith(services.db, viewer.userId)).has(message.senderId)) throw messageNotFound();
  return { message, role: member.role };
}

export async function editMessage(services: ChatServices, viewer: Viewer, messageId: unknown, textInput: unknown): Promise<MessageRow> {
  const text = validate.messageText(textInput, "text", services.config.messageMaxLength);
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.senderId !== viewer.userId) throw forbidden("not-sender", "Only the sender may edit a message");
  if (message.deletedAt) throw appError(ErrorCode.CONFLICT, "A deleted message cannot be edited", { field: "messageId" });
  const updated = await services.db.message.update({
    where: { id: message.id },
    data: { text, editedAt: new Date() },
    include: MESSAGE_INCLUDE,
  });
  const row = toMessageRow(updated);
  await publishMessageEvent(services, "MESSAGE_EDITED", row, viewer.userId);
  return row;
}

export async function deleteMessage(services: ChatServices, viewer: Viewer, messageId: unknown): Promise<MessageRow> {
  const { message, role } = await visibleMessage(services, viewer, messageId);
  const moderates = role === "OWNER" || role === "ADMIN";
  if (message.senderId !== viewer.userId && !moderates) throw forbidden("not-sender", "Only the sender or a group admin may delete a message");
  if (message.deletedAt) return toMessageRow(message); // deleting twice is a no-op
  const updated = await services.db.$transaction(async (tx) => {
    await tx.messageAttachment.deleteMany({ where: { messageId: message.id } });
    await tx.reaction.deleteMany({ where: { messageId: message.id } });
    return tx.message.update({ where: { id: message.id }, data: { text: null, deletedAt: new Date() }, include: MESSAGE_INCLUDE });
  });
  const row = toMessageRow(updated);
  await publishMessageEvent(services, "MESSAGE_DELETED", row, viewer.userId);
  return row;
}

export async function reactToMessage(services: ChatServices, viewer: Viewer, messageId: unknown, emojiInput: unknown, add: unknown): Promise<MessageRow> {
  const emoji = validate.emoji(emojiInput, "emoji");
  if (typeof add !== "boolean") throw appError(ErrorCode.BAD_USER_INPUT, "add must be a boolean", { field: "add" });
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.deletedAt) throw appError(ErrorCode.CONFLICT, "A deleted message takes no reactions", { field: "messageId" });
  if (add) {
    const mine = await services.db.reaction.count({ where: { messageId: message.id, userId: viewer.userId } });
    if (mine >= 20) throw appError(ErrorCode.BAD_USER_INPUT, "At most 20 reactions per person on one message", { field: "emoji" });
    await services.db.reaction.upsert({
      where: { messageId_userId_emoji: { messageId: message.id, userId: viewer.userId, emoji } },
      create: { messageId: message.id, userId: viewer.userId, emoji },
      update: {},
    });
  } else {
    await services.db.reaction.deleteMany({ where: { messageId: message.id, userId: viewer.userId, emoji } });
  }
  const fresh = await services.db.message.findUniqueOrThrow({ where: { id: message.id }, include: MESSAGE_INCLUDE });
  const row = toMessageRow(fresh);
  await publishMessageEvent(services, "REACTION_CHANGED", row, viewer.userId);
  return row;
}

const REPORT_REASONS = new Set(["SPAM", "HARASSMENT", "INAPPROPRIATE", "SCAM", "OTHER"]);

export async function reportMessage(services: ChatServices, viewer: Viewer, messageId: unknown, reason: unknown, noteInput: unknown): Promise<boolean> {
  if (typeof reason !== "string" || !REPORT_REASONS.has(reason)) throw appError(ErrorCode.BAD_USER_INPUT, "Unknown reason", { field: "reason" });
  const note = validate.reportNote(noteInput, "note");
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.senderId === viewer.userId) throw appError(ErrorCode.BAD_USER_INPUT, "You cannot report your own message", { field: "messageId" });
  await services.db.messageReport.upsert({
    where: { messageId_reporterId: { messageId: message.id, reporterId: viewer.userId } },
    create: { messageId: message.id, reporterId: viewer.userId, reason, note },
    update: { reason, note },
  });
  return true;
}

export interface HistoryArgs {
  conversationId?: unknown;
  after?: unknown;
  before?: unknown;
  first?: unknown;
}

/** History by seq, ascending; people blocked either way are left out. */
export async function history(services: ChatServices, viewer: Viewer, args: HistoryArgs): Promise<{ messages: MessageRow[]; hasMore: boolean }> {
  const first = validate.pageSize(args.first ?? 50, "first", 100);
  const after = args.after === undefined || args.after === null ? null : validate.seqValue(args.after, "after");
  const before = args.before === undefined || args.before === null ? null : validate.seqValue(args.before, "before", 1);
  if (after !== null && before !== null) throw appError(ErrorCode.BAD_USER_INPUT, "Give after or before, not both", { field: "before" });
  const membership = await requireMembership(services.db, args.conversationId, viewer.userId);
  const blocked = [...(await blockedWith(services.db, viewer.userId))];
  const where = {
    conversationId: membership.conversationId,
    ...(blocked.length > 0 ? { senderId: { notIn: blocked } } : {}),
    ...(after !== null ? { seq: { gt: after } } : before !== null ? { seq: { lt: before } } : {}),
  };
  const ascending = after !== null;
  const rows = await services.db.message.findMany({
    where,
    orderBy: { seq: ascending ? "asc" : "desc" },
    take: first + 1,
    include: MESSAGE_INCLUDE,
  });
  const hasMore = rows.length > first;
  const page = rows.slice(0, first).map(toMessageRow);
  if (!ascending) page.reverse();
  return { messages: page, hasMore };
}

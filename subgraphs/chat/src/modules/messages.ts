import {
  appError,
  ErrorCode,
  outboxEventData,
  requireUuid,
  timeOrderedUuid,
  type EventPayload,
  type OutboxRecord,
  type Viewer,
} from "@hv/kit";
import type { ChatDb } from "../db";
import { Prisma } from "../generated/prisma/client";
import { audienceOf, blockedWith, conversationNotFound, messageNotFound, requireMembership } from "./access";
import type { ChatEventKind } from "./bus";
import type { ChatServices } from "./context";
import { MESSAGE_INCLUDE, toMessageRow, type MessageRow } from "./rows";
import * as holds from "./holds";
import { storeStatement, type ConversationKind, type NewMessage } from "./store-statement";
import * as spam from "./spam-signals";
import * as validate from "./validate";

export interface SendMessageInput {
  conversationId?: unknown;
  clientMessageId?: unknown;
  text?: unknown;
  attachmentIds?: unknown;
  replyToId?: unknown;
}

const forbidden = (reason: string, message: string) =>
  appError(ErrorCode.FORBIDDEN, message, { details: { reason } });

async function findByClientId(db: ChatDb, conversationId: string, senderId: string, clientMessageId: string) {
  const found = await db.message.findUnique({
    where: { conversationId_senderId_clientMessageId: { conversationId, senderId, clientMessageId } },
    include: MESSAGE_INCLUDE,
  });
  return found ? toMessageRow(found) : null;
}

/** What STORE answers (store-statement.ts). */
export interface StoredSend {
  kind: ConversationKind;
  /** The outbox event's payload as stored (seq, kind and recipients filled in by STORE). */
  event: unknown;
  seq: number;
  version: number;
  /** Members who see the event: everyone but people blocked with the sender (either way), sender included. */
  audience: string[];
}

/** A unique violation (SQLSTATE 23505) from a raw statement, as Prisma's driver adapter reports it. */
function isUniqueViolation(error: unknown): boolean {
  if ((error as { code?: unknown } | null)?.code === "23505") return true; // node-postgres
  const text =
    error instanceof Error
      ? `${error.message} ${JSON.stringify((error as { meta?: unknown }).meta ?? null)}`
      : String(error);
  return text.includes("23505") || /unique constraint/i.test(text);
}

/**
 * Stores a message with the conversation's next seq and, in the same statement (so the same
 * transaction), its `message.created` outbox event; then publishes it. A retried send (same
 * conversation, sender and clientMessageId) returns the message stored first.
 *
 * Round trips on the way to storing: one read (membership, closed, banned, an earlier message with
 * this clientMessageId; shared by the sends of one event-loop turn: send-precheck.ts), the two rate-limit budgets and the spam counters in one Redis script, the media claim (only with
 * attachments), and ONE statement that does the rest (STORE: store-statement.ts). No interactive transaction:
 * nothing holds a pooled connection between round trips.
 */
export async function sendMessage(
  services: ChatServices,
  viewer: Viewer,
  input: SendMessageInput,
): Promise<MessageRow> {
  const { db, config } = services;
  const senderId = viewer.userId;
  const conversationId = requireUuid(input.conversationId, "input.conversationId");
  const clientMessageId = validate.clientMessageId(input.clientMessageId, "input.clientMessageId");
  const text =
    input.text === undefined || input.text === null
      ? null
      : validate.messageText(input.text, "input.text", config.messageMaxLength);
  const attachmentIds =
    input.attachmentIds === undefined || input.attachmentIds === null
      ? []
      : validate.uuidList(input.attachmentIds, "input.attachmentIds", config.maxAttachments);
  const replyToId =
    input.replyToId === undefined || input.replyToId === null
      ? null
      : requireUuid(input.replyToId, "input.replyToId");
  if (text === null && attachmentIds.length === 0) {
    throw appError(ErrorCode.BAD_USER_INPUT, "A message needs text or attachments", { field: "input.text" });
  }

  const check = await services.sendPrechecks.check(conversationId, senderId, clientMessageId);
  if (!check) throw conversationNotFound("input.conversationId");
  if (check.existing) {
    const earlier = await findByClientId(db, conversationId, senderId, clientMessageId);
    if (earlier) return earlier;
  }
  const heldEarlier = check.held
    ? await holds.findHeld(services, conversationId, senderId, clientMessageId)
    : null;
  if (heldEarlier) return heldEarlier;
  if (check.closed) throw forbidden("closed", "This conversation is closed");
  if (check.banned) throw forbidden("banned", "This account may not send messages");
  const signalled = await services.sendAdmission.admit(services, viewer, conversationId, text);
  if (attachmentIds.length > 0) await claimMedia(db, senderId, attachmentIds);
  const message = {
    messageId: timeOrderedUuid(),
    conversationId,
    senderId,
    clientMessageId,
    text,
    attachmentIds,
    replyToId,
    now: new Date(),
  };
  if ((check.held || signalled) && (await spam.hasStranger(services, conversationId, senderId))) {
    return holds.holdMessage(services, message);
  }
  const stored = await storeMessage(services, message, check.kind);
  if (stored instanceof Error) throw stored;
  return stored;
}

export type { NewMessage } from "./store-statement";

/**
 * STORE and publish one message (a send, or a held message released): the stored row, the one
 * stored first under this clientMessageId, or the reason nothing was stored (returned, not thrown).
 * `kind`, when the caller read it, picks the smaller statement (store-statement.ts).
 */
export async function storeMessage(
  services: ChatServices,
  message: NewMessage,
  kind?: ConversationKind,
): Promise<MessageRow | Error> {
  const { db, stores } = services;
  const { messageId, conversationId, senderId, clientMessageId, text, attachmentIds, replyToId, now } =
    message;
  // The first 200 code points (a text of at most 200 UTF-16 units has no more).
  const preview = text === null ? null : text.length <= 200 ? text : [...text].slice(0, 200).join("");
  // The event's fields known before storing, checked against the catalogue now (seq, kind and the
  // recipients are added by the statement; the recipients' shape is covered by the tests).
  const event = outboxEventData("message.created", {
    messageId,
    conversationId,
    conversationKind: "GROUP",
    senderId,
    seq: 1,
    sentAt: now.toISOString(),
    preview,
    recipients: [],
  });
  const { seq: _seq, conversationKind: _kind, recipients: _recipients, ...eventBase } = event.payload;

  let stored: StoredSend | undefined;
  try {
    const statement = storeStatement(message, eventBase, event.id, kind);
    stored = (await stores.query<StoredSend>(statement, conversationId))[0];
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // A concurrent retry with the same clientMessageId stored it first: return that one.
    const earlier = await findByClientId(db, conversationId, senderId, clientMessageId);
    if (earlier) return earlier;
    throw error;
  }
  if (!stored) return whyNotStored(db, conversationId, senderId, replyToId);

  const row: MessageRow = {
    id: messageId,
    conversationId,
    seq: stored.seq,
    senderId,
    clientMessageId,
    text,
    replyToId,
    createdAt: now,
    editedAt: null,
    deletedAt: null,
    version: stored.version,
    attachmentIds,
    reactions: [],
  };
  const record: OutboxRecord = { id: event.id, type: event.type, payload: stored.event, createdAt: now };
  // Without CHAT_PUSH_SKIP_LIVE the event is handed over first (it leaves with CHAT_PUSH_BATCH_MS's others).
  if (!services.config.pushSkipLive) services.publishEvents([record]);
  const live = await services.bus.publish(stored.audience, {
    kind: "MESSAGE_ADDED",
    conversationId,
    seq: row.seq,
    message: row,
    actorId: senderId,
    occurredAt: new Date().toISOString(),
  });
  if (services.config.pushSkipLive) handOverPush(services, record, live);
  return row;
}

/**
 * Hands a committed `message.created` to the relay (the push queue). With CHAT_PUSH_SKIP_LIVE, the
 * recipients whose feed received the message (`live`) are left out of the job, and an event left
 * with none is marked published without a job; the outbox row keeps every recipient.
 */
function handOverPush(services: ChatServices, record: OutboxRecord, live: ReadonlySet<string>): void {
  if (live.size === 0) return services.publishEvents([record]);
  const payload = record.payload as EventPayload<"message.created">;
  const offline = payload.recipients.filter((recipient) => !live.has(recipient.userId));
  if (offline.length === 0) return services.markEventsPublished([record.id]);
  const narrowed =
    offline.length === payload.recipients.length ? payload : { ...payload, recipients: offline };
  services.publishEvents([{ ...record, payload: narrowed }]);
}

/**
 * Each Media id has one sender in Chat: the first to attach it (Chat cannot know who uploaded it, and
 * a read grant names one owner, which Media checks). Claims `mediaIds` for `senderId`, or refuses
 * the send when another sender attached any of them first. Committed on its own, before the
 * message: two senders racing for one id queue on its row and exactly one gets it.
 */
async function claimMedia(db: ChatDb, senderId: string, mediaIds: string[]): Promise<void> {
  const claimed = await db.$queryRaw<Array<{ media_id: string }>>`
    INSERT INTO media_senders (media_id, sender_id)
    SELECT id, ${senderId}::uuid FROM unnest(${mediaIds}::uuid[]) AS t(id)
    ON CONFLICT (media_id) DO UPDATE SET sender_id = EXCLUDED.sender_id
      WHERE media_senders.sender_id = EXCLUDED.sender_id
    RETURNING media_id::text`;
  const mine = new Set(claimed.map((row) => row.media_id));
  const index = mediaIds.findIndex((id) => !mine.has(id));
  if (index >= 0) {
    throw appError(ErrorCode.FORBIDDEN, "This attachment was already sent by someone else", {
      field: `input.attachmentIds[${index}]`,
      details: { reason: "attachment-taken" },
    });
  }
}

/** Why STORE wrote nothing (the rare path: one more read to name the reason). */
async function whyNotStored(
  db: ChatDb,
  conversationId: string,
  senderId: string,
  replyToId: string | null,
): Promise<Error> {
  const rows = await db.$queryRaw<
    Array<{ member: boolean; closed: boolean; banned: boolean; blocked: boolean; reply: boolean }>
  >`
    SELECT EXISTS (SELECT 1 FROM conversation_members s WHERE s.conversation_id = c.id AND s.user_id = ${senderId}::uuid) AS member,
           c.closed_at IS NOT NULL AS closed,
           EXISTS (SELECT 1 FROM banned_users WHERE user_id = ${senderId}::uuid) AS banned,
           (c.kind = 'DIRECT' AND EXISTS (
              SELECT 1 FROM conversation_members o JOIN blocks b
                  ON (b.blocker_id = ${senderId}::uuid AND b.blocked_id = o.user_id)
                  OR (b.blocked_id = ${senderId}::uuid AND b.blocker_id = o.user_id)
               WHERE o.conversation_id = c.id AND o.user_id <> ${senderId}::uuid)) AS blocked,
           (${replyToId}::uuid IS NULL OR EXISTS (
              SELECT 1 FROM messages r WHERE r.id = ${replyToId}::uuid AND r.conversation_id = c.id)) AS reply
      FROM conversations c WHERE c.id = ${conversationId}::uuid`;
  const why = rows[0];
  if (!why?.member) return conversationNotFound("input.conversationId");
  if (why.closed) return forbidden("closed", "This conversation is closed");
  if (why.banned) return forbidden("banned", "This account may not send messages");
  if (why.blocked) return forbidden("blocked", "You cannot message this person");
  if (!why.reply) return messageNotFound("input.replyToId");
  return appError(ErrorCode.CONFLICT, "The conversation changed while sending: try again", {
    field: "input.conversationId",
  });
}

/**
 * Gives a changed message the conversation's next version (under the conversation row's lock, so
 * versions commit in order): run it in the change's transaction.
 */
function bumpVersion(db: ChatDb, conversationId: string, messageId: string) {
  return db.$executeRaw`
    WITH v AS (UPDATE conversations SET version = version + 1 WHERE id = ${conversationId}::uuid RETURNING version)
    UPDATE messages m SET version = v.version FROM v WHERE m.id = ${messageId}::uuid`;
}

export async function publishMessageEvent(
  services: ChatServices,
  kind: ChatEventKind,
  row: MessageRow,
  actorId: string,
): Promise<void> {
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
  const message = await services.db.message.findUnique({
    where: { id: messageId },
    include: MESSAGE_INCLUDE,
  });
  if (!message) throw messageNotFound();
  const member = await services.db.conversationMember.findUnique({
    where: { conversationId_userId: { conversationId: message.conversationId, userId: viewer.userId } },
    select: { role: true },
  });
  if (!member) throw messageNotFound();
  if (
    message.senderId !== viewer.userId &&
    (await blockedWith(services.db, viewer.userId)).has(message.senderId)
  )
    throw messageNotFound();
  return { message, role: member.role };
}

export async function editMessage(
  services: ChatServices,
  viewer: Viewer,
  messageId: unknown,
  textInput: unknown,
): Promise<MessageRow> {
  const text = validate.messageText(textInput, "text", services.config.messageMaxLength);
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.senderId !== viewer.userId) throw forbidden("not-sender", "Only the sender may edit a message");
  if (message.deletedAt)
    throw appError(ErrorCode.CONFLICT, "A deleted message cannot be edited", { field: "messageId" });
  const [, updated] = await services.db.$transaction([
    bumpVersion(services.db, message.conversationId, message.id),
    services.db.message.update({
      where: { id: message.id },
      data: { text, editedAt: new Date() },
      include: MESSAGE_INCLUDE,
    }),
  ]);
  const row = toMessageRow(updated);
  await publishMessageEvent(services, "MESSAGE_EDITED", row, viewer.userId);
  return row;
}

export async function deleteMessage(
  services: ChatServices,
  viewer: Viewer,
  messageId: unknown,
): Promise<MessageRow> {
  const { message, role } = await visibleMessage(services, viewer, messageId);
  const moderates = role === "OWNER" || role === "ADMIN";
  if (message.senderId !== viewer.userId && !moderates)
    throw forbidden("not-sender", "Only the sender or a group admin may delete a message");
  if (message.deletedAt) return toMessageRow(message); // deleting twice is a no-op
  const [, , , updated] = await services.db.$transaction([
    bumpVersion(services.db, message.conversationId, message.id),
    services.db.messageAttachment.deleteMany({ where: { messageId: message.id } }),
    services.db.reaction.deleteMany({ where: { messageId: message.id } }),
    services.db.message.update({
      where: { id: message.id },
      data: { text: null, deletedAt: new Date() },
      include: MESSAGE_INCLUDE,
    }),
  ]);
  const row = toMessageRow(updated);
  await publishMessageEvent(services, "MESSAGE_DELETED", row, viewer.userId);
  return row;
}

export async function reactToMessage(
  services: ChatServices,
  viewer: Viewer,
  messageId: unknown,
  emojiInput: unknown,
  add: unknown,
): Promise<MessageRow> {
  const emoji = validate.emoji(emojiInput, "emoji");
  if (typeof add !== "boolean")
    throw appError(ErrorCode.BAD_USER_INPUT, "add must be a boolean", { field: "add" });
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.deletedAt)
    throw appError(ErrorCode.CONFLICT, "A deleted message takes no reactions", { field: "messageId" });
  if (add) {
    const mine = await services.db.reaction.count({
      where: { messageId: message.id, userId: viewer.userId },
    });
    if (mine >= 20)
      throw appError(ErrorCode.BAD_USER_INPUT, "At most 20 reactions per person on one message", {
        field: "emoji",
      });
    await services.db.$transaction([
      services.db.reaction.upsert({
        where: { messageId_userId_emoji: { messageId: message.id, userId: viewer.userId, emoji } },
        create: { messageId: message.id, userId: viewer.userId, emoji },
        update: {},
      }),
      bumpVersion(services.db, message.conversationId, message.id),
    ]);
  } else {
    await services.db.$transaction([
      services.db.reaction.deleteMany({ where: { messageId: message.id, userId: viewer.userId, emoji } }),
      bumpVersion(services.db, message.conversationId, message.id),
    ]);
  }
  const fresh = await services.db.message.findUniqueOrThrow({
    where: { id: message.id },
    include: MESSAGE_INCLUDE,
  });
  const row = toMessageRow(fresh);
  await publishMessageEvent(services, "REACTION_CHANGED", row, viewer.userId);
  return row;
}

const REPORT_REASONS = new Set(["SPAM", "HARASSMENT", "INAPPROPRIATE", "SCAM", "OTHER"]);

export async function reportMessage(
  services: ChatServices,
  viewer: Viewer,
  messageId: unknown,
  reason: unknown,
  noteInput: unknown,
): Promise<boolean> {
  if (typeof reason !== "string" || !REPORT_REASONS.has(reason))
    throw appError(ErrorCode.BAD_USER_INPUT, "Unknown reason", { field: "reason" });
  const note = validate.reportNote(noteInput, "note");
  const { message } = await visibleMessage(services, viewer, messageId);
  if (message.senderId === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "You cannot report your own message", { field: "messageId" });
  // The moderation queue (Users) gets a snapshot of the message through the outbox, with the report.
  await services.db.$transaction(async (tx) => {
    const report = await tx.messageReport.upsert({
      where: { messageId_reporterId: { messageId: message.id, reporterId: viewer.userId } },
      create: { messageId: message.id, reporterId: viewer.userId, reason, note },
      update: { reason, note },
      select: { id: true },
    });
    await tx.outboxEvent.create({
      data: outboxEventData("message.reported", {
        reportId: report.id,
        messageId: message.id,
        conversationId: message.conversationId,
        senderId: message.senderId,
        text: message.text,
        sentAt: message.createdAt.toISOString(),
        reporterId: viewer.userId,
        reason: reason as "SPAM" | "HARASSMENT" | "INAPPROPRIATE" | "SCAM" | "OTHER",
        note,
      }),
    });
  });
  services.flushEvents();
  return true;
}

/** A moderator's REMOVE_MESSAGE: deleted for everyone (as the sender's delete), MESSAGE_DELETED live. Idempotent. */
export async function removeMessageByModerator(
  db: ChatDb,
  live: ChatServices | undefined,
  messageId: string,
  moderatorId: string,
): Promise<boolean> {
  const message = await db.message.findUnique({ where: { id: messageId }, include: MESSAGE_INCLUDE });
  if (!message || message.deletedAt) return false;
  const [, , , updated] = await db.$transaction([
    bumpVersion(db, message.conversationId, message.id),
    db.messageAttachment.deleteMany({ where: { messageId: message.id } }),
    db.reaction.deleteMany({ where: { messageId: message.id } }),
    db.message.update({
      where: { id: message.id },
      data: { text: null, deletedAt: new Date() },
      include: MESSAGE_INCLUDE,
    }),
  ]);
  if (live) await publishMessageEvent(live, "MESSAGE_DELETED", toMessageRow(updated), moderatorId);
  return true;
}

/** Whether the user has (or had) held messages: the sender's own view includes them. */
async function isHeldSender(services: ChatServices, userId: string): Promise<boolean> {
  const rows = await services.sql.query<{ any: boolean }>(Prisma.sql`
    SELECT EXISTS (SELECT 1 FROM held_messages WHERE sender_id = ${userId}::uuid) AS any`);
  return rows[0]?.any === true;
}

export interface HistoryArgs {
  conversationId?: unknown;
  after?: unknown;
  before?: unknown;
  first?: unknown;
}

/** History by seq, ascending; people blocked either way are left out. */
export async function history(
  services: ChatServices,
  viewer: Viewer,
  args: HistoryArgs,
): Promise<{ messages: MessageRow[]; hasMore: boolean }> {
  const first = validate.pageSize(args.first ?? 50, "first", 100);
  const after =
    args.after === undefined || args.after === null ? null : validate.seqValue(args.after, "after");
  const before =
    args.before === undefined || args.before === null ? null : validate.seqValue(args.before, "before", 1);
  if (after !== null && before !== null)
    throw appError(ErrorCode.BAD_USER_INPUT, "Give after or before, not both", { field: "before" });
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
  // The viewer's own held messages (spam hold) come after the newest page, as only they see them.
  const newest = ascending ? !hasMore : before === null;
  if (newest && (await isHeldSender(services, viewer.userId))) {
    page.push(...(await holds.heldFor(services, membership.conversationId, viewer.userId)));
  }
  return { messages: page, hasMore };
}

export interface ChangesArgs {
  conversationId?: unknown;
  after?: unknown;
  first?: unknown;
}

/**
 * Messages changed (sent, edited, deleted, reactions) after version `after`, oldest change first,
 * each in its current state (a deletion as its tombstone); people blocked either way are left
 * out. `version` is what to pass as `after` next time. Versions are assigned under the
 * conversation row's lock in the changing transaction, so they commit in order: nothing can
 * appear later below a version already read.
 */
export async function messageChanges(
  services: ChatServices,
  viewer: Viewer,
  args: ChangesArgs,
): Promise<{ messages: MessageRow[]; hasMore: boolean; version: number }> {
  const first = validate.pageSize(args.first ?? 100, "first", 100);
  const after = validate.seqValue(args.after, "after");
  const membership = await requireMembership(services.db, args.conversationId, viewer.userId);
  // Read before the messages: a change committing in between is then returned again next time,
  // never skipped.
  const { version: current } = await services.db.conversation.findUniqueOrThrow({
    where: { id: membership.conversationId },
    select: { version: true },
  });
  const blocked = [...(await blockedWith(services.db, viewer.userId))];
  const rows = await services.db.message.findMany({
    where: {
      conversationId: membership.conversationId,
      version: { gt: after },
      ...(blocked.length > 0 ? { senderId: { notIn: blocked } } : {}),
    },
    orderBy: { version: "asc" },
    take: first + 1,
    include: MESSAGE_INCLUDE,
  });
  const hasMore = rows.length > first;
  const page = rows.slice(0, first).map(toMessageRow);
  const last = page.at(-1)?.version ?? after;
  return { messages: page, hasMore, version: hasMore ? last : Math.max(current, last, after) };
}

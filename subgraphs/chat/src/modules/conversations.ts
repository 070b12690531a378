import { appError, ErrorCode, requireUuid, type Viewer } from "@hv/kit";
import type { ChatDb } from "../db";
import { audienceOf, blockedWith, directKey, requireMembership } from "./access";
import type { ChatEventKind } from "./bus";
import type { ChatServices } from "./context";
import * as validate from "./validate";

const forbidden = (reason: string, message: string) => appError(ErrorCode.FORBIDDEN, message, { details: { reason } });

export async function publishConversationEvent(
  services: ChatServices,
  conversationId: string,
  kind: ChatEventKind,
  actorId: string | null,
  seq: number,
  extraRecipients: string[] = [],
): Promise<void> {
  const audience = await audienceOf(services.db, conversationId, actorId);
  await services.bus.publish([...audience, ...extraRecipients], {
    kind,
    conversationId,
    seq,
    message: null,
    actorId,
    occurredAt: new Date().toISOString(),
  });
}

// ---- the conversations list -------------------------------------------------------------------

interface Cursor {
  t: string;
  id: string;
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: at.toISOString(), id })).toString("base64url");
}

function decodeCursor(value: unknown): Cursor {
  const invalid = () => appError(ErrorCode.BAD_USER_INPUT, "after is not a cursor from this list", { field: "after" });
  if (typeof value !== "string" || value.length > 200) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const cursor = parsed as Partial<Cursor>;
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    Object.keys(parsed).length !== 2 ||
    typeof cursor.t !== "string" ||
    Number.isNaN(Date.parse(cursor.t)) ||
    typeof cursor.id !== "string"
  ) {
    throw invalid();
  }
  return { t: cursor.t, id: requireUuid(cursor.id, "after") };
}

/** My conversations, most recent activity first, keyset-paginated on (last activity, id). */
export async function listConversations(db: ChatDb, viewer: Viewer, args: { first?: unknown; after?: unknown; includeClosed?: unknown }) {
  const first = validate.pageSize(args.first ?? 20, "first", 50);
  const cursor = args.after === undefined || args.after === null ? null : decodeCursor(args.after);
  const includeClosed = args.includeClosed === true;
  const rows = await db.conversation.findMany({
    where: {
      members: { some: { userId: viewer.userId } },
      ...(includeClosed ? {} : { closedAt: null }),
      ...(cursor
        ? {
            OR: [
              { lastActivityAt: { lt: new Date(cursor.t) } },
              { lastActivityAt: new Date(cursor.t), id: { lt: cursor.id } },
            ],
          }
        : {}),
    },
    orderBy: [{ lastActivityAt: "desc" }, { id: "desc" }],
    take: first + 1,
    select: { id: true, lastActivityAt: true },
  });
  const page = rows.slice(0, first);
  const edges = page.map((row) => ({ cursor: encodeCursor(row.lastActivityAt, row.id), node: { id: row.id } }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

// ---- direct conversations --------------------------------------------------------------------

/** Opens (or reopens) the pair's DIRECT conversation; returns its id. */
export async function ensureDirect(db: ChatDb, one: string, other: string, matchId: string | null): Promise<{ id: string; created: boolean }> {
  const key = directKey(one, other);
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${key}))`;
    const existing = await tx.conversation.findUnique({ where: { directKey: key }, select: { id: true, closedAt: true, matchId: true } });
    if (existing) {
      if (existing.closedAt || (matchId && existing.matchId !== matchId)) {
        await tx.conversation.update({ where: { id: existing.id }, data: { closedAt: null, ...(matchId ? { matchId } : {}) } });
      }
      for (const userId of [one, other]) {
        await tx.conversationMember.upsert({
          where: { conversationId_userId: { conversationId: existing.id, userId } },
          create: { conversationId: existing.id, userId },
          update: {},
        });
      }
      return { id: existing.id, created: false };
    }
    const created = await tx.conversation.create({
      data: { kind: "DIRECT", directKey: key, matchId, members: { create: [{ userId: one }, { userId: other }] } },
      select: { id: true },
    });
    return { id: created.id, created: true };
  });
}

export async function openDirectConversation(services: ChatServices, viewer: Viewer, userIdInput: unknown): Promise<string> {
  const other = requireUuid(userIdInput, "userId");
  if (other === viewer.userId) throw appError(ErrorCode.BAD_USER_INPUT, "You cannot open a conversation with yourself", { field: "userId" });
  const existing = await services.db.conversation.findUnique({
    where: { directKey: directKey(viewer.userId, other) },
    select: { id: true, closedAt: true, members: { where: { userId: viewer.userId }, select: { userId: true } } },
  });
  if (existing && !existing.closedAt && existing.members.length > 0) return existing.id;
  if (services.config.requireMatch) throw forbidden("match-required", "A conversation with this person opens when you match");
  if ((await blockedWith(services.db, viewer.userId)).has(other)) throw appError(ErrorCode.NOT_FOUND, "No such person", { field: "userId" });
  const { id, created } = await ensureDirect(services.db, viewer.userId, other, null);
  if (created) await publishConversationEvent(services, id, "MEMBERS_CHANGED", viewer.userId, 0);
  return id;
}

// ---- groups -----------------------------------------------------------------------------------

export async function createGroup(services: ChatServices, viewer: Viewer, input: { title?: unknown; memberIds?: unknown }): Promise<string> {
  const title = validate.groupTitle(input.title, "input.title");
  const memberIds = validate.uuidList(input.memberIds, "input.memberIds", services.config.groupMaxMembers - 1, 1);
  if (memberIds.includes(viewer.userId)) throw appError(ErrorCode.BAD_USER_INPUT, "Leave yourself out of memberIds", { field: "input.memberIds" });
  const blocked = await blockedWith(services.db, viewer.userId);
  if (memberIds.some((id) => blocked.has(id))) throw appError(ErrorCode.NOT_FOUND, "No such person", { field: "input.memberIds" });
  const conversation = await services.db.conversation.create({
    data: {
      kind: "GROUP",
      title,
      members: { create: [{ userId: viewer.userId, role: "OWNER" }, ...memberIds.map((userId) => ({ userId }))] },
    },
    select: { id: true },
  });
  await publishConversationEvent(services, conversation.id, "MEMBERS_CHANGED", viewer.userId, 0);
  return conversation.id;
}

async function requireGroupRole(services: ChatServices, viewer: Viewer, conversationId: unknown, roles: Array<"OWNER" | "ADMIN">) {
  const membership = await requireMembership(services.db, conversationId, viewer.userId);
  if (membership.kind !== "GROUP") throw appError(ErrorCode.BAD_USER_INPUT, "Only group conversations have members to manage", { field: "conversationId" });
  if (!roles.includes(membership.role as "OWNER" | "ADMIN")) throw forbidden("role", `Only ${roles.join(" or ")} may do this`);
  return membership;
}

export async function addMembers(services: ChatServices, viewer: Viewer, conversationIdInput: unknown, userIdsInput: unknown): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER", "ADMIN"]);
  const userIds = validate.uuidList(userIdsInput, "userIds", services.config.groupMaxMembers, 1);
  const blocked = await blockedWith(services.db, viewer.userId);
  if (userIds.some((id) => blocked.has(id))) throw appError(ErrorCode.NOT_FOUND, "No such person", { field: "userIds" });
  const { conversationId } = membership;
  await services.db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    const existing = await tx.conversationMember.findMany({ where: { conversationId }, select: { userId: true } });
    const present = new Set(existing.map((member) => member.userId));
    const added = userIds.filter((id) => !present.has(id));
    if (present.size + added.length > services.config.groupMaxMembers) {
      throw appError(ErrorCode.BAD_USER_INPUT, `A group has at most ${services.config.groupMaxMembers} members`, { field: "userIds" });
    }
    await tx.conversationMember.createMany({ data: added.map((userId) => ({ conversationId, userId })) });
  });
  await publishConversationEvent(services, conversationId, "MEMBERS_CHANGED", viewer.userId, membership.lastSeq);
  return conversationId;
}

export async function removeMember(services: ChatServices, viewer: Viewer, conversationIdInput: unknown, userIdInput: unknown): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER", "ADMIN"]);
  const userId = requireUuid(userIdInput, "userId");
  if (userId === viewer.userId) throw appError(ErrorCode.BAD_USER_INPUT, "Use leaveConversation to leave", { field: "userId" });
  const { conversationId } = membership;
  const target = await services.db.conversationMember.findUnique({ where: { conversationId_userId: { conversationId, userId } }, select: { role: true } });
  if (!target) throw appError(ErrorCode.NOT_FOUND, "Not a member of this conversation", { field: "userId" });
  if (membership.role === "ADMIN" && target.role !== "MEMBER") throw forbidden("role", "Admins may remove members only");
  await services.db.conversationMember.delete({ where: { conversationId_userId: { conversationId, userId } } });
  await publishConversationEvent(services, conversationId, "MEMBERS_CHANGED", viewer.userId, membership.lastSeq, [userId]);
  return conversationId;
}

export async function setRole(services: ChatServices, viewer: Viewer, conversationIdInput: unknown, userIdInput: unknown, role: unknown): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER"]);
  const userId = requireUuid(userIdInput, "userId");
  if (role !== "OWNER" && role !== "ADMIN" && role !== "MEMBER") throw appError(ErrorCode.BAD_USER_INPUT, "Unknown role", { field: "role" });
  if (userId === viewer.userId) throw appError(ErrorCode.BAD_USER_INPUT, "Hand ownership to someone else instead", { field: "userId" });
  const { conversationId } = membership;
  const target = await services.db.conversationMember.findUnique({ where: { conversationId_userId: { conversationId, userId } }, select: { role: true } });
  if (!target) throw appError(ErrorCode.NOT_FOUND, "Not a member of this conversation", { field: "userId" });
  await services.db.$transaction(async (tx) => {
    await tx.conversationMember.update({ where: { conversationId_userId: { conversationId, userId } }, data: { role } });
    if (role === "OWNER") {
      await tx.conversationMember.update({ where: { conversationId_userId: { conversationId, userId: viewer.userId } }, data: { role: "ADMIN" } });
    }
  });
  await publishConversationEvent(services, conversationId, "MEMBERS_CHANGED", viewer.userId, membership.lastSeq);
  return conversationId;
}

export async function leave(services: ChatServices, viewer: Viewer, conversationIdInput: unknown): Promise<boolean> {
  const membership = await requireMembership(services.db, conversationIdInput, viewer.userId);
  if (membership.kind !== "GROUP") throw appError(ErrorCode.BAD_USER_INPUT, "Only group conversations can be left (block or unmatch instead)", { field: "conversationId" });
  const { conversationId } = membership;
  const remaining = await services.db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    await tx.conversationMember.delete({ where: { conversationId_userId: { conversationId, userId: viewer.userId } } });
    const rest = await tx.conversationMember.findMany({ where: { conversationId }, orderBy: { joinedAt: "asc" }, select: { userId: true, role: true } });
    if (rest.length === 0) {
      await tx.conversation.delete({ where: { id: conversationId } });
      return 0;
    }
    if (membership.role === "OWNER") {
      const heir = rest.find((member) => member.role === "ADMIN") ?? rest[0];
      if (heir) await tx.conversationMember.update({ where: { conversationId_userId: { conversationId, userId: heir.userId } }, data: { role: "OWNER" } });
    }
    return rest.length;
  });
  if (remaining > 0) await publishConversationEvent(services, conversationId, "MEMBERS_CHANGED", viewer.userId, membership.lastSeq, [viewer.userId]);
  return true;
}

export async function mute(services: ChatServices, viewer: Viewer, conversationIdInput: unknown, muted: unknown): Promise<string> {
  if (typeof muted !== "boolean") throw appError(ErrorCode.BAD_USER_INPUT, "muted must be a boolean", { field: "muted" });
  const { conversationId } = await requireMembership(services.db, conversationIdInput, viewer.userId);
  await services.db.conversationMember.update({ where: { conversationId_userId: { conversationId, userId: viewer.userId } }, data: { muted } });
  return conversationId;
}

// ---- receipts and typing ---------------------------------------------------------------------

/** Moves the viewer's read (or delivered) marker forward to `seq` (capped at the last seq); never back. */
export async function markUpTo(services: ChatServices, viewer: Viewer, conversationIdInput: unknown, seqInput: unknown, which: "READ" | "DELIVERED"): Promise<number> {
  const seq = validate.seqValue(seqInput, "seq");
  const membership = await requireMembership(services.db, conversationIdInput, viewer.userId);
  const target = Math.min(seq, membership.lastSeq);
  const column = which === "READ" ? "last_read_seq" : "delivered_seq";
  // Read implies delivered.
  const extra = which === "READ" ? ", delivered_seq = GREATEST(delivered_seq, $1)" : "";
  const rows = await services.db.$queryRawUnsafe<Array<{ marker: number; moved: boolean }>>(
    `UPDATE conversation_members SET ${column} = GREATEST(${column}, $1)${extra}
       WHERE conversation_id = $2::uuid AND user_id = $3::uuid
       RETURNING ${column} AS marker, true AS moved`,
    target,
    membership.conversationId,
    viewer.userId,
  );
  const marker = rows[0]?.marker ?? target;
  const before = which === "READ" ? membership.lastReadSeq : -1;
  if (which === "DELIVERED" || marker > before) {
    await publishConversationEvent(services, membership.conversationId, which, viewer.userId, marker);
  }
  return marker;
}

export const TYPING_THROTTLE_SECONDS = 3;

export async function typing(services: ChatServices, viewer: Viewer, conversationIdInput: unknown): Promise<boolean> {
  const membership = await requireMembership(services.db, conversationIdInput, viewer.userId);
  if (membership.closedAt) return false;
  const key = `${services.config.eventsPrefix}:chat:typing:${membership.conversationId}:${viewer.userId}`;
  const first = await services.redis.set(key, "1", "EX", TYPING_THROTTLE_SECONDS, "NX");
  if (first === "OK") await publishConversationEvent(services, membership.conversationId, "TYPING", viewer.userId, membership.lastSeq);
  return true;
}

// ---- events from other subgraphs -------------------------------------------------------------

export async function closeMatchConversation(db: ChatDb, live: ChatServices | undefined, matchId: string, userIds: [string, string]): Promise<string | null> {
  const conversation = await db.conversation.findFirst({
    where: { OR: [{ matchId }, { directKey: directKey(userIds[0], userIds[1]) }], closedAt: null },
    select: { id: true, lastSeq: true },
  });
  if (!conversation) return null;
  await db.conversation.update({ where: { id: conversation.id }, data: { closedAt: new Date() } });
  if (live) await publishConversationEvent(live, conversation.id, "CONVERSATION_CLOSED", null, conversation.lastSeq);
  return conversation.id;
}

import { appError, ErrorCode, requireUuid, type Viewer } from "@hv/kit";
import type { ChatDb } from "../db";
import { audienceOf, blockedWith, directKey, requireMembership } from "./access";
import { publishInvitations, screenCandidates, writeInvitations } from "./invitations";
import type { ChatEventKind } from "./bus";
import type { ChatServices } from "./context";
import { decodeCursor, encodeCursor } from "./cursor";
import { checkConversationOpened } from "./spam-signals";
import * as validate from "./validate";

const forbidden = (reason: string, message: string) =>
  appError(ErrorCode.FORBIDDEN, message, { details: { reason } });
const groupFull = (max: number) =>
  appError(ErrorCode.BAD_USER_INPUT, `A group has at most ${max} members, pending invitations included`, {
    field: "userIds",
  });

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

/**
 * The condition that hides, from someone who blocked a person, their one-to-one conversation with
 * that person (the blocked person still sees it, closed like after an unmatch).
 */
export async function hiddenByBlocks(db: ChatDb, viewerId: string) {
  const blocks = await db.block.findMany({ where: { blockerId: viewerId }, select: { blockedId: true } });
  if (blocks.length === 0) return {};
  return {
    NOT: {
      kind: "DIRECT" as const,
      members: { some: { userId: { in: blocks.map((block) => block.blockedId) } } },
    },
  };
}

/** My conversations, most recent activity first, keyset-paginated on (last activity, id). */
export async function listConversations(
  db: ChatDb,
  viewer: Viewer,
  args: { first?: unknown; after?: unknown; includeClosed?: unknown },
) {
  const first = validate.pageSize(args.first ?? 20, "first", 50);
  const cursor = args.after === undefined || args.after === null ? null : decodeCursor(args.after);
  const includeClosed = args.includeClosed === true;
  const hidden = await hiddenByBlocks(db, viewer.userId);
  const rows = await db.conversation.findMany({
    where: {
      ...hidden,
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
  const edges = page.map((row) => ({
    cursor: encodeCursor(row.lastActivityAt, row.id),
    node: { id: row.id },
  }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

// ---- direct conversations --------------------------------------------------------------------

/**
 * The pair's open DIRECT conversation, opened if there is none; returns its id. Only open ones
 * hold the pair's `directKey`: a closed one keeps its history for its members and is never
 * reopened, so a new match (say after an unblock) starts a new conversation. With `matchId`,
 * a redelivered `match.created` finds its own conversation, open or closed since.
 */
export async function ensureDirect(
  db: ChatDb,
  one: string,
  other: string,
  matchId: string | null,
): Promise<{ id: string; created: boolean }> {
  const key = directKey(one, other);
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${key}))`;
    if (matchId) {
      const own = await tx.conversation.findUnique({ where: { matchId }, select: { id: true } });
      if (own) return { id: own.id, created: false };
    }
    const existing = await tx.conversation.findUnique({
      where: { directKey: key },
      select: { id: true, closedAt: true, matchId: true },
    });
    if (existing && (existing.closedAt || (matchId && existing.matchId && existing.matchId !== matchId))) {
      // Closed, or an older match's whose match.ended has not arrived yet: it is over.
      await tx.conversation.update({
        where: { id: existing.id },
        data: { directKey: null, closedAt: existing.closedAt ?? new Date(), closedReason: "UNMATCHED" },
      });
    } else if (existing) {
      if (matchId) await tx.conversation.update({ where: { id: existing.id }, data: { matchId } });
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
      data: {
        kind: "DIRECT",
        directKey: key,
        matchId,
        members: { create: [{ userId: one }, { userId: other }] },
      },
      select: { id: true },
    });
    return { id: created.id, created: true };
  });
}

export async function openDirectConversation(
  services: ChatServices,
  viewer: Viewer,
  userIdInput: unknown,
): Promise<string> {
  const other = requireUuid(userIdInput, "userId");
  if (other === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "You cannot open a conversation with yourself", {
      field: "userId",
    });
  const existing = await services.db.conversation.findUnique({
    where: { directKey: directKey(viewer.userId, other) },
    select: {
      id: true,
      closedAt: true,
      members: { where: { userId: viewer.userId }, select: { userId: true } },
    },
  });
  if (existing && !existing.closedAt && existing.members.length > 0) return existing.id;
  if (services.config.requireMatch)
    throw forbidden("match-required", "A conversation with this person opens when you match");
  if ((await blockedWith(services.db, viewer.userId)).has(other))
    throw appError(ErrorCode.NOT_FOUND, "No such person", { field: "userId" });
  await checkConversationOpened(services, viewer);
  const { id, created } = await ensureDirect(services.db, viewer.userId, other, null);
  if (created) await publishConversationEvent(services, id, "MEMBERS_CHANGED", viewer.userId, 0);
  return id;
}

// ---- groups -----------------------------------------------------------------------------------

/**
 * A group with the viewer as OWNER: people matched with the viewer join at once, anyone else is
 * invited (see invitations.ts); an unavailable id refuses the whole request and creates nothing.
 */
export async function createGroup(
  services: ChatServices,
  viewer: Viewer,
  input: { title?: unknown; memberIds?: unknown },
): Promise<string> {
  const title = validate.groupTitle(input.title, "input.title");
  const memberIds = validate.uuidList(
    input.memberIds,
    "input.memberIds",
    services.config.groupMaxMembers - 1,
    1,
  );
  if (memberIds.includes(viewer.userId))
    throw appError(ErrorCode.BAD_USER_INPUT, "Leave yourself out of memberIds", { field: "input.memberIds" });
  await checkConversationOpened(services, viewer);
  const { matched, invitable } = await screenCandidates(
    services,
    viewer,
    memberIds.map((id, index) => ({ id, field: `input.memberIds[${index}]` })),
  );
  const { conversationId, invitations } = await services.db.$transaction(async (tx) => {
    const conversation = await tx.conversation.create({
      data: {
        kind: "GROUP",
        title,
        members: {
          create: [{ userId: viewer.userId, role: "OWNER" }, ...matched.map((userId) => ({ userId }))],
        },
      },
      select: { id: true },
    });
    return {
      conversationId: conversation.id,
      invitations: await writeInvitations(tx, services, viewer.userId, conversation.id, invitable),
    };
  });
  await publishConversationEvent(services, conversationId, "MEMBERS_CHANGED", viewer.userId, 0);
  await publishInvitations(services, conversationId, viewer.userId, invitations);
  return conversationId;
}

async function requireGroupRole(
  services: ChatServices,
  viewer: Viewer,
  conversationId: unknown,
  roles: Array<"OWNER" | "ADMIN">,
) {
  const membership = await requireMembership(services.db, conversationId, viewer.userId);
  if (membership.kind !== "GROUP")
    throw appError(ErrorCode.BAD_USER_INPUT, "Only group conversations have members to manage", {
      field: "conversationId",
    });
  if (!roles.includes(membership.role as "OWNER" | "ADMIN"))
    throw forbidden("role", `Only ${roles.join(" or ")} may do this`);
  return membership;
}

/**
 * OWNER or ADMIN: people matched with the viewer join, anyone else is invited. Members and pending
 * invitees are left as they are (a retried request changes nothing); someone who declined this
 * group's invitation is unavailable like an unknown id.
 */
export async function addMembers(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
  userIdsInput: unknown,
): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER", "ADMIN"]);
  const userIds = validate.uuidList(userIdsInput, "userIds", services.config.groupMaxMembers, 1);
  if (userIds.includes(viewer.userId))
    throw appError(ErrorCode.BAD_USER_INPUT, "Leave yourself out of userIds", { field: "userIds" });
  const { conversationId } = membership;
  const [members, invitations] = await Promise.all([
    services.db.conversationMember.findMany({
      where: { conversationId, userId: { in: userIds } },
      select: { userId: true },
    }),
    services.db.groupInvitation.findMany({
      where: { conversationId, inviteeId: { in: userIds } },
      select: { inviteeId: true, status: true },
    }),
  ]);
  const settled = new Set([
    ...members.map((member) => member.userId),
    ...invitations.filter((row) => row.status === "PENDING").map((row) => row.inviteeId),
  ]);
  const declined = new Set(
    invitations.filter((row) => row.status === "DECLINED").map((row) => row.inviteeId),
  );
  const candidates = userIds.flatMap((id, index) =>
    settled.has(id) ? [] : [{ id, field: `userIds[${index}]` }],
  );
  const [memberCount, pendingCount] = await Promise.all([
    services.db.conversationMember.count({ where: { conversationId } }),
    services.db.groupInvitation.count({ where: { conversationId, status: "PENDING" } }),
  ]);
  if (memberCount + pendingCount + candidates.length > services.config.groupMaxMembers)
    throw groupFull(services.config.groupMaxMembers);
  const { matched, invitable } = await screenCandidates(services, viewer, candidates, declined);
  // A declined invitee whom the viewer has matched since is added: the match is their consent.
  const written = await services.db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    const [present, pending] = await Promise.all([
      tx.conversationMember.findMany({ where: { conversationId }, select: { userId: true } }),
      tx.groupInvitation.count({ where: { conversationId, status: "PENDING" } }),
    ]);
    const presentIds = new Set(present.map((member) => member.userId));
    const added = matched.filter((id) => !presentIds.has(id));
    if (present.length + pending + added.length + invitable.length > services.config.groupMaxMembers)
      throw groupFull(services.config.groupMaxMembers);
    await tx.conversationMember.createMany({
      data: added.map((userId) => ({ conversationId, userId })),
      skipDuplicates: true,
    });
    await tx.groupInvitation.updateMany({
      where: { conversationId, inviteeId: { in: added } },
      data: { status: "ACCEPTED", respondedAt: new Date() },
    });
    return {
      added,
      invitations: await writeInvitations(tx, services, viewer.userId, conversationId, invitable),
    };
  });
  if (written.added.length > 0)
    await publishConversationEvent(
      services,
      conversationId,
      "MEMBERS_CHANGED",
      viewer.userId,
      membership.lastSeq,
    );
  await publishInvitations(services, conversationId, viewer.userId, written.invitations);
  return conversationId;
}

export async function removeMember(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
  userIdInput: unknown,
): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER", "ADMIN"]);
  const userId = requireUuid(userIdInput, "userId");
  if (userId === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "Use leaveConversation to leave", { field: "userId" });
  const { conversationId } = membership;
  const target = await services.db.conversationMember.findUnique({
    where: { conversationId_userId: { conversationId, userId } },
    select: { role: true },
  });
  if (!target) {
    // A pending invitee: the invitation is withdrawn (it leaves the invitee's list).
    const withdrawn = await services.db.groupInvitation.deleteMany({
      where: { conversationId, inviteeId: userId, status: "PENDING" },
    });
    if (withdrawn.count > 0) return conversationId;
    throw appError(ErrorCode.NOT_FOUND, "Not a member of this conversation", { field: "userId" });
  }
  if (membership.role === "ADMIN" && target.role !== "MEMBER")
    throw forbidden("role", "Admins may remove members only");
  await services.db.conversationMember.delete({
    where: { conversationId_userId: { conversationId, userId } },
  });
  await publishConversationEvent(
    services,
    conversationId,
    "MEMBERS_CHANGED",
    viewer.userId,
    membership.lastSeq,
    [userId],
  );
  return conversationId;
}

export async function setRole(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
  userIdInput: unknown,
  role: unknown,
): Promise<string> {
  const membership = await requireGroupRole(services, viewer, conversationIdInput, ["OWNER"]);
  const userId = requireUuid(userIdInput, "userId");
  if (role !== "OWNER" && role !== "ADMIN" && role !== "MEMBER")
    throw appError(ErrorCode.BAD_USER_INPUT, "Unknown role", { field: "role" });
  if (userId === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "Hand ownership to someone else instead", { field: "userId" });
  const { conversationId } = membership;
  const target = await services.db.conversationMember.findUnique({
    where: { conversationId_userId: { conversationId, userId } },
    select: { role: true },
  });
  if (!target) throw appError(ErrorCode.NOT_FOUND, "Not a member of this conversation", { field: "userId" });
  await services.db.$transaction(async (tx) => {
    await tx.conversationMember.update({
      where: { conversationId_userId: { conversationId, userId } },
      data: { role },
    });
    if (role === "OWNER") {
      await tx.conversationMember.update({
        where: { conversationId_userId: { conversationId, userId: viewer.userId } },
        data: { role: "ADMIN" },
      });
    }
  });
  await publishConversationEvent(
    services,
    conversationId,
    "MEMBERS_CHANGED",
    viewer.userId,
    membership.lastSeq,
  );
  return conversationId;
}

export async function leave(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
): Promise<boolean> {
  const membership = await requireMembership(services.db, conversationIdInput, viewer.userId);
  if (membership.kind !== "GROUP")
    throw appError(
      ErrorCode.BAD_USER_INPUT,
      "Only group conversations can be left (block or unmatch instead)",
      { field: "conversationId" },
    );
  const { conversationId } = membership;
  const remaining = await services.db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    await tx.conversationMember.delete({
      where: { conversationId_userId: { conversationId, userId: viewer.userId } },
    });
    const rest = await tx.conversationMember.findMany({
      where: { conversationId },
      orderBy: { joinedAt: "asc" },
      select: { userId: true, role: true },
    });
    if (rest.length === 0) {
      // Its messages first, not by the foreign key's cascade (docs/realtime-measurements.md, round 9).
      await tx.message.deleteMany({ where: { conversationId } });
      await tx.conversation.delete({ where: { id: conversationId } });
      return 0;
    }
    if (membership.role === "OWNER") {
      const heir = rest.find((member) => member.role === "ADMIN") ?? rest[0];
      if (heir)
        await tx.conversationMember.update({
          where: { conversationId_userId: { conversationId, userId: heir.userId } },
          data: { role: "OWNER" },
        });
    }
    return rest.length;
  });
  if (remaining > 0)
    await publishConversationEvent(
      services,
      conversationId,
      "MEMBERS_CHANGED",
      viewer.userId,
      membership.lastSeq,
      [viewer.userId],
    );
  return true;
}

export async function mute(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
  muted: unknown,
): Promise<string> {
  if (typeof muted !== "boolean")
    throw appError(ErrorCode.BAD_USER_INPUT, "muted must be a boolean", { field: "muted" });
  const { conversationId } = await requireMembership(services.db, conversationIdInput, viewer.userId);
  await services.db.conversationMember.update({
    where: { conversationId_userId: { conversationId, userId: viewer.userId } },
    data: { muted },
  });
  return conversationId;
}

// ---- receipts and typing ---------------------------------------------------------------------

/** Moves the viewer's read (or delivered) marker forward to `seq` (capped at the last seq); never back. */
export async function markUpTo(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
  seqInput: unknown,
  which: "READ" | "DELIVERED",
): Promise<number> {
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

export async function typing(
  services: ChatServices,
  viewer: Viewer,
  conversationIdInput: unknown,
): Promise<boolean> {
  const membership = await requireMembership(services.db, conversationIdInput, viewer.userId);
  if (membership.closedAt) return false;
  const key = `${services.config.eventsPrefix}:chat:typing:${membership.conversationId}:${viewer.userId}`;
  const first = await services.redis.set(key, "1", "EX", TYPING_THROTTLE_SECONDS, "NX");
  if (first === "OK")
    await publishConversationEvent(
      services,
      membership.conversationId,
      "TYPING",
      viewer.userId,
      membership.lastSeq,
    );
  return true;
}

// ---- events from other subgraphs -------------------------------------------------------------

/**
 * Closes the DIRECT conversation of a match that ended (or of the pair, for one opened without a
 * match): readable, nobody can send, and no longer the pair's (`directKey` cleared). Returns its id.
 */
export async function closeMatchConversation(
  db: ChatDb,
  live: ChatServices | undefined,
  matchId: string,
  userIds: [string, string],
): Promise<string | null> {
  const conversation = await db.conversation.findFirst({
    where: {
      OR: [{ matchId }, { directKey: directKey(userIds[0], userIds[1]), matchId: null }],
      closedAt: null,
    },
    select: { id: true, lastSeq: true },
  });
  if (!conversation) return null;
  await db.conversation.update({
    where: { id: conversation.id },
    data: { closedAt: new Date(), closedReason: "UNMATCHED", directKey: null },
  });
  if (live)
    await publishConversationEvent(live, conversation.id, "CONVERSATION_CLOSED", null, conversation.lastSeq);
  return conversation.id;
}

/** Closes the pair's open DIRECT conversation, if any (a block ends contact, match or not). */
export async function closePairConversation(
  db: ChatDb,
  live: ChatServices | undefined,
  one: string,
  other: string,
): Promise<string | null> {
  const conversation = await db.conversation.findUnique({
    where: { directKey: directKey(one, other) },
    select: { id: true, lastSeq: true, matchId: true },
  });
  if (!conversation) return null;
  await db.conversation.update({
    where: { id: conversation.id },
    data: { closedAt: new Date(), closedReason: "UNMATCHED", directKey: null },
  });
  if (live)
    await publishConversationEvent(live, conversation.id, "CONVERSATION_CLOSED", null, conversation.lastSeq);
  return conversation.id;
}

import { appError, ErrorCode, requireUuid } from "@hv/kit";
import type { ChatDb } from "../db";

type Tx = Pick<ChatDb, "block" | "conversationMember" | "$queryRaw">;

/** Never says whether the conversation exists: a non-member gets the same answer as for a missing one. */
export function conversationNotFound(field = "conversationId") {
  return appError(ErrorCode.NOT_FOUND, "No such conversation", { field });
}

export function messageNotFound(field = "messageId") {
  return appError(ErrorCode.NOT_FOUND, "No such message", { field });
}

/** Everyone `userId` blocked or was blocked by. */
export async function blockedWith(db: Tx, userId: string): Promise<Set<string>> {
  const rows = await db.block.findMany({
    where: { OR: [{ blockerId: userId }, { blockedId: userId }] },
    select: { blockerId: true, blockedId: true },
  });
  return new Set(rows.map((row) => (row.blockerId === userId ? row.blockedId : row.blockerId)));
}

export interface Membership {
  conversationId: string;
  kind: "DIRECT" | "GROUP";
  closedAt: Date | null;
  lastSeq: number;
  role: "OWNER" | "ADMIN" | "MEMBER";
  muted: boolean;
  lastReadSeq: number;
}

/** The viewer's membership, or NOT_FOUND (also for a malformed id: BAD_USER_INPUT). */
export async function requireMembership(
  db: ChatDb,
  conversationIdInput: unknown,
  userId: string,
  field = "conversationId",
): Promise<Membership> {
  const conversationId = requireUuid(conversationIdInput, field);
  const member = await db.conversationMember.findUnique({
    where: { conversationId_userId: { conversationId, userId } },
    select: {
      role: true,
      muted: true,
      lastReadSeq: true,
      conversation: { select: { kind: true, closedAt: true, lastSeq: true } },
    },
  });
  if (!member) throw conversationNotFound(field);
  return {
    conversationId,
    kind: member.conversation.kind,
    closedAt: member.conversation.closedAt,
    lastSeq: member.conversation.lastSeq,
    role: member.role,
    muted: member.muted,
    lastReadSeq: member.lastReadSeq,
  };
}

/** The members of a conversation who may see what `actorId` does (everyone but blocked pairs). */
export async function audienceOf(
  db: ChatDb,
  conversationId: string,
  actorId: string | null,
): Promise<string[]> {
  const [members, blocked] = await Promise.all([
    db.conversationMember.findMany({ where: { conversationId }, select: { userId: true } }),
    actorId ? blockedWith(db, actorId) : Promise.resolve(new Set<string>()),
  ]);
  return members.map((member) => member.userId).filter((id) => !blocked.has(id));
}

export function directKey(one: string, other: string): string {
  return one < other ? `${one}:${other}` : `${other}:${one}`;
}

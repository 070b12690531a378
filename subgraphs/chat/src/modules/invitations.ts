import { appError, ErrorCode, requireUuid, type Viewer } from "@hv/kit";
import type { ChatDb } from "../db";
import { audienceOf, blockedWith } from "./access";
import type { ChatServices } from "./context";
import { decodeCursor, encodeCursor } from "./cursor";
import { sortCandidates } from "./people";
import * as validate from "./validate";

type Tx = Parameters<Parameters<ChatDb["$transaction"]>[0]>[0];

/** One answer for every id that cannot be added or invited (see USER_UNAVAILABLE). */
export function userUnavailable(field: string) {
  return appError(ErrorCode.USER_UNAVAILABLE, "This person cannot be added to a conversation", { field });
}

const invitationNotFound = () =>
  appError(ErrorCode.NOT_FOUND, "No such invitation", { field: "invitationId" });
const answered = (status: string) =>
  appError(ErrorCode.CONFLICT, `This invitation was already ${status.toLowerCase()}`, {
    field: "invitationId",
    details: { reason: "answered", status },
  });

/**
 * The candidates of createGroupConversation / addGroupMembers (already without members and pending
 * invitees), sorted into people matched with the adder (added) and people to invite. Every id that is
 * not a match counts against CHAT_INVITATIONS_PER_DAY before anything is said about it, so the answers
 * cannot be used to probe many ids; then any unavailable id refuses the whole request.
 */
export async function screenCandidates(
  services: ChatServices,
  viewer: Viewer,
  ids: Array<{ id: string; field: string }>,
  refused: ReadonlySet<string> = new Set(),
): Promise<{ matched: string[]; invitable: string[] }> {
  const sorted = await sortCandidates(
    services.db,
    viewer.userId,
    ids.map((entry) => entry.id),
  );
  const strangers = ids.length - sorted.matched.length;
  if (strangers > 0) await services.invitationsPerDay.consume(viewer.userId, strangers);
  if (sorted.invitable.length > 0) await requireShownInviter(services.db, viewer.userId);
  const unavailable = new Set([...sorted.unavailable, ...sorted.invitable.filter((id) => refused.has(id))]);
  const first = ids.find((entry) => unavailable.has(entry.id));
  if (first) throw userUnavailable(first.field);
  return { matched: sorted.matched, invitable: sorted.invitable };
}

/**
 * Someone whom others cannot see (a hidden profile, a ban) may not invite strangers: the invitation
 * would show them. An account Chat has no copy of yet is let through (see the deploy note in
 * docs/consent-and-deletion.md).
 */
async function requireShownInviter(db: ChatDb, inviterId: string): Promise<void> {
  const inviter = await db.person.findUnique({
    where: { userId: inviterId },
    select: { visible: true, banned: true },
  });
  if (inviter && (inviter.banned || !inviter.visible)) {
    throw appError(
      ErrorCode.FORBIDDEN,
      "Make your profile visible to invite people you have not matched with",
      {
        details: { reason: inviter.banned ? "banned" : "hidden-profile" },
      },
    );
  }
}

/** Inviters of `inviteeId`'s pending invitations whom nobody may see now (hidden, banned, deleted). */
async function unseenInviters(db: ChatDb, inviteeId: string): Promise<string[]> {
  const rows = await db.$queryRaw<Array<{ id: string }>>`
    SELECT DISTINCT gi.inviter_id::text AS id
      FROM group_invitations gi JOIN people p ON p.user_id = gi.inviter_id
     WHERE gi.invitee_id = ${inviteeId}::uuid AND gi.status = 'PENDING'
       AND (NOT p.visible OR p.banned OR p.deleted_at IS NOT NULL)`;
  return rows.map((row) => row.id);
}

export interface NewInvitation {
  id: string;
  inviteeId: string;
}

/**
 * Writes the invitations inside the group's transaction, under the inviter's lock so two requests
 * at once cannot both pass CHAT_PENDING_INVITATIONS_MAX. A row left ACCEPTED by someone who has
 * since left the group becomes a new pending invitation.
 */
export async function writeInvitations(
  tx: Tx,
  services: ChatServices,
  inviterId: string,
  conversationId: string,
  inviteeIds: string[],
): Promise<NewInvitation[]> {
  if (inviteeIds.length === 0) return [];
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`chat-invitations:${inviterId}`}))`;
  const pending = await tx.groupInvitation.count({ where: { inviterId, status: "PENDING" } });
  const max = services.config.pendingInvitationsMax;
  if (pending + inviteeIds.length > max) {
    throw appError(ErrorCode.QUOTA_EXCEEDED, `At most ${max} invitations may wait for an answer at once`, {
      details: { limit: "chat-pending-invitations", pendingInvitations: pending, maxPendingInvitations: max },
    });
  }
  // One statement for all of them (not an upsert per invitee: each Prisma statement costs CPU).
  const rows = await tx.$queryRaw<Array<{ id: string; invitee_id: string }>>`
    INSERT INTO group_invitations (id, conversation_id, invitee_id, inviter_id, status, created_at)
    SELECT gen_random_uuid(), ${conversationId}::uuid, t.id, ${inviterId}::uuid, 'PENDING', now()
      FROM unnest(${inviteeIds}::uuid[]) AS t(id)
    ON CONFLICT (conversation_id, invitee_id) DO UPDATE
      SET inviter_id = EXCLUDED.inviter_id, status = 'PENDING', created_at = EXCLUDED.created_at, responded_at = NULL
    RETURNING id::text AS id, invitee_id::text AS invitee_id`;
  return rows.map((row) => ({ id: row.id, inviteeId: row.invitee_id }));
}

/** Tells each invitee (and only them) on their own stream. */
export async function publishInvitations(
  services: ChatServices,
  conversationId: string,
  inviterId: string,
  invitations: NewInvitation[],
): Promise<void> {
  const occurredAt = new Date().toISOString();
  await Promise.all(
    invitations.map((invitation) =>
      services.bus.publish([invitation.inviteeId], {
        kind: "INVITATION_RECEIVED",
        conversationId,
        seq: 0,
        message: null,
        actorId: inviterId,
        invitationId: invitation.id,
        occurredAt,
      }),
    ),
  );
}

async function ownInvitation(db: ChatDb, viewer: Viewer, invitationIdInput: unknown) {
  const id = requireUuid(invitationIdInput, "invitationId");
  const invitation = await db.groupInvitation.findUnique({
    where: { id },
    select: { id: true, conversationId: true, inviteeId: true, inviterId: true, status: true },
  });
  // Someone else's invitation gets the same answer as one that does not exist.
  if (!invitation || invitation.inviteeId !== viewer.userId) throw invitationNotFound();
  return invitation;
}

/**
 * Joins the group as MEMBER. Retrying after success returns the conversation again; a declined
 * invitation, or one accepted by someone who has since left, is CONFLICT (reason answered).
 */
export async function acceptInvitation(
  services: ChatServices,
  viewer: Viewer,
  invitationIdInput: unknown,
): Promise<string> {
  const invitation = await ownInvitation(services.db, viewer, invitationIdInput);
  const { conversationId } = invitation;
  const joined = await services.db.$transaction(async (tx) => {
    const locked = await tx.$queryRaw<
      Array<{ last_seq: number }>
    >`SELECT last_seq FROM conversations WHERE id = ${conversationId}::uuid FOR UPDATE`;
    const current = await tx.groupInvitation.findUnique({
      where: { id: invitation.id },
      select: { status: true },
    });
    if (!locked[0] || !current) throw invitationNotFound();
    const member = await tx.conversationMember.findUnique({
      where: { conversationId_userId: { conversationId, userId: viewer.userId } },
      select: { userId: true },
    });
    if (current.status === "ACCEPTED" && member) return null;
    if (current.status !== "PENDING") throw answered(current.status);
    const members = await tx.conversationMember.count({ where: { conversationId } });
    if (members >= services.config.groupMaxMembers) {
      throw appError(ErrorCode.CONFLICT, `The group is full (${services.config.groupMaxMembers} members)`, {
        field: "invitationId",
        details: { reason: "group-full" },
      });
    }
    await tx.conversationMember.create({ data: { conversationId, userId: viewer.userId, lastReadSeq: 0 } });
    await tx.groupInvitation.update({
      where: { id: invitation.id },
      data: { status: "ACCEPTED", respondedAt: new Date() },
    });
    return locked[0].last_seq;
  });
  if (joined !== null) {
    const audience = await audienceOf(services.db, conversationId, viewer.userId);
    await services.bus.publish(audience, {
      kind: "MEMBERS_CHANGED",
      conversationId,
      seq: joined,
      message: null,
      actorId: viewer.userId,
      occurredAt: new Date().toISOString(),
    });
  }
  return conversationId;
}

/** Says no: nobody is told, and this group cannot invite the viewer again. Declining twice is fine. */
export async function declineInvitation(
  services: ChatServices,
  viewer: Viewer,
  invitationIdInput: unknown,
): Promise<boolean> {
  const invitation = await ownInvitation(services.db, viewer, invitationIdInput);
  if (invitation.status === "DECLINED") return true;
  if (invitation.status === "ACCEPTED") throw answered("ACCEPTED");
  const { count } = await services.db.groupInvitation.updateMany({
    where: { id: invitation.id, status: "PENDING" },
    data: { status: "DECLINED", respondedAt: new Date() },
  });
  if (count === 0) {
    const now = await services.db.groupInvitation.findUnique({
      where: { id: invitation.id },
      select: { status: true },
    });
    if (now?.status !== "DECLINED") throw answered(now?.status ?? "ACCEPTED");
  }
  return true;
}

export interface InvitationRow {
  id: string;
  conversationId: string;
  inviterId: string;
  status: "PENDING" | "ACCEPTED" | "DECLINED";
  createdAt: Date;
  title: string;
}

const INVITATION_SELECT = {
  id: true,
  conversationId: true,
  inviterId: true,
  status: true,
  createdAt: true,
  conversation: { select: { title: true } },
} as const;

export function toInvitationRow(row: {
  id: string;
  conversationId: string;
  inviterId: string;
  status: InvitationRow["status"];
  createdAt: Date;
  conversation: { title: string | null };
}): InvitationRow {
  return {
    id: row.id,
    conversationId: row.conversationId,
    inviterId: row.inviterId,
    status: row.status,
    createdAt: row.createdAt,
    title: row.conversation.title ?? "",
  };
}

/** The viewer's own invitations by id (others' are null). */
export async function invitationsOf(
  db: ChatDb,
  viewerId: string,
  ids: readonly string[],
): Promise<Array<InvitationRow | null>> {
  const rows = await db.groupInvitation.findMany({
    where: { id: { in: [...ids] }, inviteeId: viewerId },
    select: INVITATION_SELECT,
  });
  const byId = new Map(rows.map((row) => [row.id, toInvitationRow(row)]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** The viewer's pending invitations, newest first, keyset-paginated on (created, id). */
export async function myInvitations(
  services: ChatServices,
  viewer: Viewer,
  args: { first?: unknown; after?: unknown },
) {
  const first = validate.pageSize(args.first ?? 20, "first", 50);
  const cursor = args.after === undefined || args.after === null ? null : decodeCursor(args.after);
  // Not listed: invitations from someone blocked either way, or whom nobody may see now.
  const [blocks, unseen] = await Promise.all([
    blockedWith(services.db, viewer.userId),
    unseenInviters(services.db, viewer.userId),
  ]);
  const blocked = [...blocks, ...unseen];
  const rows = await services.db.groupInvitation.findMany({
    where: {
      inviteeId: viewer.userId,
      status: "PENDING",
      ...(blocked.length > 0 ? { inviterId: { notIn: blocked } } : {}),
      ...(cursor
        ? {
            OR: [
              { createdAt: { lt: new Date(cursor.t) } },
              { createdAt: new Date(cursor.t), id: { lt: cursor.id } },
            ],
          }
        : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: first + 1,
    select: INVITATION_SELECT,
  });
  const page = rows.slice(0, first).map(toInvitationRow);
  const edges = page.map((row) => ({ cursor: encodeCursor(row.createdAt, row.id), node: row }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

import {
  appError,
  ErrorCode,
  outboxEventData,
  requireModerator,
  requireUuid,
  requireViewer,
  type Viewer,
} from "@hv/kit";
import type { UsersContext } from "../context";
import { cleanText } from "./input";
import { fileReport } from "./moderation-queue";
import { profileChangedPayload } from "./profile";

type Action = "DISMISS" | "REMOVE_MESSAGE" | "REMOVE_MEDIA" | "WARN" | "SUSPEND" | "BAN";
const ACTIONS = new Set<Action>(["DISMISS", "REMOVE_MESSAGE", "REMOVE_MEDIA", "WARN", "SUSPEND", "BAN"]);
const MAX_SUSPEND_HOURS = 8760;

interface CaseRow {
  id: string;
  targetKind: "USER" | "MESSAGE" | "MEDIA";
  targetId: string;
  targetUserId: string;
  status: "OPEN" | "ACTIONED" | "DISMISSED";
  claimedBy: string | null;
  claimExpiresAt: Date | null;
  snapshot: unknown;
}

function pageSize(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 100) {
    throw appError(ErrorCode.BAD_USER_INPUT, `${field} must be between 1 and 100`, { field });
  }
  return value;
}

/** Opaque keyset cursors: base64url JSON of the last row's sort key. */
function encodeCursor(parts: Array<string | number>): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

function decodeCursor(
  value: unknown,
  field: string,
  shape: Array<"number" | "date" | "uuid">,
): Array<number | Date | string> | null {
  if (value === null || value === undefined) return null;
  const bad = () => appError(ErrorCode.BAD_USER_INPUT, `${field} is not a cursor from this list`, { field });
  if (typeof value !== "string" || value.length > 200) throw bad();
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parts) || parts.length !== shape.length) throw bad();
  return shape.map((kind, index) => {
    const part: unknown = parts[index];
    if (kind === "number" && typeof part === "number" && Number.isSafeInteger(part)) return part;
    if (kind === "date" && typeof part === "string" && !Number.isNaN(Date.parse(part))) return new Date(part);
    if (kind === "uuid") {
      try {
        return requireUuid(part, field);
      } catch {
        throw bad();
      }
    }
    throw bad();
  });
}

function reasonText(value: unknown, field: string): string {
  if (typeof value !== "string") throw appError(ErrorCode.BAD_USER_INPUT, `${field} is required`, { field });
  const text = cleanText(value, field, { min: 1, max: 1000, multiline: true });
  return text;
}

/** Why a case could not be claimed or resolved by this moderator: no case, resolved, or someone else's claim. */
async function refusal(context: UsersContext, caseId: string, moderatorId: string): Promise<never> {
  const found = await context.services.db.moderationCase.findUnique({
    where: { id: caseId },
    select: { status: true, claimedBy: true, claimExpiresAt: true },
  });
  if (!found) throw appError(ErrorCode.NOT_FOUND, "No such case", { field: "caseId" });
  if (found.status !== "OPEN")
    throw appError(ErrorCode.CASE_CLAIMED, "This case is already resolved", {
      field: "caseId",
      details: { reason: "resolved" },
    });
  if (found.claimedBy && found.claimedBy !== moderatorId && found.claimExpiresAt) {
    throw appError(ErrorCode.CASE_CLAIMED, "Another moderator holds this case", {
      field: "caseId",
      details: { reason: "claimed", until: found.claimExpiresAt.toISOString() },
    });
  }
  throw appError(ErrorCode.CASE_CLAIMED, "This case changed meanwhile: read it again", {
    field: "caseId",
    details: { reason: "changed" },
  });
}

/** Claims an open case for `claimSeconds`; atomic, so of two racing moderators exactly one wins. */
async function claim(context: UsersContext, moderator: Viewer, caseIdInput: unknown) {
  const caseId = requireUuid(caseIdInput, "caseId");
  const { db, moderation } = context.services;
  const claimed = await db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<
      Array<{ id: string; target_kind: CaseRow["targetKind"]; target_id: string; claim_expires_at: Date }>
    >`
      UPDATE moderation_cases SET claimed_by = ${moderator.userId}::uuid,
             claim_expires_at = now() + make_interval(secs => ${moderation.claimSeconds})
      WHERE id = ${caseId}::uuid AND status = 'OPEN'
        AND (claimed_by IS NULL OR claimed_by = ${moderator.userId}::uuid OR claim_expires_at <= now())
      RETURNING id, target_kind, target_id, claim_expires_at`;
    const row = rows[0];
    if (!row) return null;
    await tx.moderationAuditEntry.create({
      data: {
        moderatorId: moderator.userId,
        caseId,
        what: "CLAIM",
        targetKind: row.target_kind,
        targetId: row.target_id,
        until: row.claim_expires_at,
      },
    });
    return row;
  });
  if (!claimed) return refusal(context, caseId, moderator.userId);
  return db.moderationCase.findUniqueOrThrow({ where: { id: caseId } });
}

interface ResolveInput {
  caseId: string;
  action: Action;
  reason: string;
  suspendHours?: number | null;
}

/**
 * Resolves an open case that nobody else holds a live claim on, records it in the audit log and
 * emits `moderation.action_taken` (plus the account events of SUSPEND and BAN) in one transaction.
 */
export async function resolveCase(context: UsersContext, moderator: Viewer, input: ResolveInput) {
  const caseId = requireUuid(input.caseId, "input.caseId");
  if (!ACTIONS.has(input.action))
    throw appError(ErrorCode.BAD_USER_INPUT, "Unknown action", { field: "input.action" });
  const reason = reasonText(input.reason, "input.reason");
  const hours = input.suspendHours ?? null;
  if (input.action === "SUSPEND") {
    if (hours === null || !Number.isInteger(hours) || hours < 1 || hours > MAX_SUSPEND_HOURS) {
      throw appError(
        ErrorCode.BAD_USER_INPUT,
        `SUSPEND needs suspendHours between 1 and ${MAX_SUSPEND_HOURS}`,
        { field: "input.suspendHours" },
      );
    }
  } else if (hours !== null) {
    throw appError(ErrorCode.BAD_USER_INPUT, "suspendHours is for SUSPEND only", {
      field: "input.suspendHours",
    });
  }
  const { db, sessions, profiles } = context.services;
  const current = await db.moderationCase.findUnique({ where: { id: caseId }, select: { targetKind: true } });
  if (!current) throw appError(ErrorCode.NOT_FOUND, "No such case", { field: "input.caseId" });
  if (input.action === "REMOVE_MESSAGE" && current.targetKind !== "MESSAGE") {
    throw appError(ErrorCode.BAD_USER_INPUT, "REMOVE_MESSAGE is for a reported message", {
      field: "input.action",
    });
  }
  if (input.action === "REMOVE_MEDIA" && current.targetKind !== "MEDIA") {
    throw appError(ErrorCode.BAD_USER_INPUT, "REMOVE_MEDIA is for reported media", { field: "input.action" });
  }
  const until = hours === null ? null : new Date(Date.now() + hours * 3_600_000);
  const resolved = await db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<
      Array<{
        id: string;
        target_kind: CaseRow["targetKind"];
        target_id: string;
        target_user_id: string;
        resolved_at: Date;
      }>
    >`
      UPDATE moderation_cases SET status = ${input.action === "DISMISS" ? "DISMISSED" : "ACTIONED"}::"ModerationCaseStatus",
             open_key = NULL, resolved_at = now(), resolved_by = ${moderator.userId}::uuid,
             action = ${input.action}::"ModerationAction", action_reason = ${reason}, action_until = ${until},
             claimed_by = NULL, claim_expires_at = NULL
      WHERE id = ${caseId}::uuid AND status = 'OPEN'
        AND (claimed_by IS NULL OR claimed_by = ${moderator.userId}::uuid OR claim_expires_at <= now())
      RETURNING id, target_kind, target_id, target_user_id, resolved_at`;
    const row = rows[0];
    if (!row) return null;
    await tx.moderationAuditEntry.create({
      data: {
        moderatorId: moderator.userId,
        caseId,
        what: input.action,
        reason,
        targetKind: row.target_kind,
        targetId: row.target_id,
        until,
      },
    });
    if (input.action === "SUSPEND" || input.action === "BAN") {
      const data = input.action === "BAN" ? { bannedAt: new Date() } : { suspendedUntil: until };
      const updated = await tx.user.updateManyAndReturn({
        where: { id: row.target_user_id },
        data,
        omit: { passwordHash: true, email: true },
      });
      const user = updated[0];
      if (user) {
        if (input.action === "BAN")
          await tx.outboxEvent.create({ data: outboxEventData("user.banned", { userId: user.id }) });
        await tx.outboxEvent.create({
          data: outboxEventData("user.profile_changed", profileChangedPayload(user)),
        });
      }
    }
    await tx.outboxEvent.create({
      data: outboxEventData("moderation.action_taken", {
        caseId,
        targetKind: row.target_kind,
        targetId: row.target_id,
        targetUserId: row.target_user_id,
        action: input.action,
        ...(until ? { until: until.toISOString() } : {}),
        moderatorId: moderator.userId,
        at: row.resolved_at.toISOString(),
      }),
    });
    return row;
  });
  if (!resolved) return refusal(context, caseId, moderator.userId);
  context.services.flushEvents();
  if (input.action === "SUSPEND" || input.action === "BAN") {
    await sessions.endAll(resolved.target_user_id, input.action === "BAN" ? "banned" : "suspended");
    await profiles.invalidate(resolved.target_user_id);
  }
  return db.moderationCase.findUniqueOrThrow({ where: { id: caseId } });
}

/** The open case about a user, opened by a moderator's own request (the deprecated `banUser`). */
export async function caseAboutUser(
  context: UsersContext,
  moderator: Viewer,
  userId: string,
): Promise<string> {
  return context.services.db.$transaction(async (tx) => {
    const filed = await fileReport(tx, {
      reporterId: moderator.userId,
      targetKind: "USER",
      targetId: userId,
      targetUserId: userId,
      reason: "OTHER",
      details: "banUser",
      snapshot: null,
    });
    return filed.caseId;
  });
}

/** A moderation case as stored: what `ModerationCase` resolves from. */
export type CaseRecord = Awaited<
  ReturnType<UsersContext["services"]["db"]["moderationCase"]["findUniqueOrThrow"]>
>;
/** A report as stored: what `ModerationReport` resolves from. */
export type ReportRecord = Awaited<ReturnType<UsersContext["services"]["db"]["report"]["findUniqueOrThrow"]>>;

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export const moderationResolvers = {
  Query: {
    async moderationCases(
      _: unknown,
      args: { first?: number | null; after?: string | null },
      context: UsersContext,
    ) {
      requireModerator(context);
      const first = pageSize(args.first ?? 20, "first");
      const cursor = decodeCursor(args.after, "after", ["number", "date", "uuid"]);
      const keyset = cursor
        ? (() => {
            const [priority, openedAt, id] = cursor as [number, Date, string];
            return {
              OR: [
                { priority: { lt: priority } },
                { priority, openedAt: { gt: openedAt } },
                { priority, openedAt, id: { gt: id } },
              ],
            };
          })()
        : {};
      const rows = await context.services.db.moderationCase.findMany({
        where: { status: "OPEN", ...keyset },
        orderBy: [{ priority: "desc" }, { openedAt: "asc" }, { id: "asc" }],
        take: first + 1,
      });
      const page = rows.slice(0, first);
      const last = page.at(-1);
      return {
        cases: page,
        nextCursor:
          rows.length > first && last
            ? encodeCursor([last.priority, last.openedAt.toISOString(), last.id])
            : null,
      };
    },
    async moderationCase(_: unknown, args: { id: string }, context: UsersContext) {
      requireModerator(context);
      const id = requireUuid(args.id, "id");
      return context.services.db.moderationCase.findUnique({ where: { id } });
    },
    async moderationAuditLog(
      _: unknown,
      args: { caseId?: string | null; first?: number | null; after?: string | null },
      context: UsersContext,
    ) {
      requireModerator(context);
      const first = pageSize(args.first ?? 50, "first");
      const caseId = args.caseId == null ? null : requireUuid(args.caseId, "caseId");
      const cursor = decodeCursor(args.after, "after", ["date", "uuid"]);
      const keyset = cursor
        ? (() => {
            const [at, id] = cursor as [Date, string];
            return { OR: [{ at: { lt: at } }, { at, id: { lt: id } }] };
          })()
        : {};
      const rows = await context.services.db.moderationAuditEntry.findMany({
        where: { ...(caseId ? { caseId } : {}), ...keyset },
        orderBy: [{ at: "desc" }, { id: "desc" }],
        take: first + 1,
      });
      const page = rows.slice(0, first);
      const last = page.at(-1);
      return {
        entries: page,
        nextCursor: rows.length > first && last ? encodeCursor([last.at.toISOString(), last.id]) : null,
      };
    },
    async myReports(_: unknown, args: { first?: number | null }, context: UsersContext) {
      const viewer = requireViewer(context);
      const first = pageSize(args.first ?? 20, "first");
      const rows = await context.services.db.report.findMany({
        where: { reporterId: viewer.userId },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: first,
        select: {
          id: true,
          targetKind: true,
          targetId: true,
          reportedId: true,
          reason: true,
          createdAt: true,
          case: { select: { status: true, resolvedAt: true } },
        },
      });
      return rows.map((row) => ({
        id: row.id,
        targetKind: row.targetKind,
        targetId: row.targetId ?? row.reportedId,
        reason: row.reason,
        createdAt: row.createdAt,
        status: row.case?.status ?? "OPEN",
        handledAt: row.case?.resolvedAt ?? null,
      }));
    },
  },
  Mutation: {
    claimModerationCase: (_: unknown, args: { caseId: string }, context: UsersContext) =>
      claim(context, requireModerator(context), args.caseId),
    resolveModerationCase: (_: unknown, args: { input: ResolveInput }, context: UsersContext) =>
      resolveCase(context, requireModerator(context), args.input),
  },
  ModerationCase: {
    snapshot: (row: CaseRecord) => json(row.snapshot),
    targetUser: (row: CaseRecord, _: unknown, context: UsersContext) =>
      context.services.db.user.findUnique({ where: { id: row.targetUserId }, omit: { passwordHash: true } }),
    media: (row: CaseRecord) =>
      row.targetKind === "MEDIA" ? { __typename: "Media", id: row.targetId } : null,
    reports: (row: CaseRecord, _: unknown, context: UsersContext) =>
      context.services.db.report.findMany({
        where: { caseId: row.id },
        orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      }),
  },
  ModerationReport: {
    snapshot: (row: { snapshot: unknown }) => json(row.snapshot),
  },
};

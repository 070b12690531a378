import { appError, ErrorCode, outboxEventData, requireUuid, requireViewer } from "@hv/kit";
import type { MediaContext } from "../context";
import { variantsOf } from "../variants";
import { readAccess } from "./access";

const REASONS = [
  "SPAM",
  "HARASSMENT",
  "INAPPROPRIATE_CONTENT",
  "FAKE_PROFILE",
  "UNDERAGE",
  "SCAM",
  "OTHER",
] as const;
type Reason = (typeof REASONS)[number];
// eslint-disable-next-line no-control-regex -- matching control characters is what this pattern is for
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u;

function note(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string")
    throw appError(ErrorCode.BAD_USER_INPUT, "note must be a string", { field: "note" });
  if (CONTROL.test(value))
    throw appError(ErrorCode.BAD_USER_INPUT, "note must not contain control characters", { field: "note" });
  if ([...value].length > 1000)
    throw appError(ErrorCode.BAD_USER_INPUT, "note must be at most 1000 characters", { field: "note" });
  return value.trim() === "" ? null : value.trim();
}

/**
 * Reports a media item the viewer may see (not their own): one report per reporter and item
 * (reporting again updates it), sent to the moderation queue in Users with a snapshot (owner,
 * kind, the variants' storage keys) through the outbox. An item the viewer may not see: NOT_FOUND.
 */
export async function reportMedia(
  args: { mediaId: unknown; reason: unknown; note?: unknown; readGrant?: unknown },
  context: MediaContext,
): Promise<boolean> {
  const viewer = requireViewer(context);
  const mediaId = requireUuid(args.mediaId, "mediaId");
  if (typeof args.reason !== "string" || !(REASONS as readonly string[]).includes(args.reason)) {
    throw appError(ErrorCode.BAD_USER_INPUT, "Unknown reason", { field: "reason" });
  }
  const reason = args.reason as Reason;
  const text = note(args.note);
  if (
    args.readGrant !== undefined &&
    args.readGrant !== null &&
    (typeof args.readGrant !== "string" || args.readGrant.length > 1000)
  ) {
    throw appError(ErrorCode.BAD_USER_INPUT, "readGrant must be Chat's grant string", { field: "readGrant" });
  }
  const { db } = context.services;
  const media = await db.media.findUnique({ where: { id: mediaId } });
  if (!media || !(await readAccess(media, args.readGrant ?? null, context)).allowed) {
    throw appError(ErrorCode.NOT_FOUND, "No such media", { field: "mediaId" });
  }
  if (media.ownerId === viewer.userId)
    throw appError(ErrorCode.BAD_USER_INPUT, "You cannot report your own media", { field: "mediaId" });
  await db.$transaction(async (tx) => {
    const report = await tx.mediaReport.upsert({
      where: { mediaId_reporterId: { mediaId, reporterId: viewer.userId } },
      create: { mediaId, reporterId: viewer.userId, reason, note: text },
      update: { reason, note: text },
      select: { id: true },
    });
    await tx.outboxEvent.create({
      data: outboxEventData("media.reported", {
        reportId: report.id,
        mediaId,
        ownerId: media.ownerId,
        kind: media.kind,
        variantKeys: variantsOf(media).map((variant) => variant.key),
        reporterId: viewer.userId,
        reason,
        note: text,
      }),
    });
  });
  context.services.flushEvents();
  return true;
}

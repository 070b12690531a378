import { randomUUID } from "node:crypto";
import { appError, ErrorCode, requireUuid, requireViewer } from "@hv/kit";
import type { MediaContext } from "../context";
import type { MediaRow } from "../loaders";
import { keysOf, purgeSourceLater } from "../keys";
import { enqueueProcessing } from "../queue";
import { sourceKey } from "../storage";

/** Content types a client may declare, per kind (the worker checks the bytes against them). */
export const CONTENT_TYPES = {
  IMAGE: new Set(["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "image/avif"]),
  VIDEO: new Set(["video/mp4", "video/quicktime", "video/webm"]),
} as const;

export interface CreateUploadInput {
  kind: "IMAGE" | "VIDEO";
  contentType: string;
  byteSize: number;
  purpose: "PROFILE_PHOTO" | "CHAT_ATTACHMENT";
}

export async function createUpload(input: CreateUploadInput, context: MediaContext) {
  const viewer = requireViewer(context);
  const { services } = context;
  const contentType = input.contentType.trim().toLowerCase();
  if (contentType.length > 100 || !CONTENT_TYPES[input.kind].has(contentType)) {
    const accepted = [...CONTENT_TYPES[input.kind]].join(", ");
    throw appError(ErrorCode.BAD_USER_INPUT, `contentType must be one of ${accepted} for ${input.kind}`, {
      field: "input.contentType",
    });
  }
  if (input.purpose === "PROFILE_PHOTO" && input.kind !== "IMAGE") {
    throw appError(ErrorCode.BAD_USER_INPUT, "A profile photo must be an IMAGE", { field: "input.kind" });
  }
  const maxBytes = services.config.limits[input.kind].maxBytes;
  if (!Number.isSafeInteger(input.byteSize) || input.byteSize < 1 || input.byteSize > maxBytes) {
    throw appError(ErrorCode.BAD_USER_INPUT, `byteSize must be between 1 and ${maxBytes} for ${input.kind}`, {
      field: "input.byteSize",
      details: { maxBytes },
    });
  }
  await services.uploads.consume(viewer.userId);
  const id = randomUUID();
  const key = sourceKey(viewer.userId, id);
  const signed = await services.storage.signUpload(key, {
    contentType,
    byteSize: input.byteSize,
    ttlSeconds: services.config.uploadUrlTtlSeconds,
  });
  const quota = services.config.pendingQuota;
  const media = await services.db.$transaction(async (tx) => {
    // One user's createUploads queue up here, so two at once cannot both squeeze under the quota.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`media-quota:${viewer.userId}`}))`;
    const pending = await tx.media.aggregate({
      where: { ownerId: viewer.userId, status: { in: ["PENDING", "PROCESSING"] } },
      _count: { _all: true },
      _sum: { byteSize: true },
    });
    const items = pending._count._all;
    const bytes = pending._sum.byteSize ?? 0;
    if (items + 1 > quota.items || bytes + input.byteSize > quota.bytes) {
      throw appError(
        ErrorCode.QUOTA_EXCEEDED,
        `Too many unfinished uploads: at most ${quota.items} and ${quota.bytes} bytes at once; complete or delete some first`,
        {
          details: {
            pendingUploads: items,
            pendingBytes: bytes,
            maxPendingUploads: quota.items,
            maxPendingBytes: quota.bytes,
          },
        },
      );
    }
    return tx.media.create({
      data: {
        id,
        ownerId: viewer.userId,
        kind: input.kind,
        purpose: input.purpose,
        contentType,
        byteSize: input.byteSize,
        sourceKey: key,
        uploadExpiresAt: signed.expiresAt,
      },
    });
  });
  return {
    media,
    uploadUrl: signed.url,
    uploadMethod: "PUT",
    uploadHeaders: Object.entries(signed.headers).map(([name, value]) => ({ name, value })),
    expiresAt: signed.expiresAt,
  };
}

/** One of the viewer's media, or NOT_FOUND (someone else's looks the same as none). */
export async function ownMedia(id: unknown, field: string, context: MediaContext): Promise<MediaRow> {
  const viewer = requireViewer(context);
  const mediaId = requireUuid(id, field);
  const media = await context.services.db.media.findUnique({ where: { id: mediaId } });
  if (!media || media.ownerId !== viewer.userId)
    throw appError(ErrorCode.NOT_FOUND, "No such media", { field });
  return media;
}

export async function completeUpload(id: unknown, context: MediaContext): Promise<MediaRow> {
  const media = await ownMedia(id, "id", context);
  const { services } = context;
  if (media.status === "READY" || media.status === "FAILED") return media;
  if (media.uploadedAt === null) {
    if (!media.sourceKey || (await services.storage.stat(media.sourceKey)) === null) {
      throw appError(ErrorCode.CONFLICT, "Nothing was uploaded yet: PUT the file to the upload URL first", {
        field: "id",
      });
    }
  }
  const updated = await services.db.media.update({
    where: { id: media.id },
    data: { uploadedAt: media.uploadedAt ?? new Date() },
  });
  // The job id is the media id: completing twice queues one job.
  await enqueueProcessing(services.queue, media.id);
  return updated;
}

export async function deleteMedia(id: unknown, context: MediaContext): Promise<boolean> {
  const media = await ownMedia(id, "id", context);
  const { services } = context;
  await services.db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${media.ownerId}))`;
    await tx.media.delete({ where: { id: media.id } });
    if (media.position !== null) {
      await tx.media.updateMany({
        where: { ownerId: media.ownerId, purpose: "PROFILE_PHOTO", position: { gt: media.position } },
        data: { position: { decrement: 1 } },
      });
    }
  });
  await services.photos.invalidate(media.ownerId);
  context.loaders.profilePhotosByOwner.clear(media.ownerId);
  // A job still running may be writing variants: the worker deletes those itself when it finds the row gone.
  await services.storage.delete(keysOf(media));
  await services.queue.remove(media.id).catch(() => undefined);
  await purgeSourceLater(services.maintenance, media, services.config.uploadGraceSeconds);
  return true;
}

import { appError, ErrorCode, requireUuid, requireViewer } from "@hv/kit";
import type { MediaContext } from "../context";
import type { MediaDb } from "../db";
import type { MediaRow } from "../loaders";
import { ownMedia } from "./uploads";

type Tx = Parameters<Parameters<MediaDb["$transaction"]>[0]>[0];

/** A profile's photos in order: READY profile photos with a position. */
export function profilePhotosWhere(ownerId: string) {
  return { ownerId, purpose: "PROFILE_PHOTO" as const, status: "READY" as const, position: { not: null } };
}

async function photosOf(tx: Tx, ownerId: string): Promise<MediaRow[]> {
  return tx.media.findMany({
    where: profilePhotosWhere(ownerId),
    orderBy: [{ position: "asc" }, { createdAt: "asc" }],
  });
}

/**
 * Runs `change` with the owner's photo list locked (concurrent edits of one profile queue up);
 * once it commits, the owner's cached list goes (modules/photo-cache.ts).
 */
async function withPhotos(
  context: MediaContext,
  ownerId: string,
  change: (tx: Tx, photos: MediaRow[]) => Promise<void>,
): Promise<MediaRow[]> {
  const photos = await context.services.db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${ownerId}))`;
    await change(tx, await photosOf(tx, ownerId));
    return photosOf(tx, ownerId);
  });
  await context.services.photos.invalidate(ownerId);
  context.loaders.profilePhotosByOwner.clear(ownerId);
  return photos;
}

async function renumber(tx: Tx, ids: string[]): Promise<void> {
  for (const [position, id] of ids.entries()) await tx.media.update({ where: { id }, data: { position } });
}

export async function addProfilePhoto(mediaId: unknown, context: MediaContext): Promise<MediaRow[]> {
  const media = await ownMedia(mediaId, "mediaId", context);
  if (media.purpose !== "PROFILE_PHOTO")
    throw appError(ErrorCode.BAD_USER_INPUT, "Only media uploaded as PROFILE_PHOTO can go on a profile", {
      field: "mediaId",
    });
  const max = context.services.config.maxProfilePhotos;
  return withPhotos(context, media.ownerId, async (tx, photos) => {
    if (photos.some((photo) => photo.id === media.id)) return; // already there: nothing to do
    const current = await tx.media.findUnique({ where: { id: media.id } });
    if (!current) throw appError(ErrorCode.NOT_FOUND, "No such media", { field: "mediaId" });
    if (current.status !== "READY") {
      throw appError(ErrorCode.CONFLICT, `The photo is ${current.status}, not READY yet`, {
        field: "mediaId",
        details: { status: current.status },
      });
    }
    if (photos.length >= max) {
      throw appError(ErrorCode.CONFLICT, `A profile holds at most ${max} photos: remove one first`, {
        field: "mediaId",
        details: { maxPhotos: max },
      });
    }
    await tx.media.update({ where: { id: media.id }, data: { position: photos.length } });
  });
}

export async function removeProfilePhoto(mediaId: unknown, context: MediaContext): Promise<MediaRow[]> {
  const media = await ownMedia(mediaId, "mediaId", context);
  return withPhotos(context, media.ownerId, async (tx, photos) => {
    if (!photos.some((photo) => photo.id === media.id)) return;
    await tx.media.update({ where: { id: media.id }, data: { position: null } });
    await renumber(
      tx,
      photos.filter((photo) => photo.id !== media.id).map((photo) => photo.id),
    );
  });
}

export async function reorderProfilePhotos(mediaIds: unknown, context: MediaContext): Promise<MediaRow[]> {
  const viewer = requireViewer(context);
  const max = context.services.config.maxProfilePhotos;
  if (!Array.isArray(mediaIds) || mediaIds.length > max) {
    throw appError(ErrorCode.BAD_USER_INPUT, `mediaIds lists at most ${max} ids`, { field: "mediaIds" });
  }
  const ids = mediaIds.map((id, index) => requireUuid(id, `mediaIds[${index}]`));
  if (new Set(ids).size !== ids.length)
    throw appError(ErrorCode.BAD_USER_INPUT, "mediaIds lists an id twice", { field: "mediaIds" });
  return withPhotos(context, viewer.userId, async (tx, photos) => {
    const current = new Set(photos.map((photo) => photo.id));
    if (ids.length !== current.size || ids.some((id) => !current.has(id))) {
      throw appError(
        ErrorCode.BAD_USER_INPUT,
        "mediaIds must be exactly the photos now on your profile, in the new order",
        {
          field: "mediaIds",
          details: { current: photos.map((photo) => photo.id) },
        },
      );
    }
    await renumber(tx, ids);
  });
}

import DataLoader from "dataloader";
import type { MediaDb } from "./db";

export type MediaRow = NonNullable<Awaited<ReturnType<MediaDb["media"]["findUnique"]>>>;

/** One set per request: each loader turns N lookups into one query. */
export function createLoaders(db: MediaDb) {
  return {
    mediaById: new DataLoader<string, MediaRow | null>(async (ids) => {
      const rows = await db.media.findMany({ where: { id: { in: [...ids] } } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    /** Ready profile photos per owner, in the owner's order. */
    profilePhotosByOwner: new DataLoader<string, MediaRow[]>(async (ownerIds) => {
      const rows = await db.media.findMany({
        where: { ownerId: { in: [...ownerIds] }, purpose: "PROFILE_PHOTO", status: "READY", position: { not: null } },
        orderBy: [{ position: "asc" }, { createdAt: "asc" }],
      });
      const byOwner = new Map<string, MediaRow[]>();
      for (const row of rows) {
        const photos = byOwner.get(row.ownerId);
        if (photos) photos.push(row);
        else byOwner.set(row.ownerId, [row]);
      }
      return ownerIds.map((ownerId) => byOwner.get(ownerId) ?? []);
    }),
  };
}
export type MediaLoaders = ReturnType<typeof createLoaders>;

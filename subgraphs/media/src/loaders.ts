import DataLoader from "dataloader";
import type { ReadAccess } from "./modules/access";
import type { MediaDb } from "./db";
import type { PhotoCache } from "./modules/photo-cache";

export type MediaRow = NonNullable<Awaited<ReturnType<MediaDb["media"]["findUnique"]>>>;

/** One set per request (for one viewer, or none): each loader turns N lookups into one query. */
export function createLoaders(db: MediaDb, viewerId: string | null, photos: PhotoCache) {
  return {
    mediaById: new DataLoader<string, MediaRow | null>(async (ids) => {
      const rows = await db.media.findMany({ where: { id: { in: [...ids] } } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    /**
     * Ready profile photos per owner, in the owner's order, from the shared Redis cache (one MGET;
     * the misses one SQL query). The same for every viewer: who may see them is `ownerHiddenFromViewer`.
     */
    profilePhotosByOwner: new DataLoader<string, MediaRow[]>((ownerIds) => photos.load(ownerIds)),
    /**
     * Per owner: true when this viewer must see none of their media (the owner is banned, or the
     * viewer and the owner blocked each other, either way). Never true for the viewer themselves.
     */
    ownerHiddenFromViewer: new DataLoader<string, boolean>(async (ownerIds) => {
      const ids = [...ownerIds];
      const [banned, blocks] = await Promise.all([
        db.userState.findMany({ where: { userId: { in: ids }, banned: true }, select: { userId: true } }),
        viewerId
          ? db.block.findMany({
              where: { OR: [{ blockerId: viewerId, blockedId: { in: ids } }, { blockedId: viewerId, blockerId: { in: ids } }] },
              select: { blockerId: true, blockedId: true },
            })
          : Promise.resolve([]),
      ]);
      const hidden = new Set([...banned.map((row) => row.userId), ...blocks.map((row) => (row.blockerId === viewerId ? row.blockedId : row.blockerId))]);
      return ids.map((id) => id !== viewerId && hidden.has(id));
    }),
    /** Read decisions of this request, by media id and grant (see modules/access.ts). */
    readAccess: new Map<string, Promise<ReadAccess>>(),
  };
}
export type MediaLoaders = ReturnType<typeof createLoaders>;

import DataLoader from "dataloader";
import type { ReadAccess } from "./modules/access";
import type { MediaDb } from "./db";

export type MediaRow = NonNullable<Awaited<ReturnType<MediaDb["media"]["findUnique"]>>>;

/** One set per request (for one viewer, or none): each loader turns N lookups into one query. */
export function createLoaders(db: MediaDb, viewerId: string | null) {
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

import DataLoader from "dataloader";
import type { ReadAccess } from "./modules/access";
import type { MediaDb, SqlClient } from "./db";
import { Prisma } from "./generated/prisma/client";
import type { PhotoCache } from "./modules/photo-cache";

export type MediaRow = NonNullable<Awaited<ReturnType<MediaDb["media"]["findUnique"]>>>;

/** One set per request (for one viewer, or none): each loader turns N lookups into one query. */
export function createLoaders(db: MediaDb, sql: SqlClient, viewerId: string | null, photos: PhotoCache) {
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
      // One plain statement (a page of 50 owners is on the nearby path: Prisma's two findMany took
      // ~8 ms of CPU here). Ids are UUIDs already (the resolvers check).
      const hidden = await sql.query<{ id: string }>(Prisma.sql`
        SELECT o.id::text AS id FROM unnest(${[...ownerIds]}::uuid[]) AS o(id)
        WHERE EXISTS (SELECT 1 FROM user_states s WHERE s.user_id = o.id AND s.banned)
           OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ${viewerId}::uuid AND b.blocked_id = o.id)
           OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = o.id AND b.blocked_id = ${viewerId}::uuid)`);
      const hiddenIds = new Set(hidden.map((row) => row.id));
      return ownerIds.map((id) => id !== viewerId && hiddenIds.has(id));
    }),
    /** Read decisions of this request, by media id and grant (see modules/access.ts). */
    readAccess: new Map<string, Promise<ReadAccess>>(),
  };
}
export type MediaLoaders = ReturnType<typeof createLoaders>;

import { prepared } from "@hv/kit";
import DataLoader from "dataloader";
import type { ReadAccess } from "./modules/access";
import type { MediaDb, SqlClient } from "./db";
import { Prisma } from "./generated/prisma/client";
import type { PhotoCache } from "./modules/photo-cache";

export type MediaRow = NonNullable<Awaited<ReturnType<MediaDb["media"]["findUnique"]>>>;

/** Every column of `MediaRow`, named and typed as Prisma returns them (enums as text, `variants` parsed JSON). */
export const MEDIA_ROW_COLUMNS = Prisma.sql`id::text AS id, owner_id::text AS "ownerId", kind::text AS kind, status::text AS status,
  purpose::text AS purpose, position, width, height, content_type AS "contentType", byte_size AS "byteSize",
  source_key AS "sourceKey", variants, failure_reason::text AS "failureReason", duration_ms AS "durationMs", blurhash,
  upload_expires_at AS "uploadExpiresAt", uploaded_at AS "uploadedAt", processed_at AS "processedAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** One set per request (for one viewer, or none): each loader turns N lookups into one query. */
export function createLoaders(sql: SqlClient, viewerId: string | null, photos: PhotoCache) {
  return {
    /** Rows by id, in one plain statement (ids are UUIDs already: the resolvers check). */
    mediaById: new DataLoader<string, MediaRow | null>(async (ids) => {
      const rows = await sql.query<MediaRow>(
        Prisma.sql`SELECT ${MEDIA_ROW_COLUMNS} FROM media WHERE id = ANY(${[...ids]}::uuid[])`,
      );
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
      const hidden = await sql.query<{ id: string }>(
        prepared(
          "media_owners_hidden",
          Prisma.sql`
        SELECT o.id::text AS id FROM unnest(${[...ownerIds]}::uuid[]) AS o(id)
        WHERE EXISTS (SELECT 1 FROM user_states s WHERE s.user_id = o.id AND s.banned)
           OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ${viewerId}::uuid AND b.blocked_id = o.id)
           OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = o.id AND b.blocked_id = ${viewerId}::uuid)`,
        ),
      );
      const hiddenIds = new Set(hidden.map((row) => row.id));
      return ownerIds.map((id) => id !== viewerId && hiddenIds.has(id));
    }),
    /** Owners `ownerHiddenFromViewer` cleared for this viewer in this request (modules/access.ts `ownerShown`). */
    ownersShown: new Set<string>(),
    /** Read decisions of this request, by media id and grant: made, or being made (see modules/access.ts). */
    readAccess: new Map<string, ReadAccess | Promise<ReadAccess>>(),
  };
}
export type MediaLoaders = ReturnType<typeof createLoaders>;

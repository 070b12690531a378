import { cacheIfUnchanged, ParsedTexts, type Logger, type Redis, type SqlClient } from "@hv/kit";
import { Prisma } from "../generated/prisma/client";
import { MEDIA_ROW_COLUMNS, type MediaRow } from "../loaders";

/** How long an owner's list may sit in Redis unread; every change deletes it before that. */
export const PHOTO_CACHE_TTL_SECONDS = 300;
/** How long a version outlives its last bump: longer than any read of Postgres could take. */
const VERSION_TTL_SECONDS = 24 * 60 * 60;

export const photoListKey = (ownerId: string) => `hv:media:profile-photos:${ownerId}`;
const versionKey = (ownerId: string) => `hv:media:profile-photos-version:${ownerId}`;
/** Owners whose last parsed list this process keeps: ~5.6 KB each with three photos (text and rows), ~27 MB in all. */
const PARSED_LISTS_MAX = 5_000;

const DATE_FIELDS = ["uploadExpiresAt", "uploadedAt", "processedAt", "createdAt", "updatedAt"] as const;
/** A row as JSON has it: dates as ISO strings. */
type CachedRow = Omit<MediaRow, (typeof DATE_FIELDS)[number]> &
  Record<"uploadExpiresAt" | "uploadedAt" | "processedAt", string | null> &
  Record<"createdAt" | "updatedAt", string>;

/**
 * What is cached of a photo: the row as Postgres has it, except the original's storage key (null
 * once processed anyway). No signed URL: `url` is decided per request, for the viewer asking (modules/access.ts).
 */
function toCached(row: MediaRow): MediaRow {
  return { ...row, sourceKey: null };
}

const date = (value: string | null) => (value === null ? null : new Date(value));

function revive(row: CachedRow): MediaRow {
  return {
    ...row,
    uploadExpiresAt: date(row.uploadExpiresAt),
    uploadedAt: date(row.uploadedAt),
    processedAt: date(row.processedAt),
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
}

/**
 * Each owner's profile photos (READY, on the profile, in the owner's order) as one Redis value
 * shared by every Media replica: `User.photos` for many owners is one MGET, and the misses one SQL
 * query. It holds only what is the same for every viewer; who may see the list (bans, blocks either
 * way) is decided per request on top of it (loaders.ts `ownerHiddenFromViewer`), and so is
 * who gets a URL (modules/access.ts). Every change to an owner's list calls `invalidate` after it commits.
 */
export class PhotoCache {
  /** Each owner's list as last parsed from Redis (ParsedTexts: the same text is not parsed again). */
  private readonly lists = new ParsedTexts(PARSED_LISTS_MAX, (text) =>
    (JSON.parse(text) as CachedRow[]).map(revive),
  );

  constructor(
    private readonly sql: SqlClient,
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  async load(ownerIds: readonly string[]): Promise<MediaRow[][]> {
    if (ownerIds.length === 0) return [];
    const found = new Map<string, MediaRow[]>();
    // Redis down: every list comes from Postgres (and nothing is written back).
    const cached = await this.redis.mget(ownerIds.map(photoListKey)).catch((error: unknown) => {
      this.logger.warn({ err: error }, "profile photo cache unavailable: reading Postgres");
      return ownerIds.map(() => null);
    });
    ownerIds.forEach((ownerId, index) => {
      const text = cached[index];
      if (text) found.set(ownerId, this.lists.parse(ownerId, text));
    });
    const missing = ownerIds.filter((ownerId) => !found.has(ownerId));
    if (missing.length === 0) return ownerIds.map((ownerId) => found.get(ownerId) ?? []);
    // Versions before the read: a change committed after this point bumps them, and the write below is skipped.
    const versions = await this.redis.mget(missing.map(versionKey)).catch(() => undefined);
    // One plain statement (Prisma's findMany with a 50-id IN list cost ~3 ms of CPU here).
    const rows = await this.sql.query<MediaRow>(Prisma.sql`
      SELECT ${MEDIA_ROW_COLUMNS} FROM media
       WHERE owner_id = ANY(${missing}::uuid[]) AND purpose = 'PROFILE_PHOTO' AND status = 'READY' AND position IS NOT NULL
       ORDER BY position ASC, created_at ASC`);
    for (const ownerId of missing) found.set(ownerId, []);
    for (const row of rows) found.get(row.ownerId)?.push(toCached(row));
    if (versions) {
      // Written only where no change to that owner's photos happened since the read began (the
      // version is unchanged): a slow reader cannot put back a list a change replaced. An owner
      // without photos is cached too (as []): most people asked for have none.
      const writes = missing.map((ownerId, index) => ({
        key: photoListKey(ownerId),
        versionKey: versionKey(ownerId),
        value: JSON.stringify(found.get(ownerId)),
        version: versions[index] ?? "0",
      }));
      await cacheIfUnchanged(this.redis, writes, PHOTO_CACHE_TTL_SECONDS).catch((error: unknown) =>
        this.logger.warn({ err: error }, "could not cache profile photos"),
      );
    }
    return ownerIds.map((ownerId) => found.get(ownerId) ?? []);
  }

  /**
   * After every committed change to an owner's photos (add, remove, reorder, delete, processing
   * finished, the owner deleted): the next read anywhere goes to Postgres, and a read that began
   * before the change cannot cache what it saw. Throws when Redis cannot take it.
   */
  async invalidate(ownerId: string): Promise<void> {
    await this.redis
      .multi()
      .incr(versionKey(ownerId))
      .expire(versionKey(ownerId), VERSION_TTL_SECONDS)
      .del(photoListKey(ownerId))
      .exec();
  }
}

import {
  cacheIfUnchanged,
  ParsedTexts,
  prepared,
  USER_CHANGED_CHANNEL,
  type Redis,
  type SqlClient,
} from "@hv/kit";
import { Prisma } from "../generated/prisma/client";
import type { UserRow } from "../loaders";

const TTL_SECONDS = 300;
const key = (id: string) => `hv:users:profile:${id}`;
const versionKey = (id: string) => `hv:users:profile-version:${id}`;
/** Users whose last parsed row this process keeps: ~1.5 KB each (text and row), ~15 MB in all. */
const PARSED_ROWS_MAX = 10_000;

type CachedRow = Omit<
  UserRow,
  "birthDate" | "bannedAt" | "suspendedUntil" | "emailVerifiedAt" | "createdAt" | "updatedAt"
> & {
  birthDate: string;
  bannedAt: string | null;
  suspendedUntil: string | null;
  emailVerifiedAt: string | null;
  createdAt: string;
  updatedAt: string;
};

/**
 * Every column of `UserRow` (the users table less password hash and email), named and typed as
 * Prisma returns them: enums as text, a NULL list as [] (the list columns are nullable), the birth
 * date as a string made a UTC-midnight Date below (node-postgres would read a `date` in the
 * process's time zone).
 */
const USER_ROW_COLUMNS = Prisma.sql`id::text AS id, display_name AS "displayName", bio, pronouns, birth_date::text AS "birthDate",
  gender::text AS gender, COALESCE(genders_of_interest::text[], '{}') AS "gendersOfInterest", COALESCE(interests, '{}') AS interests, age_min AS "ageMin",
  age_max AS "ageMax", max_distance_km AS "maxDistanceKm", visibility::text AS visibility, role::text AS role,
  banned_at AS "bannedAt", suspended_until AS "suspendedUntil", email_verified_at AS "emailVerifiedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

function revive(row: CachedRow): UserRow {
  return {
    ...row,
    birthDate: new Date(row.birthDate),
    bannedAt: row.bannedAt === null ? null : new Date(row.bannedAt),
    suspendedUntil: row.suspendedUntil === null ? null : new Date(row.suspendedUntil),
    emailVerifiedAt: row.emailVerifiedAt === null ? null : new Date(row.emailVerifiedAt),
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
}

/**
 * Users' rows cached in Redis (shared by every replica), read in one MGET; misses cost one SQL
 * query for the whole batch. Every write to a user calls `invalidate` after it commits.
 */
export class ProfileCache {
  /** Each user's row as last parsed from Redis (ParsedTexts: the same text is not parsed again). */
  private readonly rows = new ParsedTexts(PARSED_ROWS_MAX, (text) => revive(JSON.parse(text) as CachedRow));

  constructor(
    private readonly sql: SqlClient,
    private readonly redis: Redis,
  ) {}

  /** One plain statement for a batch (Prisma's findMany with a 50-id IN list cost ~3 ms of CPU here). */
  private async read(ids: readonly string[]): Promise<UserRow[]> {
    const rows = await this.sql.query<Omit<UserRow, "birthDate"> & { birthDate: string }>(
      prepared(
        "users_profile_rows",
        Prisma.sql`SELECT ${USER_ROW_COLUMNS} FROM users WHERE id = ANY(${[...ids]}::uuid[])`,
      ),
    );
    return rows.map((row) => ({ ...row, birthDate: new Date(`${row.birthDate}T00:00:00.000Z`) }));
  }

  async load(ids: readonly string[]): Promise<Array<UserRow | null>> {
    if (ids.length === 0) return [];
    // Rows and versions in one round trip: a miss's version is read before its SQL read begins.
    const cached = await this.redis.mget([...ids.map(key), ...ids.map(versionKey)]).catch(() => undefined);
    const found = new Map<string, UserRow>();
    /** Each missing user's version as read with the rows (null: never written). */
    const missing = new Map<string, string | null>();
    ids.forEach((id, index) => {
      const text = cached?.[index];
      if (text) found.set(id, this.rows.parse(id, text));
      else missing.set(id, cached?.[ids.length + index] ?? null);
    });
    if (missing.size > 0) {
      const rows = await this.read([...missing.keys()]);
      for (const row of rows) found.set(row.id, row);
      // Written only where no write to that user happened since the read began (its version is
      // unchanged), so a slow reader cannot put back a row that a ban just replaced. Without
      // Redis (the read failed) nothing is written.
      if (cached) {
        const writes = rows.map((row) => ({
          key: key(row.id),
          versionKey: versionKey(row.id),
          value: JSON.stringify(row),
          version: missing.get(row.id) ?? "0",
        }));
        await cacheIfUnchanged(this.redis, writes, TTL_SECONDS).catch(() => undefined);
      }
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  /**
   * After every committed write to a user: readers that started before it will not cache it, and
   * gateways drop their copies of the user's public fields (USER_CHANGED_CHANNEL).
   */
  async invalidate(id: string): Promise<void> {
    await this.redis
      .multi()
      .incr(versionKey(id))
      .expire(versionKey(id), 24 * 60 * 60)
      .del(key(id))
      .publish(USER_CHANGED_CHANNEL, id)
      .exec();
  }
}

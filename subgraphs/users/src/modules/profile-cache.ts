import type { Redis } from "@hv/kit";
import type { UsersDb } from "../db";
import type { UserRow } from "../loaders";

const TTL_SECONDS = 300;
const key = (id: string) => `hv:users:profile:${id}`;

type CachedRow = Omit<UserRow, "birthDate" | "bannedAt" | "createdAt" | "updatedAt"> & {
  birthDate: string;
  bannedAt: string | null;
  createdAt: string;
  updatedAt: string;
};

function revive(row: CachedRow): UserRow {
  return {
    ...row,
    birthDate: new Date(row.birthDate),
    bannedAt: row.bannedAt === null ? null : new Date(row.bannedAt),
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
}

/**
 * Users' rows cached in Redis (shared by every replica), read in one MGET; misses cost one SQL
 * query for the whole batch. Every write to a user calls `invalidate` after it commits.
 */
export class ProfileCache {
  constructor(
    private readonly db: UsersDb,
    private readonly redis: Redis,
  ) {}

  async load(ids: readonly string[]): Promise<Array<UserRow | null>> {
    if (ids.length === 0) return [];
    const cached = await this.redis.mget(ids.map(key)).catch(() => ids.map(() => null));
    const found = new Map<string, UserRow>();
    ids.forEach((id, index) => {
      const text = cached[index];
      if (text) found.set(id, revive(JSON.parse(text) as CachedRow));
    });
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) {
      const rows = await this.db.user.findMany({ where: { id: { in: missing } }, omit: { passwordHash: true, email: true } });
      if (rows.length > 0) {
        const pipeline = this.redis.pipeline();
        for (const row of rows) {
          found.set(row.id, row);
          pipeline.set(key(row.id), JSON.stringify(row), "EX", TTL_SECONDS);
        }
        await pipeline.exec().catch(() => undefined);
      }
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  async invalidate(id: string): Promise<void> {
    await this.redis.del(key(id));
  }
}

import type { Redis } from "./redis";

/** One value read from Postgres, to cache unless its version moved since the read began. */
export interface VersionedWrite {
  key: string;
  /** Bumped by every committed change (after the change, before the key is deleted). */
  versionKey: string;
  value: string;
  /** The version read before the database read ("0" when there was none). */
  version: string;
}

// KEYS: key1, versionKey1, key2, versionKey2, … ARGV: value1, version1, value2, version2, …, ttl.
// Each value is written only if its version is unchanged, so a slow reader cannot put back a row a
// change has replaced (the change bumps the version, then deletes the key).
const SET_EACH_IF_VERSION = `
local ttl = ARGV[#ARGV]
for i = 1, #KEYS, 2 do
  if (redis.call("GET", KEYS[i + 1]) or "0") == ARGV[i + 1] then
    redis.call("SET", KEYS[i], ARGV[i], "EX", ttl)
  end
end
return 0`;

/**
 * Caches a batch of values read from Postgres in ONE script call (a page of 50 people was 50
 * EVALs in a pipeline), each only if its version is unchanged. All keys go to one server: Redis
 * Cluster is not supported here (docs/deploy.md, "Redis: Sentinel or Cluster").
 */
export async function cacheIfUnchanged(
  redis: Redis,
  writes: readonly VersionedWrite[],
  ttlSeconds: number,
): Promise<void> {
  if (writes.length === 0) return;
  const keys = writes.flatMap((write) => [write.key, write.versionKey]);
  const args = writes.flatMap((write) => [write.value, write.version]);
  await redis.eval(SET_EACH_IF_VERSION, keys.length, ...keys, ...args, String(ttlSeconds));
}

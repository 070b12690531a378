/**
 * Users' `ProfileCache.load` for a batch of 50 users, warm (every row in Redis), in one process:
 * this checkout's class against another checkout's (`--against DIR`, e.g. main's worktree), in
 * interleaved rounds, on the same Redis keys. What `_entities` of 50 users costs Users' loader
 * besides the request pipeline: the MGET of rows and versions, and turning 50 rows into objects.
 *
 *   pnpm exec tsx bench/profile-cache.ts --against /work/wt-main [--rounds 6] [--loads 400] [--users 50]
 *
 * The rows are written to Redis under user ids of this run's own and deleted at the end. Reported
 * per class: CPU µs per load (`process.cpuUsage`, this process: Redis's own CPU is not included),
 * median of the rounds.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { ProfileCache } from "@hv/users/src/modules/profile-cache";
import { Redis } from "ioredis";
import { argument, flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const rowKey = (id: string) => `hv:users:profile:${id}`;

/** A cached row as Users writes it (modules/profile-cache.ts): the row, dates as ISO strings. */
function cachedRow(id: string, index: number): string {
  const at = new Date().toISOString();
  return JSON.stringify({
    id,
    displayName: `Bench person ${index}`,
    bio: "Likes long walks, coffee and benchmarks that measure one thing at a time.",
    pronouns: "they/them",
    birthDate: "1994-05-17T00:00:00.000Z",
    gender: "WOMAN",
    gendersOfInterest: ["MAN", "WOMAN"],
    interests: ["hiking", "coffee", "music"],
    ageMin: 25,
    ageMax: 40,
    maxDistanceKm: 50,
    visibility: "PUBLIC",
    role: "USER",
    bannedAt: null,
    suspendedUntil: null,
    emailVerifiedAt: at,
    createdAt: at,
    updatedAt: at,
  });
}

async function main(): Promise<void> {
  const against = argument("against");
  if (!against) throw new Error("--against <another checkout> is required");
  const rounds = flag("rounds", 6);
  const loads = flag("loads", 400);
  const size = flag("users", 50);
  printHeader("profile-cache.ts");
  const other = (await import(path.resolve(against, "subgraphs/users/src/modules/profile-cache.ts"))) as {
    ProfileCache: typeof ProfileCache;
  };
  const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
  const ids = Array.from({ length: size }, () => randomUUID());
  const noSql = { query: () => Promise.reject(new Error("every row is in Redis: no SQL")) };
  try {
    for (const [index, id] of ids.entries()) await redis.set(rowKey(id), cachedRow(id, index), "EX", 600);
    const classes = [
      { name: "this checkout", cache: new ProfileCache(noSql, redis) },
      { name: against, cache: new other.ProfileCache(noSql, redis) },
    ];
    const micros: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round += 1) {
      for (const { name, cache } of round % 2 === 0 ? classes : [...classes].reverse()) {
        const before = process.cpuUsage();
        for (let i = 0; i < loads; i += 1) {
          const rows = await cache.load(ids);
          if (rows.length !== size || rows.some((row) => row === null))
            throw new Error(`${name}: wrong rows`);
        }
        const used = process.cpuUsage(before);
        (micros[name] ??= []).push((used.user + used.system) / loads);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(
      `${rounds} interleaved rounds of ${loads} loads of ${size} users; load average ${loadAverage()}:`,
    );
    for (const [name, values] of Object.entries(micros)) {
      console.log(
        `  ${name}: ${median(values).toFixed(0)} CPU-µs per load (rounds: ${values.map((v) => v.toFixed(0)).join(", ")})`,
      );
    }
  } finally {
    await redis.del(...ids.map(rowKey));
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

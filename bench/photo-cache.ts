/**
 * Media's `PhotoCache.load` for a page of 50 owners, warm (every list in Redis), in one process:
 * this checkout's class against another checkout's (`--against DIR`, e.g. main's worktree), in
 * interleaved rounds, on the same Redis keys. What `User.photos` costs Media's resolvers on a
 * nearby page besides the request pipeline: the MGET, and turning 50 lists into rows.
 *
 *   pnpm exec tsx bench/photo-cache.ts --against /work/wt-main [--rounds 6] [--loads 400] [--photos 3]
 *
 * The lists are the photo rows the query bench seeds (two variants each), written to Redis under
 * owner ids of this run's own and deleted at the end. Reported per class: CPU µs per load
 * (`process.cpuUsage`, this process: Redis's own CPU is not included), median of the rounds.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { createLogger } from "@hv/kit";
import { PhotoCache, photoListKey } from "@hv/media/src/modules/photo-cache";
import { Redis } from "ioredis";
import { seededVariants } from "../test/e2e/caching/caching-support";
import { argument, flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const OWNERS = 50;

/** A cached list as Media writes it (modules/photo-cache.ts): the rows, dates as ISO strings. */
function cachedList(ownerId: string, photos: number): string {
  const at = new Date().toISOString();
  return JSON.stringify(
    Array.from({ length: photos }, (_, position) => {
      const id = randomUUID();
      return {
        id,
        ownerId,
        kind: "IMAGE",
        status: "READY",
        purpose: "PROFILE_PHOTO",
        position,
        width: 640,
        height: 800,
        contentType: null,
        byteSize: null,
        sourceKey: null,
        variants: seededVariants(ownerId, id),
        failureReason: null,
        durationMs: null,
        blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        uploadExpiresAt: null,
        uploadedAt: null,
        processedAt: at,
        createdAt: at,
        updatedAt: at,
      };
    }),
  );
}

async function main(): Promise<void> {
  const against = argument("against");
  if (!against) throw new Error("--against <another checkout> is required");
  const rounds = flag("rounds", 6);
  const loads = flag("loads", 400);
  const photos = flag("photos", 3);
  printHeader("photo-cache.ts");
  const other = (await import(path.resolve(against, "subgraphs/media/src/modules/photo-cache.ts"))) as {
    PhotoCache: typeof PhotoCache;
  };
  const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
  const owners = Array.from({ length: OWNERS }, () => randomUUID());
  const noSql = { query: () => Promise.reject(new Error("every list is in Redis: no SQL")) };
  const logger = createLogger({ service: "bench", level: "warn" });
  try {
    for (const owner of owners) await redis.set(photoListKey(owner), cachedList(owner, photos), "EX", 600);
    const classes = [
      { name: "this checkout", cache: new PhotoCache(noSql, redis, logger) },
      { name: against, cache: new other.PhotoCache(noSql, redis, logger) },
    ];
    const micros: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round += 1) {
      for (const { name, cache } of round % 2 === 0 ? classes : [...classes].reverse()) {
        const before = process.cpuUsage();
        for (let i = 0; i < loads; i += 1) {
          const lists = await cache.load(owners);
          if (lists.length !== OWNERS || lists[0]!.length !== photos) throw new Error(`${name}: wrong lists`);
        }
        const used = process.cpuUsage(before);
        (micros[name] ??= []).push((used.user + used.system) / loads);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(
      `${rounds} interleaved rounds of ${loads} loads of ${OWNERS} owners x ${photos} photos; load average ${loadAverage()}:`,
    );
    for (const [name, values] of Object.entries(micros)) {
      console.log(
        `  ${name}: ${median(values).toFixed(0)} CPU-µs per load (rounds: ${values.map((v) => v.toFixed(0)).join(", ")})`,
      );
    }
  } finally {
    await redis.del(...owners.map(photoListKey));
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

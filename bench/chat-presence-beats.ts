/**
 * What Chat's presence beat costs (the spread timer's slice: `--people` users kept online in one
 * Redis round trip), the two ways interleaved in this process: the keys made in this process and
 * sent (`keys`, before round 14) against the ids sent and the keys made by the script (`ids`).
 *
 *   pnpm exec tsx bench/chat-presence-beats.ts [--people 500] [--beats 200] [--rounds 4]
 *
 * Reported per way and round: this process's CPU µs per beat (process.cpuUsage: what Chat pays),
 * Redis's (INFO cpu) and the bytes written per beat. The keys are this run's, deleted at the end.
 */
import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { beatAll } from "@hv/chat/src/modules/presence";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const SEEN_TTL_SECONDS = 30 * 24 * 3600;
const KEYS_LUA = `for i = 1, #KEYS, 2 do
  redis.call("SET", KEYS[i], "1", "EX", ARGV[1])
  redis.call("SET", KEYS[i + 1], ARGV[2], "EX", ARGV[3])
end
return #KEYS / 2`;

/** The beat before round 14: two keys per person built here, one EVAL. */
async function beatWithKeys(redis: Redis, prefix: string, ttl: number, ids: readonly string[]) {
  const keys = ids.flatMap((id) => [`${prefix}:chat:online:${id}`, `${prefix}:chat:seen:${id}`]);
  await redis.eval(KEYS_LUA, keys.length, ...keys, String(ttl), String(Date.now()), String(SEEN_TTL_SECONDS));
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (read("used_cpu_sys") + read("used_cpu_user")) * 1000;
}

async function main(): Promise<void> {
  const people = flag("people", 500);
  const beats = flag("beats", 200);
  const rounds = flag("rounds", 4);
  printHeader("chat-presence-beats.ts");
  const redis = new Redis(REDIS_URL);
  const prefix = `hv-bench-presence-${randomUUID()}`;
  const ids = Array.from({ length: people }, () => randomUUID());
  const bytesWritten = () =>
    (redis as unknown as { stream?: { bytesWritten: number } }).stream?.bytesWritten ?? NaN;
  const ways = {
    keys: () => beatWithKeys(redis, prefix, 60, ids),
    ids: () => beatAll(redis, prefix, 60, ids),
  };
  for (const way of Object.values(ways)) for (let i = 0; i < 20; i += 1) await way();
  for (let round = 1; round <= rounds; round += 1) {
    for (const [name, way] of Object.entries(ways)) {
      const redisBefore = await redisCpuMs(redis);
      const written = bytesWritten();
      const before = process.cpuUsage();
      for (let i = 0; i < beats; i += 1) await way();
      const spent = process.cpuUsage(before);
      const bytes = bytesWritten() - written;
      const redisSpent = (await redisCpuMs(redis)) - redisBefore;
      console.log(
        `round ${round} ${name}: ${((spent.user + spent.system) / beats).toFixed(0)} CPU-µs per beat of ${people} here, Redis ${((redisSpent * 1000) / beats).toFixed(0)} µs, ${(bytes / beats / 1024).toFixed(1)} KiB written; load average ${loadAverage()}`,
      );
    }
  }
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

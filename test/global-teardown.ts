import { Redis } from "ioredis";
import { SCHEMAS, databaseUrlEnvVar, dropDatabase } from "@hv/prisma";

/** Removes this run's event queues (keys under its EVENTS_PREFIX). */
async function dropEventQueues(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export default async function globalTeardown(): Promise<void> {
  if (!process.env.HV_TEST_RUN_ID) return;
  if (process.env.EVENTS_PREFIX?.startsWith("hvtest_")) await dropEventQueues(process.env.EVENTS_PREFIX);
  await Promise.all(
    SCHEMAS.map(async (name) => {
      const url = process.env[databaseUrlEnvVar(name)];
      if (url?.includes(`hv_test_${process.env.HV_TEST_RUN_ID}_`)) await dropDatabase(url);
    }),
  );
  delete process.env.HV_TEST_RUN_ID;
}

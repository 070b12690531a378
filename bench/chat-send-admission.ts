/**
 * A send's Redis checks in this process, CPU per send: the one script (SendAdmission) against the
 * three calls it replaced (the two rate-limiter-flexible budgets and the spam MULTI, in parallel).
 *
 *   pnpm exec tsx bench/chat-send-admission.ts [--sends 3000] [--rounds 4] [--concurrency 8]
 *
 * Rounds alternate old and new on the same Redis (REDIS_URL), each with `concurrency` loops of
 * sends from distinct people (an old account, so only the budgets and the repeated-text set count;
 * each text is new, so no signal fires). Reported per round: this process's CPU µs per send
 * (process.cpuUsage: the client side, what Chat pays) and the send's Redis round trips.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createRateLimiter, createRedis, type Viewer } from "@hv/kit";
import { loadChatConfig } from "@hv/chat/src/config";
import type { ChatServices } from "@hv/chat/src/modules/context";
import { SendAdmission } from "@hv/chat/src/modules/send-admission";
import { textFingerprint } from "@hv/chat/src/modules/spam-signals";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

async function main(): Promise<void> {
  const sends = flag("sends", 3000);
  const rounds = flag("rounds", 4);
  const concurrency = flag("concurrency", 8);
  printHeader("chat-send-admission.ts");
  const config = loadChatConfig(process.env);
  const logger = { warn: () => undefined, info: () => undefined, error: () => undefined } as never;
  const redis = createRedis(config.redis, logger);
  const budgets = {
    burst: { name: "bench-send-burst", points: 1_000_000, durationSeconds: 10 },
    sustained: { name: "bench-send-sustained", points: 1_000_000, durationSeconds: 3600 },
  };
  const admission = new SendAdmission(redis, budgets);
  const services = { config, redis, sendAdmission: admission } as unknown as ChatServices;
  const burst = createRateLimiter(redis, budgets.burst);
  const sustained = createRateLimiter(redis, budgets.sustained);
  const conversationId = randomUUID();

  /** The calls before SendAdmission: both budgets and the spam MULTI, in parallel. */
  const threeCalls = async (viewer: Viewer, text: string) => {
    const textKey = `hv:chat:spam:text:${viewer.userId}:${textFingerprint(text)}`;
    const multi = redis.multi().sadd(textKey, conversationId).expire(textKey, 3600, "NX").scard(textKey);
    await Promise.all([burst.consume(viewer.userId), sustained.consume(viewer.userId), multi.exec()]);
  };
  const oneScript = async (viewer: Viewer, text: string) => {
    await admission.admit(services, viewer, conversationId, text);
  };

  const run = async (label: string, send: (viewer: Viewer, text: string) => Promise<void>) => {
    const viewers = Array.from({ length: concurrency }, () => ({
      userId: randomUUID(),
      sessionId: randomUUID(),
      role: "USER" as const,
    }));
    let next = 0;
    const started = performance.now();
    const cpu = process.cpuUsage();
    await Promise.all(
      viewers.map(async (viewer) => {
        while (next < sends) {
          next += 1;
          await send(viewer, `message ${next} ${randomUUID()}`);
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${label.padEnd(12)} ${sends} sends in ${seconds.toFixed(1)} s: ${((used.user + used.system) / sends).toFixed(1)} CPU-µs per send; load average ${loadAverage()}`,
    );
    for (const viewer of viewers) {
      const texts = await redis.keys(`hv:chat:spam:text:${viewer.userId}:*`);
      await redis.del(
        `hv:rl:${budgets.burst.name}:${viewer.userId}`,
        `hv:rl:${budgets.sustained.name}:${viewer.userId}`,
        ...texts,
      );
    }
  };

  await run("warm-up", oneScript);
  await run("warm-up", threeCalls);
  console.log("round trips per send: three calls 3 (2 EVALSHA + MULTI/EXEC), one script 1 (EVALSHA)");
  for (let round = 1; round <= rounds; round += 1) {
    await run(`three calls`, threeCalls);
    await run(`one script`, oneScript);
  }
  await redis.quit();
}

void main();

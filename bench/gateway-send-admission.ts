/**
 * The gateway's Redis work for one send (an HTTP `sendMessage` of a signed-in user), in this
 * process, CPU per send: the admission script then the sendMessage budget (two round trips, as
 * before round 9's send-trip9) against the admission script spending the budget too (one).
 *
 *   pnpm exec tsx bench/gateway-send-admission.ts [--sends 5000] [--rounds 4] [--concurrency 16]
 *
 * Rounds alternate the two on the same Redis (REDIS_URL), each with `concurrency` loops of sends
 * from distinct users and addresses. Reported per round: this process's CPU µs per send
 * (process.cpuUsage: the client side, what the gateway pays) and the Redis commands it sent.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createRedis, loadGatewayConfig, type Viewer } from "@hv/kit";
import { EdgeAdmission } from "@hv/gateway/src/protection/admission";
import { EdgeRateLimits, type SensitivePoints } from "@hv/gateway/src/protection/rate-limits";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

async function main(): Promise<void> {
  const sends = flag("sends", 5000);
  const rounds = flag("rounds", 4);
  const concurrency = flag("concurrency", 16);
  printHeader("gateway-send-admission.ts");
  const config = loadGatewayConfig(process.env);
  const logger = { warn: () => undefined, info: () => undefined, error: () => undefined } as never;
  const redis = createRedis(config.redis, logger);
  const loose = { points: 1_000_000_000, durationSeconds: 60 };
  const prefix = `hvbench:send-admission:${randomUUID()}`;
  const budgets = new EdgeRateLimits(
    redis,
    {
      ip: loose,
      user: loose,
      logIn: loose,
      signUp: loose,
      swipe: loose,
      sendMessage: loose,
      createUpload: loose,
      subscribe: loose,
    },
    prefix,
  );
  const { address, user } = budgets.admissionBudgets();
  const admission = new EdgeAdmission(redis, address, user);
  const points: SensitivePoints = [["sendMessage", 1]];
  let commands = 0;
  const countingSend = redis.sendCommand.bind(redis);
  redis.sendCommand = (command) => {
    commands += 1;
    return countingSend(command);
  };

  type Caller = { viewer: Viewer; issuedAt: number };
  const twoTrips = async (ip: string, caller: Caller) => {
    const verdict = await admission.admit(ip, caller);
    if (verdict.kind !== "admitted") throw new Error(`not admitted: ${verdict.kind}`);
    await budgets.consumeSensitive(budgets.sensitiveSpends(points, caller.viewer, ip));
  };
  const oneTrip = async (ip: string, caller: Caller) => {
    const verdict = await admission.admit(ip, caller, budgets.sensitiveSpends(points, caller.viewer, ip));
    if (verdict.kind !== "admitted" || verdict.operationOver) throw new Error("not admitted");
  };

  const run = async (label: string, send: (ip: string, caller: Caller) => Promise<void>) => {
    const callers = Array.from({ length: concurrency }, (_, i) => ({
      ip: `198.51.100.${1 + i}`,
      caller: {
        viewer: { userId: randomUUID(), sessionId: randomUUID(), role: "USER" as const },
        issuedAt: Math.floor(Date.now() / 1000),
      },
    }));
    let next = 0;
    const before = commands;
    const started = performance.now();
    const cpu = process.cpuUsage();
    await Promise.all(
      callers.map(async ({ ip, caller }) => {
        while (next < sends) {
          next += 1;
          await send(ip, caller);
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${label.padEnd(10)} ${sends} sends in ${seconds.toFixed(1)} s: ${((used.user + used.system) / sends).toFixed(1)} CPU-µs per send, ${((commands - before) / sends).toFixed(2)} Redis commands per send; load average ${loadAverage()}`,
    );
  };

  await run("warm-up", oneTrip);
  await run("warm-up", twoTrips);
  for (let round = 1; round <= rounds; round += 1) {
    await run("two trips", twoTrips);
    await run("one trip", oneTrip);
  }
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

void main();

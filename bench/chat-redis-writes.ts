/**
 * What Chat's per-message Redis calls cost its process, each way interleaved in this process: a
 * script call (the fan-out publish's, to two channels) auto-pipelined (the bus before round 8),
 * written at once (the admission before) or with the socket held to the turn's end (both after),
 * and the push jobs (the relay's: one BullMQ `addBulk` of the turn's jobs before, an `add` per job
 * with the connection held to the turn's end after).
 *
 *   pnpm exec tsx bench/chat-redis-writes.ts [--ops 3000] [--rounds 4] [--per-turn 1,4]
 *
 * `per-turn`: how many calls start in one event-loop turn (concurrent sends), then all are awaited.
 * The publishes and the script go to channels and keys of this run (a script publishing to two
 * channels nobody listens on); the jobs go to a queue of this run, removed at the end. Reported per
 * way and round: this process's CPU µs per call (process.cpuUsage: the client side, what Chat pays)
 * and write system calls per call (/proc/self/io `syscw`).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Queue } from "bullmq";
import Redis from "ioredis";
import { holdRedisWrites, turnWrites } from "@hv/kit";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PUBLISH_ALL_LUA = `for i = 2, #ARGV do redis.call('publish', ARGV[i], ARGV[1]) end
return #ARGV - 1`;
type Publisher = Redis & { hvBenchPublishAll(body: string, ...channels: string[]): Promise<number> };

const writeCalls = () => Number(/syscw: (\d+)/.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? NaN);

function perTurnList(): number[] {
  const index = process.argv.indexOf("--per-turn");
  const text = index < 0 ? "1,4" : (process.argv[index + 1] ?? "1,4");
  return text.split(",").map(Number);
}

async function main(): Promise<void> {
  const ops = flag("ops", 3000);
  const rounds = flag("rounds", 4);
  printHeader("chat-redis-writes.ts");
  const run = randomBytes(4).toString("hex");
  const publisher = (options: { enableAutoPipelining: boolean }) => {
    const client = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...options });
    client.defineCommand("hvBenchPublishAll", { numberOfKeys: 0, lua: PUBLISH_ALL_LUA });
    return client as Publisher;
  };
  const autoPipelined = publisher({ enableAutoPipelining: true });
  const plain = publisher({ enableAutoPipelining: false });
  const writes = turnWrites();
  const jobs = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(`bench-writes-${run}`, { connection: jobs, prefix: `hvbench${run}` });
  const jobOptions = {
    attempts: 15,
    backoff: { type: "exponential", delay: 1_000, jitter: 0.2 },
    removeOnComplete: { age: 60 },
    removeOnFail: { age: 60 },
  };
  const body = JSON.stringify({ kind: "MESSAGE_ADDED", conversationId: randomUUID(), text: "x".repeat(80) });
  const channels = [`hvbench${run}:a`, `hvbench${run}:b`];
  const job = () => ({
    name: "message.created",
    data: {
      type: "message.created",
      payload: { messageId: randomUUID() },
      occurredAt: new Date().toISOString(),
    },
    opts: { ...jobOptions, jobId: randomUUID() },
  });

  // The relay before: the jobs of a turn in one addBulk.
  let batch: Array<ReturnType<typeof job>> = [];
  let flushing: Promise<unknown> | undefined;
  const addToTurnBulk = () => {
    batch.push(job());
    flushing ??= new Promise((resolve) => process.nextTick(resolve)).then(() => {
      const jobsNow = batch;
      batch = [];
      flushing = undefined;
      return queue.addBulk(jobsNow);
    });
    return flushing;
  };
  const ways: Array<[string, () => Promise<unknown>]> = [
    ["job, addBulk of the turn's jobs (relay, before)", addToTurnBulk],
    [
      "job, add, held to turn end (relay, after)",
      () => {
        holdRedisWrites(writes, jobs);
        const one = job();
        return queue.add(one.name, one.data, one.opts);
      },
    ],
    ["script, auto-pipelined (bus, before)", () => autoPipelined.hvBenchPublishAll(body, ...channels)],
    [
      "script, held to turn end (bus+admit, after)",
      () => {
        holdRedisWrites(writes, plain);
        return plain.hvBenchPublishAll(body, ...channels);
      },
    ],
    ["script, written at once (admit, before)", () => plain.hvBenchPublishAll(body, ...channels)],
  ];

  const measure = async (label: string, call: () => Promise<unknown>, perTurn: number) => {
    const cpu = process.cpuUsage();
    const written = writeCalls();
    for (let done = 0; done < ops; done += perTurn) {
      const calls: Array<Promise<unknown>> = [];
      for (let i = 0; i < perTurn; i += 1) calls.push(call());
      await Promise.all(calls);
    }
    const used = process.cpuUsage(cpu);
    const perCall = (used.user + used.system) / ops;
    const writesPerCall = (writeCalls() - written) / ops;
    return `${label.padEnd(48)} ${perCall.toFixed(1).padStart(7)} CPU-µs, ${writesPerCall.toFixed(2)} writes per call`;
  };

  const ready = (client: Redis) => new Promise((resolve) => client.once("ready", resolve));
  await Promise.all([ready(autoPipelined), ready(plain), jobs.ping()]);
  for (const [label, call] of ways) await measure(label, call, 1); // warm-up
  for (const perTurn of perTurnList()) {
    console.log(`--- ${perTurn} call(s) per turn, ${ops} calls per way and round`);
    for (let round = 1; round <= rounds; round += 1) {
      // The order rotates each round, so no way always runs first or last.
      const order = ways.map((_, i) => ways[(i + round) % ways.length]!);
      for (const [label, call] of order) {
        console.log(`round ${round} ${await measure(label, call, perTurn)}; load average ${loadAverage()}`);
      }
    }
  }
  await queue.obliterate({ force: true });
  await queue.close();
  await Promise.all([autoPipelined.quit(), plain.quit(), jobs.quit()]);
}

void main();

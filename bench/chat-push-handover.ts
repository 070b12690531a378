/**
 * What Chat's push hand-over (the outbox relay's `publishCommitted` of each send's
 * `message.created`) costs, per send, in this process and in Redis: the relay of this checkout
 * with its hand-over window (`--windows`, ms; CHAT_PUSH_BATCH_MS) and, with `--baseline <dir>`,
 * the relay of another checkout (e.g. a worktree of main) with the same windows, interleaved in
 * this process.
 *
 *   pnpm exec tsx bench/chat-push-handover.ts [--rate 300] [--seconds 5] [--rounds 3] [--windows 0,10,20] [--baseline ../wt-main]
 *
 * Sends arrive open-loop at `rate` a second, one per event-loop turn (a timer each), each handing
 * one event (two recipients) to the relay, as `storeMessage` does. Redis is a private
 * `redis-server` of this run, so its CPU (/proc) is this bench's alone. The outbox store is a stand-in
 * (nothing to claim; marks counted, not written): marking is one statement per 100 ms either way.
 * Reported per way and round: this process's CPU-µs per send, Redis's CPU-µs per send, Redis
 * commands and write system calls per send, jobs per send.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import Redis from "ioredis";
import {
  createLogger,
  startOutboxRelay,
  type OutboxRecord,
  type OutboxRelay,
  type OutboxRelayOptions,
  type OutboxStore,
} from "@hv/kit";
import { argument, flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

type StartRelay = (options: OutboxRelayOptions) => OutboxRelay;

const TICKS = 100; // /proc's clock ticks per second
const cpuMsOf = (pid: number | "self") => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
};
const writeCalls = () => Number(/syscw: (\d+)/.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? NaN);

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function record(): OutboxRecord {
  const now = new Date();
  const member = () => ({ userId: randomUUID(), unreadCount: 3, totalUnreadCount: 7 });
  return {
    id: randomUUID(),
    type: "message.created",
    createdAt: now,
    payload: {
      messageId: randomUUID(),
      conversationId: randomUUID(),
      conversationKind: "DIRECT",
      senderId: randomUUID(),
      seq: 42,
      sentAt: now.toISOString(),
      preview: "a message of some eighty characters, about what people write to each other here",
      recipients: [member()],
    },
  };
}

async function main(): Promise<void> {
  const rate = flag("rate", 300);
  const seconds = flag("seconds", 5);
  const rounds = flag("rounds", 3);
  const windows = (argument("windows") ?? "0,10,20").split(",").map(Number);
  const baselineDir = argument("baseline");
  printHeader("chat-push-handover.ts");

  const dir = mkdtempSync(path.join(tmpdir(), "hv-bench-redis-"));
  const port = await freePort();
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    {
      stdio: "ignore",
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { retryStrategy: () => 50 });
  await probe.ping();

  // Commands Redis processed, from its own counters (nothing else talks to it).
  const counters = async () => {
    const text = `${await probe.info("stats")}\n${await probe.info("commandstats")}`;
    const count = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
    return {
      total: count(/total_commands_processed:(\d+)/),
      evalsha: count(/cmdstat_evalsha:calls=(\d+)/),
    };
  };

  const marks = { statements: 0, ids: 0 };
  const store: OutboxStore = {
    claimUnpublished: async () => [],
    markPublished: async () => undefined,
    markPublishedUnclaimed: async (ids) => {
      marks.statements += 1;
      marks.ids += ids.length;
    },
  };
  const logger = createLogger({ service: "bench", level: "warn" });
  const prefix = `hvbench${randomUUID().slice(0, 8)}`;
  // The floor: the same sends handing over nothing (this bench's own timers and records).
  const nothing: StartRelay = () => ({
    flush: async () => ({ published: 0 }),
    publishCommitted: () => undefined,
    markCommitted: () => undefined,
    stop: async () => undefined,
  });
  const ways: Array<[string, StartRelay, Partial<OutboxRelayOptions>]> = [
    ["no hand-over (the bench's floor)", nothing, {}],
    ...windows.map((ms): [string, StartRelay, Partial<OutboxRelayOptions>] => [
      `this checkout, window ${ms} ms`,
      startOutboxRelay,
      { handOverWindowMs: ms },
    ]),
  ];
  if (baselineDir) {
    const baseline = (await import(path.resolve(baselineDir, "kit/src/events/relay.ts"))) as {
      startOutboxRelay: StartRelay;
    };
    ways.unshift(
      ...windows.map((ms): [string, StartRelay, Partial<OutboxRelayOptions>] => [
        `baseline (${baselineDir}), window ${ms} ms`,
        baseline.startOutboxRelay,
        { handOverWindowMs: ms },
      ]),
    );
  }

  const queue = new Queue("events.push", { connection: probe, prefix });
  const measure = async (
    label: string,
    start: StartRelay,
    extra: Partial<OutboxRelayOptions>,
    sends: number,
  ) => {
    const relay = start({ store, connection: url, logger, prefix, pollIntervalMs: 600_000, ...extra });
    await relay.flush(); // connected
    const jobsBefore = await queue.count();
    const commandsBefore = await counters();
    const cpu = process.cpuUsage();
    const redisCpu = cpuMsOf(server.pid!);
    const written = writeCalls();
    const intervalMs = 1000 / rate;
    const started = performance.now();
    for (let i = 0; i < sends; i += 1) {
      const due = started + i * intervalMs;
      const wait = due - performance.now();
      await new Promise((resolve) => (wait > 1 ? setTimeout(resolve, wait) : setImmediate(resolve)));
      relay.publishCommitted([record()]);
    }
    await relay.stop(); // the last window's jobs, and the marks
    const used = process.cpuUsage(cpu);
    const redisUsed = cpuMsOf(server.pid!) - redisCpu;
    const writes = writeCalls() - written;
    const commandsAfter = await counters();
    const jobs = (await queue.count()) - jobsBefore;
    const total = commandsAfter.total - commandsBefore.total - 2; // the two INFOs of the first look
    const per = (n: number) => (n / sends).toFixed(2);
    return `${label.padEnd(44)} ${((used.user + used.system) / sends).toFixed(1).padStart(6)} CPU-µs here, ${((redisUsed * 1000) / sends).toFixed(1).padStart(6)} CPU-µs Redis, ${per(total)} commands (evalsha ${per(commandsAfter.evalsha - commandsBefore.evalsha)}), ${per(writes)} writes, ${per(jobs)} jobs per send; ${(performance.now() - started).toFixed(0)} ms`;
  };

  const sends = rate * seconds;
  for (const [label, start, extra] of ways) await measure(label, start, extra, Math.min(sends, 300)); // warm-up
  for (let round = 1; round <= rounds; round += 1) {
    const order = ways.map((_, i) => ways[(i + round) % ways.length]!);
    for (const [label, start, extra] of order) {
      console.log(
        `round ${round} ${await measure(label, start, extra, sends)}; load average ${loadAverage()}`,
      );
    }
  }
  console.log(`marks: ${marks.statements} statements for ${marks.ids} events`);
  await queue.close();
  probe.disconnect();
  server.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

void main();

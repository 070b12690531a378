import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Queue, type Worker } from "bullmq";
import { capturingLogger } from "../../test/support/log-capture";
import { freePort } from "../../test/support/ports";
import { waitFor } from "../../test/support/wait";
import { eventQueueName, startEventConsumer, type EventConsumerHandle, type EventMeta } from "../src/events";

/**
 * The event consumer against a private redis-server that is killed and started again on the same
 * port (no persistence: the restarted server is empty, as after a failover to a fresh node).
 */
describe("event consumer: Redis restarts", () => {
  let port: number;
  let redis: ChildProcess | undefined;
  const started: EventConsumerHandle[] = [];
  const queues: Queue[] = [];

  const startRedis = async () => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
      { stdio: "ignore" },
    );
    redis = child;
    await waitFor("redis-server to listen", async () => {
      const probe = new Queue(`probe-${randomUUID()}`, {
        connection: {
          host: "127.0.0.1",
          port,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        },
      });
      probe.on("error", () => undefined);
      try {
        await probe.getWaitingCount();
        return true;
      } catch {
        return false;
      } finally {
        await probe.disconnect().catch(() => undefined);
      }
    });
  };
  const running = () => redis !== undefined && redis.exitCode === null && redis.signalCode === null;
  const killRedis = async () => {
    const child = redis;
    if (!child || !running()) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  };

  beforeEach(async () => {
    port = await freePort();
    await startRedis();
  });
  afterEach(async () => {
    if (!running()) await startRedis(); // so that the test's own queues can close cleanly
    for (const handle of started.splice(0)) await handle.stop();
    for (const queue of queues.splice(0)) await queue.close();
    await killRedis();
  });

  function consume(
    deliveries: string[],
    options: {
      watchdogIntervalMs?: number;
      closeTimeoutMs?: number;
      onWorker?: (worker: Worker) => void;
    } = {},
  ) {
    const log = capturingLogger("consumer");
    const prefix = `hvtest${randomUUID().slice(0, 8)}`;
    const handler = async (_payload: unknown, meta: EventMeta) => {
      deliveries.push(meta.eventId);
    };
    const handle = startEventConsumer({
      consumer: "chat",
      connection: `redis://127.0.0.1:${port}`,
      prefix,
      logger: log.logger,
      handlers: {
        "user.deleted": handler,
        "user.blocked": handler,
        "user.unblocked": handler,
        "user.banned": handler,
        "user.profile_changed": handler,
        "match.created": handler,
        "match.ended": handler,
        "moderation.action_taken": handler,
      },
      ...options,
    });
    started.push(handle);
    const queue = new Queue(eventQueueName("chat"), { connection: { host: "127.0.0.1", port }, prefix });
    queue.on("error", () => undefined);
    queues.push(queue);
    const publish = async () => {
      const eventId = randomUUID();
      await queue.add(
        "user.deleted",
        { type: "user.deleted", payload: { userId: randomUUID() }, occurredAt: new Date().toISOString() },
        { jobId: eventId },
      );
      return eventId;
    };
    return { handle, publish, log: log.lines };
  }

  it("should replace a worker that takes no events although some wait", async () => {
    const deliveries: string[] = [];
    const workers: Worker[] = [];
    const { publish, log } = consume(deliveries, {
      watchdogIntervalMs: 300,
      onWorker: (worker) => workers.push(worker),
    });
    const first = await publish();
    await waitFor("the first event", () => deliveries.includes(first));
    expect(workers).toHaveLength(1);
    // Stuck as in bullmq #4585: running, connected, fetching nothing.
    await workers[0]!.pause(true);
    // The fetch in flight when it paused may still take one: publish two, one needs a new worker.
    const second = await publish();
    const also = await publish();
    await waitFor(
      "the events, through a new worker",
      () => deliveries.includes(second) && deliveries.includes(also),
      30_000,
    );
    expect(workers).toHaveLength(2);
    expect(log.some((line) => line.msg.startsWith("event consumer: worker takes no events"))).toBe(true);
    await waitFor(
      "the stuck worker closed",
      () => workers[0]!.closing !== undefined && workers[0]!.closing !== null,
    );
    // No second replacement while the new one works.
    const third = await publish();
    await waitFor("the next event", () => deliveries.includes(third));
    expect(workers).toHaveLength(2);
  });

  it("should take events again after Redis was down longer than the worker's blocking wait", async () => {
    const deliveries: string[] = [];
    const { publish } = consume(deliveries, { watchdogIntervalMs: 1_000 });
    const first = await publish();
    await waitFor("the first event", () => deliveries.includes(first));

    await killRedis();
    await pause(8_000); // past BullMQ's blocking wait (drainDelay 5 s + 1 s): the case of bullmq #4585
    await startRedis();

    const second = await publish();
    await waitFor("an event published after the restart", () => deliveries.includes(second), 60_000);
    const third = await publish();
    await waitFor("the next one", () => deliveries.includes(third), 60_000);
  }, 120_000);

  it("should stop while Redis is unreachable (bullmq #4656), and stop with Redis back", async () => {
    const deliveries: string[] = [];
    const { handle, publish } = consume(deliveries, { closeTimeoutMs: 1_000 });
    const first = await publish();
    await waitFor("the first event", () => deliveries.includes(first));
    await killRedis();
    await pause(500);
    let stopped = false;
    const stopping = handle.stop().then(() => {
      stopped = true;
    });
    await waitFor("stop() to return with Redis down", () => stopped, 30_000);
    await stopping;
  }, 60_000);
});

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

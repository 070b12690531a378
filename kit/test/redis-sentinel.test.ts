import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import type Redis from "ioredis";
import { capturingLogger } from "../../test/support/log-capture";
import { startRedisServer, waitFor, type RedisServer } from "../../test/support/redis-server";
import { loadRedisTarget, type RedisTarget } from "../src/config";
import {
  startEventConsumer,
  startOutboxRelay,
  SUBSCRIPTIONS,
  type EventConsumerHandle,
  type EventHandlers,
  type OutboxRecord,
  type OutboxRelay,
  type OutboxStore,
} from "../src/events";
import { closeRedis, createRedis, redisOptions } from "../src/redis";

/**
 * Native Sentinel discovery against real processes: a private primary and replica and two
 * sentinels watching them. The configuration points at the sentinels only (REDIS_SENTINELS,
 * REDIS_SENTINEL_NAME); a client from createRedis, the event relay and consumer, and a plain BullMQ
 * queue and worker on redisOptions() work, and keep working on the new primary after a forced
 * failover (SENTINEL FAILOVER) and after the primary is killed.
 */
const GROUP = "hvtest";
const FAILOVER_TIMEOUT_MS = 40_000;

describe("Redis through Sentinel", () => {
  let nodes: RedisServer[] = [];
  let sentinels: RedisServer[] = [];
  let target: RedisTarget;
  const log = capturingLogger("sentinel-test");
  const prefix = `hvtest${randomUUID().slice(0, 8)}`;

  // Everything under test, made from `target` alone.
  let redis: Redis;
  let relay: OutboxRelay;
  let consumer: EventConsumerHandle;
  let queue: Queue;
  let worker: Worker;
  const outbox: OutboxRecord[] = [];
  const consumed = new Set<string>();
  const processed = new Set<string>();

  const markPublished = async (ids: readonly string[]) => {
    for (const id of ids) {
      const index = outbox.findIndex((record) => record.id === id);
      if (index >= 0) outbox.splice(index, 1);
    }
  };
  const store: OutboxStore = {
    claimUnpublished: async (limit) => outbox.slice(0, limit),
    markPublished,
    markPublishedUnclaimed: markPublished,
  };

  /** The port the sentinels give for the group's primary, once they all agree. */
  const primaryPort = async (): Promise<number | undefined> => {
    const answers = await Promise.all(
      sentinels.map(
        (sentinel) =>
          sentinel.client().call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", GROUP) as Promise<
            [string, string] | null
          >,
      ),
    );
    const ports = new Set(answers.map((answer) => Number(answer?.[1])));
    return ports.size === 1 ? [...ports][0] : undefined;
  };
  const nodeOn = (port: number | undefined): RedisServer => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    return node;
  };
  const role = async (node: RedisServer): Promise<string> =>
    ((await node.client().call("ROLE")) as [string])[0];
  /** True once the replica is in sync and every sentinel lists it as a healthy replica. */
  const replicaReady = async (replica: RedisServer): Promise<boolean> => {
    const info = await replica.client().info("replication");
    if (!/master_link_status:up/.test(info)) return false;
    for (const sentinel of sentinels) {
      const replicas = (await sentinel.client().call("SENTINEL", "REPLICAS", GROUP)) as string[][];
      const fields = replicas.map((flat) =>
        Object.fromEntries(
          flat.flatMap((value, index) => (index % 2 === 0 ? [[value, flat[index + 1]]] : [])),
        ),
      );
      if (
        !fields.some(
          (entry) =>
            Number(entry.port) === replica.port &&
            entry.flags === "slave" &&
            entry["master-link-status"] === "ok",
        )
      )
        return false;
    }
    return true;
  };

  /** The client under test moves to the process the sentinels call the primary, and writes there. */
  const writeReachesPrimary = async (value: string): Promise<void> => {
    const primary = nodeOn(await primaryPort());
    const onPrimary = new RegExp(`^tcp_port:${primary.port}\\r?$`, "m");
    await waitFor(
      `the client to reach the primary on port ${primary.port}`,
      async () => onPrimary.test(await redis.info("server").catch(() => "")),
      FAILOVER_TIMEOUT_MS,
    );
    expect(await role(primary)).toBe("master");
    await redis.set("sentinel:key", value);
    expect(await primary.client().get("sentinel:key")).toBe(value);
  };
  const eventGoesThrough = async (): Promise<void> => {
    const id = randomUUID();
    outbox.push({ id, type: "user.banned", payload: { userId: randomUUID() }, createdAt: new Date() });
    // The relay fails fast while Redis is away; its poll (here: this loop) tries again.
    await waitFor(
      `event ${id} to be relayed`,
      async () => {
        await relay.flush();
        return !outbox.some((record) => record.id === id);
      },
      FAILOVER_TIMEOUT_MS,
    );
    await waitFor(`event ${id} to be consumed`, () => consumed.has(id), FAILOVER_TIMEOUT_MS);
  };
  const jobGoesThrough = async (): Promise<void> => {
    const jobId = randomUUID();
    await waitFor(
      `job ${jobId} to be added`,
      () =>
        queue.add("job", {}, { jobId }).then(
          () => true,
          () => false,
        ),
      FAILOVER_TIMEOUT_MS,
    );
    await waitFor(`job ${jobId} to be processed`, () => processed.has(jobId), FAILOVER_TIMEOUT_MS);
  };

  beforeAll(async () => {
    const primary = await startRedisServer();
    const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
    nodes = [primary, replica];
    const sentinelConfig = [
      `sentinel monitor ${GROUP} 127.0.0.1 ${primary.port} 1`,
      `sentinel down-after-milliseconds ${GROUP} 1000`,
      `sentinel failover-timeout ${GROUP} 10000`,
    ].join("\n");
    sentinels = [
      await startRedisServer({ sentinel: true, config: sentinelConfig }),
      await startRedisServer({ sentinel: true, config: sentinelConfig }),
    ];
    await waitFor("the sentinels to see the replica in sync", () => replicaReady(replica), 30_000);

    // The configuration names the sentinels and the group, nothing else.
    target = loadRedisTarget({
      REDIS_SENTINELS: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(","),
      REDIS_SENTINEL_NAME: GROUP,
    });
    redis = createRedis(target, log.logger, "sentinel-test");
    relay = startOutboxRelay({
      store,
      connection: target,
      logger: log.logger,
      prefix,
      pollIntervalMs: 60_000,
    });
    const record = async (_payload: unknown, meta: { eventId: string }) => {
      consumed.add(meta.eventId);
    };
    const handlers = Object.fromEntries(
      SUBSCRIPTIONS.discovery.map((type) => [type, record]),
    ) as unknown as EventHandlers<"discovery">;
    consumer = startEventConsumer({
      consumer: "discovery",
      connection: target,
      logger: log.logger,
      prefix,
      handlers,
      closeTimeoutMs: 2_000,
    });
    queue = new Queue(`sentinel-${randomUUID()}`, { connection: redisOptions(target), prefix });
    queue.on("error", () => undefined);
    worker = new Worker(
      queue.name,
      async (job) => {
        processed.add(job.id ?? "");
      },
      { connection: redisOptions(target), prefix },
    );
    worker.on("error", () => undefined);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([relay?.stop(), consumer?.stop(), worker?.close(true), queue?.close()]);
    if (redis) await closeRedis(redis);
    await Promise.all([...sentinels, ...nodes].map((server) => server.stop()));
  }, 30_000);

  it("should reach the primary the sentinels name: a client, the event relay and consumer, a BullMQ queue and worker", async () => {
    expect(await primaryPort()).toBe(nodes[0]?.port);
    await writeReachesPrimary("before");
    await eventGoesThrough();
    await jobGoesThrough();
  }, 60_000);

  it("should follow a forced failover (SENTINEL FAILOVER): the same clients write to the new primary and take new jobs", async () => {
    const [oldPrimary, replica] = nodes as [RedisServer, RedisServer];
    await sentinels[0]?.client().call("SENTINEL", "FAILOVER", GROUP);
    await waitFor(
      "the sentinels to name the replica as primary",
      async () => (await primaryPort()) === replica.port,
      FAILOVER_TIMEOUT_MS,
    );
    await waitFor(
      "the new primary to take writes",
      async () => (await role(replica)) === "master",
      FAILOVER_TIMEOUT_MS,
    );
    await writeReachesPrimary("after failover");
    await eventGoesThrough();
    await jobGoesThrough();
    // The old primary is turned into a replica of the new one; the next test needs it in sync.
    await waitFor(
      "the old primary to follow the new one",
      () => replicaReady(oldPrimary),
      FAILOVER_TIMEOUT_MS,
    );
  }, 90_000);

  it("should follow the primary being killed: the sentinels promote the replica and the clients go there", async () => {
    const primary = nodeOn(await primaryPort());
    const replica = nodes.find((node) => node !== primary) as RedisServer;
    await primary.stop("SIGKILL");
    await waitFor(
      "the sentinels to promote the replica",
      async () => (await primaryPort()) === replica.port,
      FAILOVER_TIMEOUT_MS,
    );
    await writeReachesPrimary("after the primary died");
    await eventGoesThrough();
    await jobGoesThrough();
    // Said once per outage, and once when restored (createRedis).
    const messages = log.lines.filter((line) => line.role === "sentinel-test").map((line) => line.msg);
    expect(messages).toContain("redis connection restored");
  }, 90_000);

  it("should leave no connection at the sentinels once everything is closed (failover detectors included)", async () => {
    /** Connections to a sentinel other than the other sentinel's (named) and the test's own. */
    const strangers = async (sentinel: RedisServer): Promise<string[]> => {
      const own = await sentinel.client().call("CLIENT", "ID");
      const list = String(await sentinel.client().call("CLIENT", "LIST"));
      return list
        .split("\n")
        .filter(
          (line) =>
            line.trim() !== "" && /(^| )name=( |$)/.test(line) && !line.startsWith(`id=${String(own)} `),
        );
    };
    for (const sentinel of sentinels) {
      await waitFor(
        `the failover detectors to subscribe at sentinel ${sentinel.port}`,
        async () => (await strangers(sentinel)).length > 0,
        10_000,
      );
    }
    await Promise.all([relay.stop(), consumer.stop(), worker.close(), queue.close()]);
    await closeRedis(redis);
    for (const sentinel of sentinels) {
      await waitFor(
        `the connections to sentinel ${sentinel.port} to end`,
        async () => (await strangers(sentinel)).length === 0,
        10_000,
      );
    }
  }, 30_000);
});

import { randomBytes, randomUUID } from "node:crypto";
import { capturingLogger } from "../support/log-capture";
import { freePort } from "../support/ports";
import { waitFor as waitForEvery } from "../support/wait";
import net from "node:net";
import { Queue } from "bullmq";
import { Pool } from "pg";
import {
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
  withDatabaseName,
} from "@hv/prisma";
import { createUsersDb, type UsersDb } from "@hv/users/src/db";
import {
  EVENT_BATCH_JOB,
  EVENT_CONSUMERS,
  eventQueueName,
  InvalidEventError,
  OUTBOX_LISTENER_NAME,
  outboxEventData,
  outboxNotifications,
  prismaOutboxStore,
  sqlOutboxStore,
  startEventConsumer,
  startOutboxRelay,
  SUBSCRIPTIONS,
  type EventBatchJobData,
  type EventConsumer,
  type EventConsumerHandle,
  type EventHandler,
  type EventHandlers,
  type EventMeta,
  type EventPayload,
  type EventType,
  type OutboxRelay,
  type OutboxRelayOptions,
  type OutboxRecord,
  type OutboxStore,
  type OutboxWakeUps,
} from "@hv/kit";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

// A database of our own, migrated with the real users migrations: the real outbox_events table.
const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
const databaseUrl = withDatabaseName(
  process.env.USERS_DATABASE_URL || defaultDatabaseUrl("users"),
  `hv_test_${runId}_events`,
);
let db: UsersDb;
let pool: Pool;

beforeAll(async () => {
  await ensureDatabase(databaseUrl);
  await migrateDeploy("users", databaseUrl);
  db = createUsersDb(databaseUrl);
  pool = new Pool({ connectionString: databaseUrl });
}, 120_000);

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
  await dropDatabase(databaseUrl);
});

/** These tests poll every 20 ms. */
const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs?: number) =>
  waitForEvery(what, condition, timeoutMs, 20);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP proxy to Redis that can be cut (connections dropped, nothing listening) and restored. */
async function redisProxy(): Promise<{
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}> {
  const upstream = new URL(REDIS_URL);
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const redis = net.connect(Number(upstream.port || 6379), upstream.hostname);
        const end = () => {
          client.destroy();
          redis.destroy();
          sockets.delete(client);
          sockets.delete(redis);
        };
        for (const socket of [client, redis]) {
          sockets.add(socket);
          socket.on("error", end);
          socket.on("close", end);
        }
        client.pipe(redis).pipe(client);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const cut = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  await listen();
  return { url: `redis://127.0.0.1:${port}`, cut, restore: listen, close: cut };
}

interface Delivery {
  eventId: string;
  type: EventType;
  payload: unknown;
  meta: EventMeta;
}

// Per test: its own BullMQ prefix, and everything started is stopped and obliterated afterwards.
let prefix: string;
let log: ReturnType<typeof capturingLogger>;
let relays: OutboxRelay[];
let consumers: EventConsumerHandle[];

beforeEach(async () => {
  prefix = `hvtest-${randomBytes(4).toString("hex")}`;
  log = capturingLogger("events-test");
  relays = [];
  consumers = [];
  await db.$executeRawUnsafe("DELETE FROM outbox_events");
});

afterEach(async () => {
  await Promise.all(relays.map((relay) => relay.stop()));
  await Promise.all(consumers.map((consumer) => consumer.stop()));
  for (const consumer of EVENT_CONSUMERS) {
    const queue = new Queue(eventQueueName(consumer), { connection: { url: REDIS_URL }, prefix });
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

/** Which outbox store the relay tests run on: every test runs on both. */
let storeKind: "prisma" | "sql" = "prisma";
const outboxStore = (): OutboxStore => (storeKind === "sql" ? sqlOutboxStore(pool) : prismaOutboxStore(db));

function relay(overrides: Partial<OutboxRelayOptions> = {}): OutboxRelay {
  const started = startOutboxRelay({
    store: outboxStore(),
    connection: REDIS_URL,
    logger: log.logger,
    pollIntervalMs: 60_000, // tests flush explicitly
    prefix,
    ...overrides,
  });
  relays.push(started);
  return started;
}

type Overrides = { [C in EventConsumer]?: Partial<EventHandlers<C>> };

/** Every consumer, recording what it receives; `overrides` replace single handlers. */
function startConsumers(overrides: Overrides = {}): Record<EventConsumer, Delivery[]> {
  const deliveries = { discovery: [], chat: [], media: [], push: [], users: [] } as Record<
    EventConsumer,
    Delivery[]
  >;
  for (const consumer of EVENT_CONSUMERS) {
    const record: EventHandler<EventType> = async (payload, meta) => {
      deliveries[consumer].push({ eventId: meta.eventId, type: meta.type, payload, meta });
    };
    const handlers = Object.fromEntries(SUBSCRIPTIONS[consumer].map((type) => [type, record]));
    Object.assign(handlers, overrides[consumer]);
    consumers.push(
      startEventConsumer({
        consumer,
        connection: REDIS_URL,
        logger: log.logger,
        handlers: handlers as EventHandlers<typeof consumer>,
        prefix,
      }),
    );
  }
  return deliveries;
}

async function jobCounts(consumer: EventConsumer) {
  const queue = new Queue(eventQueueName(consumer), { connection: { url: REDIS_URL }, prefix });
  try {
    return await queue.getJobCounts("waiting", "active", "delayed", "completed", "failed");
  } finally {
    await queue.close();
  }
}

async function jobOf(consumer: EventConsumer, eventId: string) {
  const queue = new Queue(eventQueueName(consumer), { connection: { url: REDIS_URL }, prefix });
  try {
    const job = await queue.getJob(eventId);
    return (
      job && { state: await job.getState(), attemptsMade: job.attemptsMade, failedReason: job.failedReason }
    );
  } finally {
    await queue.close();
  }
}

async function unpublishedIds(): Promise<string[]> {
  const rows = await db.$queryRawUnsafe<Array<{ id: string }>>(
    "SELECT id::text AS id FROM outbox_events WHERE published_at IS NULL ORDER BY created_at",
  );
  return rows.map((row) => row.id);
}

const ids = (deliveries: Delivery[]) => deliveries.map((delivery) => delivery.eventId).sort();

/** A committed event, as a subgraph writes it: in the transaction of the change it describes. */
async function commitUserDeleted(): Promise<string> {
  const userId = randomUUID();
  const data = outboxEventData("user.deleted", { userId });
  await db.$transaction(async (tx) => {
    await tx.outboxEvent.create({ data });
  });
  return data.id;
}

/** The committed rows of these events, as the code that wrote them knows them. */
async function committedRecords(eventIds: string[]): Promise<OutboxRecord[]> {
  const rows = await db.$queryRawUnsafe<
    Array<{ id: string; type: string; payload: unknown; created_at: Date }>
  >(
    "SELECT id::text AS id, type, payload, created_at FROM outbox_events WHERE id = ANY($1::uuid[]) ORDER BY created_at",
    eventIds,
  );
  return rows.map((row) => ({ id: row.id, type: row.type, payload: row.payload, createdAt: row.created_at }));
}

/** The test database's notifications, recording each change of their LISTEN state. */
function watchedWakeUps(reconnectMs: number): { states: boolean[]; wakeUps: OutboxWakeUps } {
  const states: boolean[] = [];
  const inner = outboxNotifications({ connectionString: databaseUrl, logger: log.logger, reconnectMs });
  return {
    states,
    wakeUps: {
      start: (handlers) =>
        inner.start({
          wake: handlers.wake,
          listening: (up) => {
            states.push(up);
            handlers.listening(up);
          },
        }),
      stop: () => inner.stop(),
    },
  };
}

/** Kills the relay's LISTEN connection from the server side, as a failover or an idle-connection reaper would. */
async function terminateListener(): Promise<void> {
  const { rows } = await pool.query<{ killed: boolean }>(
    "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
    [OUTBOX_LISTENER_NAME],
  );
  expect(rows).toEqual([{ killed: true }]);
}

describe.each(["prisma", "sql"] as const)("events between subgraphs (%s outbox store)", (kind) => {
  beforeEach(() => {
    storeKind = kind;
  });

  it("should deliver an event committed with its change to every subscribed consumer exactly once", async () => {
    const deliveries = startConsumers();
    const before = new Date();
    const profile: Omit<EventPayload<"user.profile_changed">, "userId"> = {
      birthDate: "1990-06-15",
      gender: "WOMAN",
      gendersOfInterest: ["MAN", "NONBINARY"],
      ageMin: 25,
      ageMax: 40,
      maxDistanceKm: 30,
      visibility: "VISIBLE",
      banned: false,
    };
    const [profileEvent, matchEvent] = await db.$transaction(async (tx) => {
      const user = await tx.user.create({
        data: {
          email: `${randomUUID()}@example.test`,
          passwordHash: "!",
          displayName: "Ada",
          birthDate: new Date(profile.birthDate),
        },
      });
      const first = outboxEventData("user.profile_changed", { userId: user.id, ...profile });
      const second = outboxEventData("match.created", {
        matchId: randomUUID(),
        userIds: [user.id, randomUUID()],
      });
      await tx.outboxEvent.create({ data: first });
      await tx.outboxEvent.create({ data: second });
      return [first, second];
    });

    // Resolves after a pass that started after the call: the events are published by then.
    expect((await relay().flush()).error).toBeUndefined();
    expect(await unpublishedIds()).toEqual([]);
    await waitFor(
      "deliveries",
      () =>
        deliveries.chat.length === 2 &&
        deliveries.push.length === 1 &&
        deliveries.discovery.length === 1 &&
        deliveries.media.length === 1,
    );
    await relays[0]!.flush();
    await pause(300);

    // user.profile_changed: discovery, media and chat; match.created: chat and push.
    expect(ids(deliveries.discovery)).toEqual([profileEvent.id]);
    expect(ids(deliveries.media)).toEqual([profileEvent.id]);
    expect(ids(deliveries.chat).sort()).toEqual([profileEvent.id, matchEvent.id].sort());
    expect(ids(deliveries.push)).toEqual([matchEvent.id]);
    const [received] = deliveries.discovery;
    expect(received!.payload).toEqual(profileEvent.payload);
    expect(received!.meta).toMatchObject({
      eventId: profileEvent.id,
      type: "user.profile_changed",
      attempt: 1,
    });
    expect(received!.meta.occurredAt.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1_000);
    expect(await unpublishedIds()).toEqual([]);
    for (const [consumer, completed] of [
      ["discovery", 1],
      ["chat", 2],
      ["push", 1],
    ] as const) {
      expect(await jobCounts(consumer)).toMatchObject({
        waiting: 0,
        active: 0,
        delayed: 0,
        completed,
        failed: 0,
      });
    }
  });

  it("should enqueue events handed over after their commit once, and a poll meanwhile only marks them", async () => {
    const deliveries = startConsumers();
    const started = relay({ markDelayMs: 60_000 });
    await started.flush(); // the start-up pass is over
    const eventId = await commitUserDeleted();
    started.publishCommitted(await committedRecords([eventId]));
    await waitFor("the deliveries", () =>
      ["discovery", "chat", "media"].every((c) => deliveries[c as EventConsumer].length === 1),
    );
    // Not marked yet (markDelayMs): the poll claims it, does not enqueue it again, and marks it.
    expect(await unpublishedIds()).toEqual([eventId]);
    expect(await started.flush()).toEqual({ published: 0 });
    expect(await unpublishedIds()).toEqual([]);
    await pause(300);
    for (const consumer of ["discovery", "chat", "media"] as const) {
      expect(ids(deliveries[consumer])).toEqual([eventId]);
      expect(await jobCounts(consumer)).toMatchObject({
        waiting: 0,
        active: 0,
        delayed: 0,
        completed: 1,
        failed: 0,
      });
    }
  });

  it("should mark events handed over in one tick published in one batch, without a poll", async () => {
    const deliveries = startConsumers();
    const started = relay({ markDelayMs: 50 }); // polls every 60 s: only the handover marks
    await started.flush();
    const eventIds = [await commitUserDeleted(), await commitUserDeleted()];
    const records = await committedRecords(eventIds);
    for (const record of records) started.publishCommitted([record]);
    await waitFor("both marked published", async () => (await unpublishedIds()).length === 0);
    await waitFor("both delivered", () => deliveries.media.length === 2);
    expect(ids(deliveries.media)).toEqual([...eventIds].sort());
  });

  it("should enqueue a lone event as its job and a batch as one job per consumer, with the relay's job options", async () => {
    const started = relay({
      retry: { attempts: 4, backoffMs: 700 },
      keepCompletedSeconds: 90,
      markDelayMs: 60_000,
    });
    await started.flush();
    const [lone, first, second] = [
      await commitUserDeleted(),
      await commitUserDeleted(),
      await commitUserDeleted(),
    ];
    started.publishCommitted(await committedRecords([lone])); // one job per queue
    await waitFor("the lone event enqueued", async () => (await jobCounts("media")).waiting === 1);
    // Two events for three consumers: one job per consumer carrying both, in one write to Redis.
    const records = await committedRecords([first, second]);
    const write = jest.spyOn(net.Socket.prototype, "_write");
    const writev = jest.spyOn(net.Socket.prototype, "_writev");
    try {
      started.publishCommitted(records);
      await waitFor("the batch enqueued", async () => (await jobCounts("media")).waiting === 2);
      const carried = (text: string) => text.includes(first) || text.includes(second);
      const writesOfTheBatch = [
        ...write.mock.calls.filter(([chunk]) => carried(String(chunk))),
        ...writev.mock.calls.filter(([chunks]) =>
          // Node hands _writev the chunks themselves when all are buffers, else { chunk, encoding }.
          carried(chunks.map((entry) => String((entry as { chunk?: unknown }).chunk ?? entry)).join("")),
        ),
      ];
      expect(writesOfTheBatch).toHaveLength(1);
    } finally {
      write.mockRestore();
      writev.mockRestore();
    }
    started.publishCommitted(await committedRecords([lone])); // again: the job id drops it
    await pause(200);
    expect(await jobCounts("media")).toMatchObject({ waiting: 2 });
    const queue = new Queue(eventQueueName("media"), { connection: { url: REDIS_URL }, prefix });
    try {
      const jobs = await Promise.all([lone, `batch.${first}`].map((id) => queue.getJob(id)));
      const options = jobs.map((job) => ({
        id: job?.id,
        name: job?.name,
        attempts: job?.opts.attempts,
        backoff: job?.opts.backoff,
        removeOnComplete: job?.opts.removeOnComplete,
        removeOnFail: job?.opts.removeOnFail,
      }));
      const relayOptions = {
        attempts: 4,
        backoff: { type: "exponential", delay: 700, jitter: 0.2 },
        removeOnComplete: { age: 90 },
        removeOnFail: { age: 7 * 24 * 3600 },
      };
      expect(options).toEqual([
        { id: lone, name: "user.deleted", ...relayOptions },
        { id: `batch.${first}`, name: EVENT_BATCH_JOB, ...relayOptions },
      ]);
      expect((jobs[0]?.data as { type?: string }).type).toBe("user.deleted");
      const batch = jobs[1]?.data as EventBatchJobData;
      expect(batch.events.map((event) => [event.id, event.type])).toEqual([
        [first, "user.deleted"],
        [second, "user.deleted"],
      ]);
      expect(batch.events.map((event) => event.payload)).toEqual(records.map((record) => record.payload));
    } finally {
      await queue.close();
    }
  });

  it("should leave events handed over while Redis is unreachable in the outbox for the poll", async () => {
    const deliveries = startConsumers();
    const cutOff = relay({ connection: `redis://127.0.0.1:${await freePort()}`, markDelayMs: 10 });
    await cutOff.flush();
    const eventId = await commitUserDeleted();
    cutOff.publishCommitted(await committedRecords([eventId]));
    await cutOff.stop(); // waits for the handover's attempt
    expect(await unpublishedIds()).toEqual([eventId]);
    expect(deliveries.media).toEqual([]);

    const reconnected = relay(); // its start-up pass publishes what the handover left
    expect((await reconnected.flush()).error).toBeUndefined();
    expect(await unpublishedIds()).toEqual([]);
    await waitFor("the delivery", () => deliveries.media.length === 1);
  });

  it("should never deliver an event whose transaction rolled back", async () => {
    const deliveries = startConsumers();
    const rolledBack = outboxEventData("user.deleted", { userId: randomUUID() });
    await expect(
      db.$transaction(async (tx) => {
        await tx.outboxEvent.create({ data: rolledBack });
        throw new Error("the change failed");
      }),
    ).rejects.toThrow("the change failed");
    const committed = await commitUserDeleted();

    await relay().flush();
    await waitFor("the committed event", () => deliveries.media.length === 1);
    await pause(300);

    for (const consumer of ["discovery", "chat", "media"] as const)
      expect(ids(deliveries[consumer])).toEqual([committed]);
  });

  it("should refuse, before anything is written, an event whose payload does not match the catalogue", () => {
    expect(() => outboxEventData("user.blocked", { blockerId: randomUUID(), blockedId: "42" })).toThrow(
      InvalidEventError,
    );
    expect(() =>
      outboxEventData("match.created", {
        matchId: randomUUID(),
        userIds: [randomUUID()] as unknown as [string, string],
      }),
    ).toThrow(/userIds/);
  });

  it("should not deliver twice when the relay dies after enqueueing but before marking the events published", async () => {
    const deliveries = startConsumers();
    const inner = outboxStore();
    let failures = 0;
    const store: OutboxStore = {
      claimUnpublished: (limit) => inner.claimUnpublished(limit),
      markPublished: async (eventIds) => {
        if (eventIds.length > 0 && failures === 0) {
          failures += 1;
          throw new Error("relay died before markPublished");
        }
        return inner.markPublished(eventIds);
      },
      markPublishedUnclaimed: (eventIds) => inner.markPublishedUnclaimed(eventIds),
    };
    const crashing = relay({ store });
    await crashing.flush(); // the start-up pass, on an empty outbox
    const eventId = await commitUserDeleted();

    const first = await crashing.flush();
    expect(first.published).toBe(0);
    expect(first.error?.message).toBe("relay died before markPublished");
    expect(await unpublishedIds()).toEqual([eventId]);
    expect(
      log.lines.some(
        (line) => line.level === "error" && line.msg.startsWith("outbox relay: publishing failed"),
      ),
    ).toBe(true);
    await waitFor("the first delivery", () => deliveries.media.length === 1);

    const second = await crashing.flush();
    expect(second).toEqual({ published: 1 });
    expect(await unpublishedIds()).toEqual([]);
    expect(log.lines.some((line) => line.msg === "outbox relay: publishing again")).toBe(true);
    await pause(300);

    for (const consumer of ["discovery", "chat", "media"] as const) {
      expect(ids(deliveries[consumer])).toEqual([eventId]);
      expect(await jobCounts(consumer)).toMatchObject({ waiting: 0, delayed: 0, completed: 1 });
    }
  });

  it("should deliver each event once, and share the work, when two relays run at once", async () => {
    const deliveries = startConsumers();
    const eventIds: string[] = [];
    for (let i = 0; i < 40; i += 1) eventIds.push(await commitUserDeleted());

    // Counts what each relay marks published: an event marked by both was enqueued by both.
    const marked: string[] = [];
    const counted = (): OutboxStore => {
      const store = outboxStore();
      return {
        claimUnpublished: (limit) => store.claimUnpublished(limit),
        markPublished: async (eventIds) => {
          await store.markPublished(eventIds);
          marked.push(...eventIds);
        },
        markPublishedUnclaimed: async (eventIds) => {
          await store.markPublishedUnclaimed(eventIds);
          marked.push(...eventIds);
        },
      };
    };
    const a = relay({ store: counted(), batchSize: 3 });
    const b = relay({ store: counted(), batchSize: 3 });
    const results = await Promise.all([a.flush(), b.flush(), a.flush(), b.flush()]);
    expect(results.every((result) => result.error === undefined)).toBe(true);
    expect(await unpublishedIds()).toEqual([]);

    await waitFor("every delivery", () =>
      EVENT_CONSUMERS.every((c) => c === "push" || c === "users" || deliveries[c].length >= 40),
    );
    await pause(300);
    for (const consumer of ["discovery", "chat", "media"] as const) {
      expect(ids(deliveries[consumer])).toEqual([...eventIds].sort());
      expect(await jobCounts(consumer)).toMatchObject({ completed: 40, failed: 0 });
    }
    // The row locks of a claim keep the relays off each other's events: nothing was enqueued twice.
    expect(marked.sort()).toEqual([...eventIds].sort());
  });

  it("should retry a handler that throws until it succeeds", async () => {
    let calls = 0;
    const attempts: number[] = [];
    const deliveries = startConsumers({
      chat: {
        "match.created": async (_payload, meta) => {
          calls += 1;
          attempts.push(meta.attempt);
          if (calls < 3) throw new Error(`chat database unavailable (${calls})`);
        },
      },
    });
    const event = outboxEventData("match.created", {
      matchId: randomUUID(),
      userIds: [randomUUID(), randomUUID()],
    });
    await db.outboxEvent.create({ data: event });

    await relay({ retry: { attempts: 5, backoffMs: 20 } }).flush();
    await waitFor("the third attempt", async () => (await jobOf("chat", event.id))?.state === "completed");

    expect(attempts).toEqual([1, 2, 3]);
    expect(ids(deliveries.push)).toEqual([event.id]); // other consumers are not affected
    expect(await jobOf("chat", event.id)).toMatchObject({ state: "completed", attemptsMade: 3 });
    expect(log.lines.filter((line) => line.msg === "event handler failed; will retry")).toHaveLength(2);
  });

  it("should fail an event with an invalid payload at once, without retrying it", async () => {
    const deliveries = startConsumers();
    // Written around outboxEventData's validation, as an older or buggy publisher might.
    const eventId = randomUUID();
    await db.outboxEvent.create({
      data: { id: eventId, type: "user.deleted", payload: { userId: "not-a-uuid" } },
    });

    await relay({ retry: { attempts: 5, backoffMs: 20 } }).flush();
    for (const consumer of ["discovery", "chat", "media"] as const) {
      await waitFor(
        `${consumer} to fail it`,
        async () => (await jobOf(consumer, eventId))?.state === "failed",
      );
    }
    await pause(300);

    for (const consumer of ["discovery", "chat", "media"] as const) {
      const job = await jobOf(consumer, eventId);
      expect(job).toMatchObject({ state: "failed", attemptsMade: 1 });
      expect(job?.failedReason).toMatch(/invalid user\.deleted payload/);
      expect(deliveries[consumer]).toEqual([]);
    }
    expect(log.lines.filter((line) => line.msg === "event handler failed for good")).toHaveLength(3);
  });

  it("should lose nothing while Redis is unreachable, and publish it once Redis is back", async () => {
    const deliveries = startConsumers();
    const eventId = await commitUserDeleted();

    const cutOff = relay({ connection: `redis://127.0.0.1:${await freePort()}` });
    const result = await cutOff.flush();
    expect(result.published).toBe(0);
    expect(result.error?.message).toMatch(/redis not ready/);
    expect(
      log.lines.some(
        (line) => line.level === "error" && line.msg.startsWith("outbox relay: publishing failed"),
      ),
    ).toBe(true);
    expect(await unpublishedIds()).toEqual([eventId]);
    await cutOff.stop();

    const reconnected = relay();
    expect((await reconnected.flush()).error).toBeUndefined();
    expect(await unpublishedIds()).toEqual([]);
    await waitFor("the delivery", () => deliveries.media.length === 1);
    await pause(300);
    for (const consumer of ["discovery", "chat", "media"] as const)
      expect(ids(deliveries[consumer])).toEqual([eventId]);
  });

  it("should only warn when a busy start-up holds the event loop past the first pass's Redis wait, and publish on the next", async () => {
    const deliveries = startConsumers();
    const eventId = await commitUserDeleted();
    const slow = relay();
    // Start-up work that blocks the event loop (loading and compiling a process) longer than the
    // relay's wait for its connection: the connection cannot come up meanwhile.
    const blockedUntil = Date.now() + 2_500;
    while (Date.now() < blockedUntil) {
      // busy
    }
    const first = await slow.flush();
    const startUpLines = log.lines.filter((line) => line.msg.startsWith("outbox relay:"));
    expect(startUpLines.map((line) => [line.level, line.msg])).toEqual([
      ["warn", "outbox relay: redis not connected yet at start-up; retrying on the next poll"],
    ]);
    expect(first.error ?? (await slow.flush()).error).toBeUndefined();
    expect(await unpublishedIds()).toEqual([]);
    await waitFor("the delivery", () => deliveries.media.length === 1);
    expect(ids(deliveries.media)).toEqual([eventId]);
  });

  it("should keep what is written while Redis is down and publish it, once, when Redis comes back", async () => {
    log = capturingLogger("events-test", "debug"); // the failed hand-over is a debug line
    const deliveries = startConsumers();
    const proxy = await redisProxy();
    try {
      const relayed = relay({ connection: proxy.url });
      expect((await relayed.flush()).error).toBeUndefined();

      await proxy.cut();
      const eventId = await commitUserDeleted();
      const down = await relayed.flush();
      expect(down.error).toBeDefined();
      // Failed fast, on the connection's state, rather than by waiting out the publish timeout.
      expect(down.error?.message).not.toMatch(/no answer within 10000 ms/);
      expect((await relayed.flush()).error).toBeDefined();
      expect(await unpublishedIds()).toEqual([eventId]);
      // One error for the outage, not one per poll.
      expect(log.lines.filter((line) => line.msg.startsWith("outbox relay: publishing failed"))).toHaveLength(
        1,
      );

      await proxy.restore();
      await waitFor("the relay to publish again", async () => (await relayed.flush()).error === undefined);
      expect(await unpublishedIds()).toEqual([]);
      expect(log.lines.some((line) => line.msg === "outbox relay: publishing again")).toBe(true);
      await waitFor("the delivery", () => deliveries.media.length === 1);
      await pause(300);
      for (const consumer of ["discovery", "chat", "media"] as const)
        expect(ids(deliveries[consumer])).toEqual([eventId]);
    } finally {
      await proxy.close();
    }
  });

  it("should publish an event committed without a flush when the database notifies, without waiting for a poll", async () => {
    const deliveries = startConsumers();
    const watched = watchedWakeUps(100);
    relay({ wakeUps: watched.wakeUps, pollIntervalMs: 60_000, safetyPollIntervalMs: 60_000 });
    await waitFor("LISTEN", () => watched.states.at(-1) === true);
    const eventId = await commitUserDeleted();
    await waitFor("the delivery", () => deliveries.media.length === 1);
    expect(ids(deliveries.media)).toEqual([eventId]);
    await waitFor("the event marked published", async () => (await unpublishedIds()).length === 0);
  });

  it("should poll while its notification connection is lost, so a notification sent meanwhile is not missed", async () => {
    const deliveries = startConsumers();
    const watched = watchedWakeUps(60_000); // not back within this test
    relay({ wakeUps: watched.wakeUps, pollIntervalMs: 200, safetyPollIntervalMs: 60_000 });
    await waitFor("LISTEN", () => watched.states.at(-1) === true);
    await terminateListener();
    await waitFor("the loss to be seen", () => watched.states.at(-1) === false);
    const eventId = await commitUserDeleted(); // its notification reaches nobody
    await waitFor("the delivery by the poll", () => deliveries.media.length === 1);
    expect(ids(deliveries.media)).toEqual([eventId]);
    expect(watched.states).toEqual([true, false]);
    expect(log.lines.some((line) => line.msg.startsWith("outbox relay: notification connection lost"))).toBe(
      true,
    );
  });

  it("should listen again after its notification connection is lost, and be woken as before", async () => {
    const deliveries = startConsumers();
    const watched = watchedWakeUps(100);
    relay({ wakeUps: watched.wakeUps, pollIntervalMs: 60_000, safetyPollIntervalMs: 60_000 });
    await waitFor("LISTEN", () => watched.states.at(-1) === true);
    await terminateListener();
    await waitFor("LISTEN again", () => watched.states.length === 3);
    expect(watched.states).toEqual([true, false, true]);
    const eventId = await commitUserDeleted();
    await waitFor("the delivery", () => deliveries.media.length === 1);
    expect(ids(deliveries.media)).toEqual([eventId]);
  });
});

describe("events handed over together (publishCommitted, sql outbox store)", () => {
  beforeEach(() => {
    storeKind = "sql";
  });

  it("should carry a window's events to each consumer in one job, each delivered once as its own event", async () => {
    const deliveries = startConsumers();
    // A window no test outlasts: stop() below closes it.
    const started = relay({ handOverWindowMs: 60_000, markDelayMs: 10 });
    await started.flush();
    const eventIds: string[] = [];
    for (let i = 0; i < 5; i += 1) eventIds.push(await commitUserDeleted());
    const records = await committedRecords(eventIds);
    // One at a time, in turns of their own, as sends hand them over.
    for (const record of records) {
      started.publishCommitted([record]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await started.stop(); // closes the window: what waited leaves, then is marked
    await waitFor("every delivery", () =>
      (["discovery", "chat", "media"] as const).every((c) => deliveries[c].length === 5),
    );
    await waitFor("marked published", async () => (await unpublishedIds()).length === 0);
    await pause(200);
    for (const consumer of ["discovery", "chat", "media"] as const) {
      expect(ids(deliveries[consumer])).toEqual([...eventIds].sort());
      expect(deliveries[consumer].map((delivery) => delivery.meta.attempt)).toEqual([1, 1, 1, 1, 1]);
      expect(await jobCounts(consumer)).toMatchObject({
        waiting: 0,
        active: 0,
        delayed: 0,
        completed: 1,
        failed: 0,
      });
    }
  });

  it("should retry an event that fails in a batch as its own job, leaving the others handled once", async () => {
    const started = relay({ retry: { attempts: 3, backoffMs: 20 }, markDelayMs: 10 });
    await started.flush(); // the start-up pass is over: the events below are the hand-over's
    const eventIds = [await commitUserDeleted(), await commitUserDeleted(), await commitUserDeleted()];
    const failing = eventIds[1]!;
    const attempts: Record<string, number[]> = {};
    const deliveries = startConsumers({
      media: {
        "user.deleted": async (_payload, meta) => {
          (attempts[meta.eventId] ??= []).push(meta.attempt);
          if (meta.eventId === failing && attempts[meta.eventId]!.length === 1)
            throw new Error("media database unavailable");
        },
      },
    });
    started.publishCommitted(await committedRecords(eventIds));
    await waitFor("the failed one handled again", () => attempts[failing]?.length === 2);
    await waitFor("its job completed", async () => (await jobOf("media", failing))?.state === "completed");
    expect(Object.fromEntries(eventIds.map((id) => [id, attempts[id]]))).toEqual({
      [eventIds[0]!]: [1],
      [eventIds[1]!]: [1, 1],
      [eventIds[2]!]: [1],
    });
    expect(ids(deliveries.chat)).toEqual([...eventIds].sort()); // other consumers are not affected
    expect(await jobCounts("media")).toMatchObject({
      waiting: 0,
      active: 0,
      delayed: 0,
      completed: 2,
      failed: 0,
    });
    expect(
      log.lines.filter((line) => line.msg === "event handler failed in a batch; retrying it as its own job"),
    ).toHaveLength(1);
  });

  it("should leave a batch it could not enqueue in the outbox, and the poll delivers each event once", async () => {
    log = capturingLogger("events-test", "debug"); // the failed hand-over is a debug line
    const deliveries = startConsumers();
    const proxy = await redisProxy();
    const cutOff = relay({ connection: proxy.url, handOverWindowMs: 50, markDelayMs: 10 });
    try {
      await cutOff.flush(); // connected
      const eventIds: string[] = [];
      for (let i = 0; i < 4; i += 1) eventIds.push(await commitUserDeleted());
      const records = await committedRecords(eventIds);
      await proxy.cut(); // before the window closes, however late it runs: the batch's add fails
      for (const record of records) cutOff.publishCommitted([record]);
      await waitFor("the hand-over failed", () =>
        log.lines.some((line) => line.msg === "outbox relay: direct publish failed; left to the poll"),
      );
      await cutOff.stop();
      expect(await unpublishedIds()).toEqual(eventIds);
      expect(deliveries.media).toEqual([]);

      const poll = relay();
      expect((await poll.flush()).error).toBeUndefined();
      expect(await unpublishedIds()).toEqual([]);
      await waitFor("the deliveries", () => deliveries.media.length === 4);
      await pause(200);
      expect(ids(deliveries.media)).toEqual([...eventIds].sort());
    } finally {
      await proxy.close();
    }
  });
});

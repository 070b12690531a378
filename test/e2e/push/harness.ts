import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { Queue, type JobType } from "bullmq";
import {
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
  withDatabaseName,
} from "@hv/prisma";
import {
  EVENT_BATCH_JOB,
  eventQueueName,
  outboxEventData,
  prismaOutboxStore,
  startOutboxRelay,
  type EventBatchJobData,
  type EventPayload,
  type EventType,
  type OutboxRelay,
} from "@hv/kit";
import { createUsersDb, type UsersDb } from "@hv/users/src/db";
import type { DeliveryOutcome } from "@hv/users/src/push/deliver";
import { PUSH_QUEUE, pushJobId, pushJobOptions, type PushJob } from "@hv/users/src/push/jobs";
import { loadPushConfig, type PushConfig } from "@hv/users/src/push/config";
import { startPushWorker, type RunningPushWorker } from "@hv/users/src/push/worker";
import { capturingLogger } from "../../support/log-capture";
import { startFakeApns, startFakeFcm, type FakeApns, type FakeFcm } from "./fake-providers";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

export const APNS_KEY_ID = "ABC123DEFG";
export const APNS_TEAM_ID = "TEAM123456";
export const APNS_TOPIC = "com.haiyvee.app";

export interface PushHarness {
  db: UsersDb;
  fcm: FakeFcm;
  apns: FakeApns;
  worker: RunningPushWorker;
  /** The worker's configuration (to build providers for calling `deliver` directly). */
  config: PushConfig;
  /** Fixes the clock the worker decides by (max age, quiet hours); undefined: the real clock. */
  setNow(at: Date | undefined): void;
  /** Every credential the tests handed out or the fakes issued: none may appear in a log line. */
  secrets(): string[];
  /** Waits until the push consumer has handled this event (its job on the event queue completed). */
  waitForEvent(eventId: string): Promise<void>;
  /** Puts a job on the push queue directly, with the fan-out's options. */
  addJob(job: PushJob): Promise<void>;
  /** Push jobs of this subject on the queue, in any state. */
  pushJobCount(subjectKey: string): Promise<number>;
  serviceAccount: { client_email: string; private_key: string; project_id: string; token_uri: string };
  logs: ReturnType<typeof capturingLogger>["lines"];
  /** Finished jobs (done or failed for good), in order. */
  finished: Array<{ job: PushJob; outcome: DeliveryOutcome | Error }>;
  /** Writes the event to the users outbox and relays it to the push consumer's queue (the real path). */
  publish<T extends EventType>(type: T, payload: EventPayload<T>): Promise<string>;
  /**
   * Writes each event to the users outbox and hands it to the relay as a send does
   * (`publishCommitted`, one call each, all in one turn: one window). Returns their ids.
   */
  handOver<T extends EventType>(type: T, payloads: Array<EventPayload<T>>): Promise<string[]>;
  /** The push consumer's event jobs: id, name, and the events each carries. */
  eventJobs(): Promise<Array<{ id: string; name: string; eventIds: string[] }>>;
  /** Waits until `count` jobs of this subject have finished; returns them. */
  waitForJobs(
    subjectKey: string,
    count: number,
  ): Promise<Array<{ job: PushJob; outcome: DeliveryOutcome | Error }>>;
  /** A counter's value from GET /metrics (0 when the series does not exist yet). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The push job of (subject, recipient): tries made, and the delays BullMQ waited between them (ms). */
  jobOf(subjectKey: string, recipientId: string): Promise<{ attemptsMade: number; delays: number[] }>;
  /** Removes a finished job from the push queue, as its retention ending would. */
  removeJob(subjectKey: string, recipientId: string): Promise<void>;
  person(displayName?: string): Promise<string>;
  /** A device on a session of its own (`session` overrides the session's fields). */
  device(
    userId: string,
    platform: "IOS" | "ANDROID",
    session?: { revokedAt?: Date; expiresAt?: Date },
  ): Promise<{ id: string; token: string }>;
}

/**
 * The push worker in this process on a users database of its own (migrated with the real
 * migrations: no other test's relay claims its outbox), a BullMQ prefix of its own, and local FCM
 * and APNs servers. Set up in beforeAll, torn down in afterAll.
 */
export function usePushWorker(env: Record<string, string> = {}): PushHarness {
  const harness = { finished: [] } as unknown as PushHarness;
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const databaseUrl = withDatabaseName(
    process.env.USERS_DATABASE_URL || defaultDatabaseUrl("users"),
    `hv_test_${runId}_push`,
  );
  const prefix = `hvtest-push-${randomBytes(4).toString("hex")}`;
  let relay: OutboxRelay | undefined;
  let clock: Date | undefined;
  const secrets: string[] = [];

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    await migrateDeploy("users", databaseUrl);
    harness.db = createUsersDb(databaseUrl);

    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    harness.serviceAccount = {
      project_id: "haiyvee-test",
      client_email: "push@haiyvee-test.iam.gserviceaccount.com",
      private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: "https://oauth2.googleapis.com/token",
    };
    harness.fcm = await startFakeFcm(harness.serviceAccount);
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    harness.apns = await startFakeApns({
      publicKeyPem: ec.publicKey.export({ type: "spki", format: "pem" }).toString(),
      keyId: APNS_KEY_ID,
      teamId: APNS_TEAM_ID,
    });

    const log = capturingLogger("push-worker");
    harness.logs = log.lines;
    relay = startOutboxRelay({
      store: prismaOutboxStore(harness.db),
      connection: REDIS_URL,
      logger: log.logger,
      prefix,
      pollIntervalMs: 60_000,
      handOverWindowMs: 50,
    });
    // The start-up poll is over before any test writes an event: none claims a hand-over's rows.
    const firstPoll = await relay.flush();
    if (firstPoll.error) throw firstPoll.error;
    const apnsKey = ec.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    secrets.push(harness.serviceAccount.private_key, apnsKey);
    const config = loadPushConfig({
      NODE_ENV: "test",
      REDIS_URL,
      EVENTS_PREFIX: prefix,
      USERS_DATABASE_URL: databaseUrl,
      SUBGRAPH_HOST: "127.0.0.1",
      PUSH_WORKER_PORT: "0",
      PUSH_ANDROID_PROVIDER: "fcm",
      PUSH_IOS_PROVIDER: "apns",
      FCM_SERVICE_ACCOUNT: JSON.stringify({
        type: "service_account",
        private_key_id: "k1",
        ...harness.serviceAccount,
      }),
      FCM_TOKEN_URL: harness.fcm.tokenUrl,
      FCM_ENDPOINT: harness.fcm.endpoint,
      APNS_KEY: apnsKey,
      APNS_KEY_ID,
      APNS_TEAM_ID,
      APNS_TOPIC,
      APNS_ENDPOINT: harness.apns.endpoint,
      APNS_CA: harness.apns.ca,
      PUSH_RETRY_BASE_MS: "50",
      PUSH_MAX_ATTEMPTS: "3",
      ...env,
    });
    harness.config = config;
    harness.worker = await startPushWorker(config, log.logger, {
      onJobDone: (job, outcome) => harness.finished.push({ job, outcome }),
      now: () => clock ?? new Date(),
    });
  }, 120_000);

  afterAll(async () => {
    await relay?.stop();
    await harness.worker?.stop();
    for (const name of [eventQueueName("push"), PUSH_QUEUE]) {
      const queue = new Queue(name, { connection: { url: REDIS_URL }, prefix });
      await queue.obliterate({ force: true });
      await queue.close();
    }
    await harness.fcm?.close();
    await harness.apns?.close();
    await harness.db?.$disconnect();
    await dropDatabase(databaseUrl);
  });

  harness.setNow = (at) => {
    clock = at;
  };
  harness.secrets = () => [...secrets, ...harness.fcm.issuedTokens];
  harness.waitForEvent = async (eventId) => {
    const queue = new Queue(eventQueueName("push"), { connection: { url: REDIS_URL }, prefix });
    try {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const state = await queue.getJobState(eventId);
        if (state === "completed") return;
        if (state === "failed") throw new Error(`event ${eventId} failed in the push consumer`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for event ${eventId} (${state})`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await queue.close();
    }
  };
  harness.addJob = async (job) => {
    const queue = new Queue<PushJob>(PUSH_QUEUE, { connection: { url: REDIS_URL }, prefix });
    try {
      const options = pushJobOptions(
        { maxAttempts: harness.config.maxAttempts, maxAgeMinutes: harness.config.maxAgeMinutes },
        job.kind,
      );
      await queue.add(job.kind, job, { ...options, jobId: pushJobId(job.subjectKey, job.recipientId) });
    } finally {
      await queue.close();
    }
  };
  /** A job's every state but waiting for children (which only a parent job has). */
  const JOB_STATES: JobType[] = ["waiting", "active", "delayed", "completed", "failed", "prioritized"];
  /** The jobs of `queueName` in `states`, read through a queue opened for the purpose. */
  const jobsIn = async <T>(queueName: string, states: JobType[]) => {
    const queue = new Queue<T>(queueName, { connection: { url: REDIS_URL }, prefix });
    try {
      return await queue.getJobs(states);
    } finally {
      await queue.close();
    }
  };
  harness.pushJobCount = async (subjectKey) => {
    const jobs = await jobsIn<PushJob>(PUSH_QUEUE, [...JOB_STATES, "waiting-children"]);
    return jobs.filter((job) => job?.data.subjectKey === subjectKey).length;
  };
  harness.publish = async (type, payload) => {
    const row = outboxEventData(type, payload);
    await harness.db.outboxEvent.create({ data: row as never });
    const result = await relay!.flush();
    if (result.error) throw result.error;
    return row.id;
  };
  harness.handOver = async (type, payloads) => {
    const rows = payloads.map((payload) => outboxEventData(type, payload));
    const written = await Promise.all(
      rows.map((row) => harness.db.outboxEvent.create({ data: row as never })),
    );
    // One call each, all in one turn: one window, however slowly the machine runs.
    for (const row of written)
      relay!.publishCommitted([
        { id: row.id, type: row.type, payload: row.payload, createdAt: row.createdAt },
      ]);
    return rows.map((row) => row.id);
  };
  harness.eventJobs = async () => {
    const jobs = await jobsIn<unknown>(eventQueueName("push"), JOB_STATES);
    return jobs.map((job) => {
      const data = job.data as Partial<EventBatchJobData>;
      return {
        id: String(job.id),
        name: job.name,
        eventIds:
          job.name === EVENT_BATCH_JOB ? (data.events ?? []).map((event) => event.id) : [String(job.id)],
      };
    });
  };
  harness.waitForJobs = async (subjectKey, count) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const done = harness.finished.filter((entry) => entry.job.subjectKey === subjectKey);
      if (done.length >= count) return done;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${count} finished job(s) of ${subjectKey} (have ${done.length})`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  harness.metric = async (name, labels = {}) => {
    const text = await (await fetch(harness.worker.url.replace(/\/healthz$/, "/metrics"))).text();
    const wanted = Object.entries(labels);
    for (const line of text.split("\n")) {
      const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      const have = Object.fromEntries(
        [...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      if (wanted.every(([key, value]) => have[key] === value)) return Number(match[3]);
    }
    return 0;
  };
  harness.jobOf = async (subjectKey, recipientId) => {
    const queue = new Queue(PUSH_QUEUE, { connection: { url: REDIS_URL }, prefix });
    try {
      const job = await queue.getJob(pushJobId(subjectKey, recipientId));
      if (!job) throw new Error(`no push job ${pushJobId(subjectKey, recipientId)}`);
      return {
        attemptsMade: job.attemptsMade,
        delays: delaysOf(harness.logs, pushJobId(subjectKey, recipientId)),
      };
    } finally {
      await queue.close();
    }
  };
  harness.removeJob = async (subjectKey, recipientId) => {
    const queue = new Queue(PUSH_QUEUE, { connection: { url: REDIS_URL }, prefix });
    try {
      const removed = await queue.remove(pushJobId(subjectKey, recipientId));
      if (removed !== 1) throw new Error(`no push job ${pushJobId(subjectKey, recipientId)} to remove`);
    } finally {
      await queue.close();
    }
  };
  harness.person = async (displayName = "Ada") => {
    const user = await harness.db.user.create({
      data: {
        email: `${randomUUID()}@example.test`,
        passwordHash: "!seeded",
        displayName,
        birthDate: new Date("1992-03-04"),
      },
    });
    return user.id;
  };
  harness.device = async (userId, platform, sessionFields = {}) => {
    const session = await harness.db.session.create({
      data: { userId, expiresAt: new Date(Date.now() + 86_400_000), ...sessionFields },
    });
    const token =
      platform === "IOS" ? randomBytes(32).toString("hex") : `fcm${randomBytes(20).toString("hex")}`;
    secrets.push(token);
    const device = await harness.db.device.create({
      data: { userId, sessionId: session.id, platform, pushToken: token, appVersion: "1.0.0" },
    });
    return { id: device.id, token };
  };
  return harness;
}

/** The retry delays the worker logged for a job. */
function delaysOf(lines: PushHarness["logs"], jobId: string): number[] {
  return lines
    .filter((line) => line.jobId === jobId && typeof line.retryInMs === "number")
    .map((line) => line.retryInMs as number);
}

/** A message.created payload from `senderId` to these recipients ([userId, unread count]). */
export function messageEvent(
  senderId: string,
  recipients: Array<[string, number]>,
  overrides: Partial<EventPayload<"message.created">> = {},
): EventPayload<"message.created"> {
  return {
    messageId: randomUUID(),
    conversationId: randomUUID(),
    conversationKind: "DIRECT",
    senderId,
    seq: 7,
    sentAt: new Date().toISOString(),
    preview: "hello there",
    recipients: recipients.map(([userId, unreadCount]) => ({ userId, unreadCount })),
    ...overrides,
  };
}

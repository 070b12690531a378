/**
 * The push worker delivering notifications to local FCM HTTP v1 and APNs HTTP/2 servers.
 *
 *   pnpm exec tsx bench/push.ts [--jobs 2000] [--concurrency 20] [--provider-latency-ms 0] [--keep]
 *
 * The push worker runs as its own process (built, as deployed; BENCH_RUN=source: node --import tsx subgraphs/users/src/push-worker.ts)
 * on a users database of its own and a BullMQ prefix of its own, sending to the fake FCM (OAuth
 * token endpoint + HTTP v1) and APNs (HTTP/2 + TLS) servers of test/e2e/push/fake-providers.ts,
 * run in this process; they verify the worker's credentials and answer at once, or after
 * `--provider-latency-ms` (the round trip to Google or Apple). `jobs` people (plus a tenth, at
 * most 200, for a warm-up that is not counted), each with one device (every other one iOS) on a
 * live session, are seeded with SQL; once the worker is ready and warm, one message job per person
 * is put on the push queue (the fan-out's job options and ids), and the clock runs until the
 * worker has completed them all. `--concurrency` is PUSH_WORKER_CONCURRENCY (jobs
 * sent at once by the process).
 *
 * Reported: notifications per second for the one worker process, its CPU time per notification
 * (all its threads), and what the fakes received; PostgreSQL, Redis and the fakes are not included.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { Queue } from "bullmq";
import { eventQueueName } from "@hv/kit";
import { createUsersDb } from "@hv/users/src/db";
import { PUSH_QUEUE, pushJobId, pushJobOptions, type PushJob } from "@hv/users/src/push/jobs";
import { APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC } from "../test/e2e/push/harness";
import { startFakeApns, startFakeFcm, type FakeApns, type FakeFcm } from "../test/e2e/push/fake-providers";
import { freePort } from "../test/support/ports";
import { flag } from "./support/args";
import {
  benchDatabase,
  cpuSecondsOf,
  loadAverage,
  printHeader,
  sleep,
  startChild,
  stopChild,
  dropUnlessKept,
  runBench,
} from "./support/service";

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

/** Sends the fakes answered 200. */
const accepted = (fcm: FakeFcm, apns: FakeApns) =>
  fcm.requests.filter((request) => request.status === 200).length +
  apns.requests.filter((request) => request.status === 200).length;

async function main(): Promise<void> {
  const jobs = flag("jobs", 2000);
  const concurrency = flag("concurrency", 20);
  const latencyMs = flag("provider-latency-ms", 0);
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  const prefix = `hvbenchpush${stamp}`;
  // Sent first and not counted: the worker's code compiled, pools and HTTP/2 session open.
  const warmUp = Math.min(200, Math.ceil(jobs / 10));
  printHeader("push.ts");

  const databaseUrl = await benchDatabase("users", "push", stamp);
  const db = createUsersDb(databaseUrl);
  const queue = new Queue<PushJob>(PUSH_QUEUE, { connection: { url: REDIS_URL }, prefix });
  let fcm: FakeFcm | undefined;
  let apns: FakeApns | undefined;
  let child: ChildProcess | undefined;
  try {
    // One sender; `jobs` recipients, each with a session and one device (even: Android, odd: iOS).
    const actorId = randomUUID();
    await db.$executeRawUnsafe(
      `INSERT INTO users (id, email, password_hash, display_name, birth_date, updated_at)
       VALUES ($1::uuid, 'bench-${stamp}-sender@example.test', '!seeded', 'Ada', date '1992-03-04', now())`,
      actorId,
    );
    await db.$executeRawUnsafe(
      `INSERT INTO users (id, email, password_hash, display_name, birth_date, updated_at)
       SELECT gen_random_uuid(), 'bench-${stamp}-' || i || '@example.test', '!seeded', 'Person ' || i, date '1990-01-01', now()
       FROM generate_series(1, ${jobs + warmUp}) i`,
    );
    await db.$executeRawUnsafe(
      `INSERT INTO sessions (id, user_id, expires_at) SELECT gen_random_uuid(), id, now() + interval '1 day' FROM users WHERE id <> $1::uuid`,
      actorId,
    );
    await db.$executeRawUnsafe(`
      INSERT INTO devices (id, user_id, session_id, platform, push_token, app_version, updated_at)
      SELECT gen_random_uuid(), s.user_id, s.id,
             (CASE WHEN row_number() OVER (ORDER BY s.user_id) % 2 = 0 THEN 'ANDROID' ELSE 'IOS' END)::"DevicePlatform",
             md5(s.id::text), '1.0.0', now()
      FROM sessions s`);
    await db.$executeRawUnsafe(`
      UPDATE devices SET push_token = CASE WHEN platform = 'IOS' THEN push_token || md5(push_token) ELSE 'fcm' || push_token END`);
    await db.$executeRawUnsafe(`VACUUM ANALYZE`);
    const devices = await db.$queryRawUnsafe<
      Array<{ user_id: string; platform: string; push_token: string }>
    >(`SELECT user_id::text, platform::text, push_token FROM devices`);
    console.log(`seeded ${devices.length} recipients with one device each (${warmUp} for the warm-up)`);

    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const serviceAccount = {
      project_id: "haiyvee-bench",
      client_email: "push@haiyvee-bench.iam.gserviceaccount.com",
      private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: "https://oauth2.googleapis.com/token",
    };
    fcm = await startFakeFcm(serviceAccount);
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    apns = await startFakeApns({
      publicKeyPem: ec.publicKey.export({ type: "spki", format: "pem" }).toString(),
      keyId: APNS_KEY_ID,
      teamId: APNS_TEAM_ID,
    });
    if (latencyMs > 0)
      for (const device of devices)
        (device.platform === "IOS" ? apns : fcm).script(device.push_token, [
          { status: 200, delayMs: latencyMs },
        ]);

    const port = await freePort();
    child = await startChild(
      "subgraphs/users/src/push-worker.ts",
      {
        REDIS_URL,
        EVENTS_PREFIX: prefix,
        USERS_DATABASE_URL: databaseUrl,
        SUBGRAPH_HOST: "127.0.0.1",
        PUSH_WORKER_PORT: String(port),
        PUSH_WORKER_CONCURRENCY: String(concurrency),
        PUSH_ANDROID_PROVIDER: "fcm",
        PUSH_IOS_PROVIDER: "apns",
        FCM_SERVICE_ACCOUNT: JSON.stringify({
          type: "service_account",
          private_key_id: "k1",
          ...serviceAccount,
        }),
        FCM_TOKEN_URL: fcm.tokenUrl,
        FCM_ENDPOINT: fcm.endpoint,
        APNS_KEY: ec.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        APNS_KEY_ID,
        APNS_TEAM_ID,
        APNS_TOPIC,
        APNS_ENDPOINT: apns.endpoint,
        APNS_CA: apns.ca,
      },
      `http://127.0.0.1:${port}/readyz`,
    );
    const pid = child.pid!;

    const policy = { maxAttempts: 10, maxAgeMinutes: { message: 15, match: 1440 } };
    const job = (recipientId: string): PushJob => {
      const messageId = randomUUID();
      return {
        kind: "message",
        subjectKey: `message:${messageId}`,
        recipientId,
        actorId,
        occurredAt: new Date().toISOString(),
        message: {
          messageId,
          conversationId: randomUUID(),
          conversationKind: "DIRECT",
          seq: 1,
          preview: "hello there",
          unreadCount: 1,
          totalUnreadCount: 1,
        },
      };
    };
    const enqueue = async (work: PushJob[]) => {
      for (let i = 0; i < work.length; i += 500)
        await queue.addBulk(
          work.slice(i, i + 500).map((data) => ({
            name: data.kind,
            data,
            opts: {
              ...pushJobOptions(policy, data.kind),
              jobId: pushJobId(data.subjectKey, data.recipientId),
            },
          })),
        );
    };
    let counts: Record<string, number> = {};
    const finished = async (total: number, deadline: number) => {
      for (;;) {
        counts = await queue.getJobCounts("completed", "failed");
        if ((counts.completed ?? 0) + (counts.failed ?? 0) >= total) return;
        if (performance.now() > deadline) throw new Error(`timed out: ${JSON.stringify(counts)}`);
        await sleep(20);
      }
    };
    const work = devices.map((device) => job(device.user_id));
    await enqueue(work.slice(0, warmUp));
    await finished(warmUp, performance.now() + 60_000);
    const providerBefore = { fcm: fcm.requests.length, apns: apns.requests.length };
    const acceptedBefore = accepted(fcm, apns);
    const warmCounts = counts;

    const cpuBefore = cpuSecondsOf(pid);
    const started = performance.now();
    await enqueue(work.slice(warmUp));
    const enqueued = (performance.now() - started) / 1000;
    await finished(warmUp + jobs, started + 120_000 + (jobs * latencyMs) / concurrency);
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSecondsOf(pid) - cpuBefore;
    const sent = accepted(fcm, apns) - acceptedBefore;
    console.log(
      `${jobs} jobs (enqueued in ${enqueued.toFixed(2)} s), worker concurrency ${concurrency}, provider latency ${latencyMs} ms: ` +
        `${(counts.completed ?? 0) - (warmCounts.completed ?? 0)} completed, ${(counts.failed ?? 0) - (warmCounts.failed ?? 0)} failed in ${seconds.toFixed(1)} s; providers accepted ${sent} ` +
        `(FCM ${fcm.requests.length - providerBefore.fcm}, APNs ${apns.requests.length - providerBefore.apns}; ${fcm.tokenRequests.length} OAuth token fetch(es) in all) = ` +
        `${(sent / seconds).toFixed(0)} notifications/s; push worker CPU ${cpu.toFixed(2)} s (${(cpu / seconds).toFixed(2)} cores) = ` +
        `${((cpu * 1000) / Math.max(1, sent)).toFixed(2)} CPU-ms per notification; load average ${loadAverage()}`,
    );
  } finally {
    await stopChild(child);
    for (const name of [eventQueueName("push"), PUSH_QUEUE]) {
      const q = new Queue(name, { connection: { url: REDIS_URL }, prefix });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    await queue.close();
    await fcm?.close();
    await apns?.close();
    await db.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);

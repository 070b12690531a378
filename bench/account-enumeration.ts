/**
 * Does the answer's timing tell whether an address has an account? The Users subgraph alone over
 * HTTP, one request at a time, alternating the two kinds so that load on the machine hits both alike:
 *
 *   pnpm exec tsx bench/account-enumeration.ts [--rounds 100] [--keep]
 *
 * - signUp with a new address vs with an address of a verified account (each used once);
 * - requestPasswordReset for an existing account vs an unknown address.
 *
 * Users runs as its own process on a database of its own, `rounds` verified accounts seeded with
 * SQL. Requests are 200 ms apart, in a random order each round, so the work a request starts after answering (the writes and
 * the mail that differ by kind) never overlaps the next one's round trip. Every request comes from an address of its own (X-Forwarded-For, trusted from loopback), so
 * the per-address budgets are not what is measured. Reported per kind: p50/p90/p99 of the round
 * trip, and the difference of the medians. Mails are queued (nobody sends them); the queue is
 * removed at the end.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { Queue } from "bullmq";
import { generateSigningKeyJwk, loadRedisTarget, redisOptions } from "@hv/kit";
import { createUsersDb } from "@hv/users/src/db";
import { MAIL_QUEUE } from "@hv/users/src/mail/jobs";
import { freePort } from "../test/support/ports";
import { flag, percentile } from "./support/args";
import {
  benchDatabase,
  dropUnlessKept,
  expectData,
  jsonClient,
  printHeader,
  runBench,
  sleep,
  startChild,
  stopChild,
} from "./support/service";

/** Between requests: longer than the after-response work (a few statements and a queue add). */
const PAUSE_MS = 200;
const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { status email } }`;
const RESET = `mutation($email: String!) { requestPasswordReset(email: $email) }`;

function summary(label: string, times: number[]): { label: string; p50: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const f = (p: number) => percentile(sorted, p).toFixed(1);
  console.log(`${label.padEnd(44)} n=${sorted.length}  p50 ${f(50)} ms  p90 ${f(90)} ms  p99 ${f(99)} ms`);
  return { label, p50: percentile(sorted, 50) };
}

async function main(): Promise<void> {
  const rounds = flag("rounds", 100);
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  printHeader("account-enumeration.ts");

  const databaseUrl = await benchDatabase("users", "enum", stamp);
  const db = createUsersDb(databaseUrl);
  const client = jsonClient(1);
  const prefix = `hvbenchenum${stamp}`;
  let child: ChildProcess | undefined;
  try {
    await db.$executeRawUnsafe(
      `INSERT INTO users (id, email, password_hash, email_verified_at, display_name, birth_date, updated_at)
       SELECT gen_random_uuid(), 'taken-${stamp}-' || i || '@example.test', '!seeded', now(), 'Person ' || i, date '1990-01-01', now()
       FROM generate_series(1, ${rounds}) i`,
    );
    const port = await freePort();
    const env = {
      USERS_DATABASE_URL: databaseUrl,
      USERS_PORT: String(port),
      SUBGRAPH_HOST: "127.0.0.1",
      EVENTS_PREFIX: prefix,
      AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("bench-enum")]),
      LOG_LEVEL: "warn",
    };
    child = await startChild("subgraphs/users/src/index.ts", env, `http://127.0.0.1:${port}/readyz`);
    const url = `http://127.0.0.1:${port}/graphql`;
    const net = randomBytes(1)[0]!;
    let n = 0;
    const nextAddress = () => {
      n += 1;
      return `10.${net}.${(n >> 8) & 255}.${n & 255}`;
    };
    const timed = async (query: string, variables: Record<string, unknown>): Promise<number> => {
      const started = performance.now();
      expectData(
        await client.post<{ data?: unknown }>(
          url,
          { query, variables },
          { "x-forwarded-for": nextAddress() },
        ),
      );
      const elapsed = performance.now() - started;
      // Let the request's after-response work finish, so it does not slow the next one down.
      await sleep(PAUSE_MS);
      return elapsed;
    };
    const signUpInput = (email: string) => ({
      input: {
        email,
        password: "bench passphrase, long enough",
        displayName: "Sam",
        birthDate: "1990-01-01",
      },
    });

    // Warm-up: compilation, pools, argon2's first allocation.
    for (let i = 0; i < 5; i += 1) await timed(SIGN_UP, signUpInput(`warm-${stamp}-${i}@example.test`));

    const times = {
      newSignUp: [] as number[],
      takenSignUp: [] as number[],
      knownReset: [] as number[],
      unknownReset: [] as number[],
    };
    for (let i = 1; i <= rounds; i += 1) {
      const taken = `taken-${stamp}-${i}@example.test`;
      const fresh = `${randomUUID()}@example.test`;
      // A random order each round, so no kind always follows another's after-response work.
      const steps: Array<() => Promise<void>> = [
        async () => void times.newSignUp.push(await timed(SIGN_UP, signUpInput(fresh))),
        async () => void times.takenSignUp.push(await timed(SIGN_UP, signUpInput(taken))),
        async () => void times.knownReset.push(await timed(RESET, { email: taken })),
        async () =>
          void times.unknownReset.push(await timed(RESET, { email: `${randomUUID()}@example.test` })),
      ];
      for (let j = steps.length - 1; j > 0; j -= 1) {
        const k = randomInt(j + 1);
        [steps[j], steps[k]] = [steps[k]!, steps[j]!];
      }
      for (const step of steps) await step();
    }
    const a = summary("signUp, new address", times.newSignUp);
    const b = summary("signUp, address of a verified account", times.takenSignUp);
    console.log(`  difference of medians: ${(b.p50 - a.p50).toFixed(1)} ms`);
    const c = summary("requestPasswordReset, unknown address", times.unknownReset);
    const d = summary("requestPasswordReset, existing account", times.knownReset);
    console.log(`  difference of medians: ${(d.p50 - c.p50).toFixed(1)} ms`);
  } finally {
    client.close();
    await stopChild(child);
    const queue = new Queue(MAIL_QUEUE, { connection: redisOptions(loadRedisTarget(process.env)), prefix });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await db.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);

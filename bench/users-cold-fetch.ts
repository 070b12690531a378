/**
 * What one cold `_entities` fetch of one User costs the Users subgraph: the gateway's fetch of a
 * sender it has never seen, as nobody (gateway/src/public-user-cache.ts), one at a time.
 *
 *   pnpm exec tsx bench/users-cold-fetch.ts [--fetches 1000] [--rounds 4] [--warm-up 300] [--gap-ms 0] [--compare DIR] [--profile DIR] [--keep]
 *
 * Users runs built (BENCH_RUN=source: from source) with a database and a redis-server of its own,
 * so every Redis command counted is its own. `--compare DIR` starts a second Users from DIR's
 * build ("before"; this checkout's is "after"), with its own database and Redis, and the two run
 * in interleaved rounds (which side goes first alternates). Each round, per side: `fetches` people
 * never asked for (the profile cache misses), one at a time, then the same people again (warm).
 * `--warm-up` fetches of people of their own go first (the JIT). `--gap-ms N` waits N ms after
 * each fetch (33: one fetch per message at 30 msg/s, the process idle between), and each round then
 * also measures an idle phase as long, no fetch sent: its CPU per gap is the process's own
 * background, part of the other phases' figures. `--profile DIR` writes a V8 CPU
 * profile of each Users (DIR/users-<side>-<run>/) when it stops.
 *
 * Reported per round and side: Users' CPU-µs per fetch (/proc, all threads), its read + write
 * system calls per fetch, the round trip's median, and the Redis commands per fetch by name (INFO commandstats); at the end
 * the SQL transactions per cold fetch (pg_stat_database.xact_commit of the side's database, read
 * after the 10 s PostgreSQL may hold a backend's counts; warm fetches run none).
 */
import { randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { generateSigningKeyJwk } from "@hv/kit";
import { createUsersDb, type UsersDb } from "@hv/users/src/db";
import { Redis } from "ioredis";
import { argument, flag, percentile } from "./support/args";
import {
  benchDatabase,
  cpuSecondsOf,
  dropUnlessKept,
  expectData,
  freePort,
  jsonClient,
  loadAverage,
  printHeader,
  ROOT,
  runBench,
  sleep,
  startChild,
  stopChild,
  syscallsOf,
} from "./support/service";

/** The gateway's fetch of a sender as nobody (the planner's text for `sender { displayName }`). */
const PUBLIC_SENDER = `query ChatMyEvents__users__2($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;

interface Side {
  name: string;
  databaseUrl: string;
  db: UsersDb;
  ids: string[];
  redisServer: ChildProcess;
  redis: Redis;
  users: ChildProcess;
  url: string;
  cpuMicros: { cold: string[]; warm: string[]; idle: string[] };
  transactionsBefore: number;
}

async function startRedisServer(): Promise<{ server: ChildProcess; url: string }> {
  const port = await freePort();
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    const up = await probe
      .connect()
      .then(() => probe.ping())
      .then(() => true)
      .catch(() => false);
    probe.disconnect();
    if (up) return { server, url };
    await sleep(50);
  }
  throw new Error("redis-server never answered");
}

/** Calls per command since the server started. */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.info("commandstats")).matchAll(/cmdstat_([\w|]+):calls=(\d+)/g))
    calls.set(match[1]!, Number(match[2]));
  return calls;
}

async function transactions(db: UsersDb): Promise<number> {
  const [row] = await db.$queryRawUnsafe<Array<{ n: bigint }>>(
    `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return Number(row!.n);
}

async function main(): Promise<void> {
  const fetches = flag("fetches", 1000);
  const rounds = flag("rounds", 4);
  const warmUp = flag("warm-up", 300);
  const gapMs = argument("gap-ms") === undefined ? 0 : flag("gap-ms", 0);
  const compareWith = argument("compare") === undefined ? undefined : path.resolve(argument("compare")!);
  const profileDir = argument("profile");
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  printHeader("users-cold-fetch.ts");

  const client = jsonClient(1);
  const sides: Side[] = [];
  try {
    for (const [name, from] of [["after", ROOT], ...(compareWith ? [["before", compareWith]] : [])] as Array<
      [string, string]
    >) {
      const databaseUrl = await benchDatabase("users", `cold${name}`, stamp);
      const db = createUsersDb(databaseUrl);
      const people = warmUp + fetches * rounds;
      await db.$executeRawUnsafe(
        `INSERT INTO users (id, email, password_hash, email_verified_at, display_name, bio, birth_date, gender, genders_of_interest, interests, updated_at)
         SELECT gen_random_uuid(), 'bench-${stamp}-' || i || '@example.test', 'not a hash', now(), 'Person ' || i, 'likes long walks',
                date '1970-01-01' + (i % 15000), (CASE WHEN i % 2 = 0 THEN 'WOMAN' ELSE 'MAN' END)::"Gender",
                '{MAN,WOMAN}'::"Gender"[], '{hiking,jazz}', now()
         FROM generate_series(1, ${people}) i`,
      );
      await db.$executeRawUnsafe(`VACUUM ANALYZE users`);
      const ids = (
        await db.$queryRawUnsafe<Array<{ id: string }>>(`SELECT id::text AS id FROM users ORDER BY email`)
      ).map((row) => row.id);
      const { server: redisServer, url: redisUrl } = await startRedisServer();
      const port = await freePort();
      const users = await startChild(
        path.join(from, "subgraphs/users/src/index.ts"),
        {
          USERS_DATABASE_URL: databaseUrl,
          USERS_PORT: String(port),
          SUBGRAPH_HOST: "127.0.0.1",
          REDIS_URL: redisUrl,
          EVENTS_PREFIX: `hvbenchcold${name}${stamp}`,
          AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("bench-users")]),
          AUTH_REVOCATION_ASSERTION_SECRET: randomBytes(32).toString("base64url"),
        },
        `http://127.0.0.1:${port}/readyz`,
        profileDir
          ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `users-${name}-${stamp}`)}`]
          : [],
      );
      sides.push({
        name,
        databaseUrl,
        db,
        ids,
        redisServer,
        redis: new Redis(redisUrl),
        users,
        url: `http://127.0.0.1:${port}/graphql`,
        cpuMicros: { cold: [], warm: [], idle: [] },
        transactionsBefore: 0,
      });
    }

    const fetch = async (side: Side, id: string) => {
      const data = expectData(
        await client.post<{ data?: { _entities: Array<{ displayName: string } | null> } }>(side.url, {
          query: PUBLIC_SENDER,
          variables: { representations: [{ __typename: "User", id }] },
        }),
      );
      if (!data._entities[0]) throw new Error(`${id}: no profile`);
    };
    /** `ids` fetched one at a time; `per` the count the figures are divided by. */
    const run = async (side: Side, ids: string[], per = ids.length) => {
      const pid = side.users.pid!;
      const [cpu, syscalls, calls] = [cpuSecondsOf(pid), syscallsOf(pid), await commandCalls(side.redis)];
      const latencies: number[] = [];
      if (ids.length === 0) await sleep(per * gapMs);
      for (const id of ids) {
        const at = performance.now();
        await fetch(side, id);
        latencies.push(performance.now() - at);
        if (gapMs > 0) await sleep(gapMs);
      }
      const after = await commandCalls(side.redis);
      // The bench's own INFO is one call each time.
      after.set("info", (after.get("info") ?? 0) - 1);
      const commands = [...after]
        .map(([name, n]) => [name, (n - (calls.get(name) ?? 0)) / per] as const)
        .filter(([, n]) => n >= 0.005)
        .map(([name, n]) => `${name} ${n.toFixed(2)}`)
        .join(", ");
      return {
        cpuMicros: ((cpuSecondsOf(pid) - cpu) * 1e6) / per,
        syscalls: (syscallsOf(pid) - syscalls) / per,
        commands,
        p50: percentile(
          latencies.sort((a, b) => a - b),
          50,
        ),
      };
    };

    for (const side of sides) {
      const people = side.ids.slice(0, warmUp);
      await run(side, people);
      await run(side, people);
    }
    // A backend may hold its counts for up to 10 s before pg_stat_database sees them.
    await sleep(11_000);
    for (const side of sides) side.transactionsBefore = await transactions(side.db);
    for (let round = 0; round < rounds; round += 1) {
      for (const side of round % 2 ? [...sides].reverse() : sides) {
        const people = side.ids.slice(warmUp + round * fetches, warmUp + (round + 1) * fetches);
        for (const phase of gapMs > 0 ? (["cold", "warm", "idle"] as const) : (["cold", "warm"] as const)) {
          const result = await run(side, phase === "idle" ? [] : people, people.length);
          side.cpuMicros[phase].push(result.cpuMicros.toFixed(0));
          console.log(
            `round ${round + 1}, ${side.name}, ${phase}: Users ${result.cpuMicros.toFixed(0)} CPU-µs per fetch, ` +
              `${result.syscalls.toFixed(2)} read + write system calls, round trip p50 ${result.p50.toFixed(2)} ms, Redis commands ${result.commands || "none"}; ` +
              `load average ${loadAverage()}`,
          );
        }
      }
    }
    await sleep(11_000);
    for (const side of sides) {
      const sql = ((await transactions(side.db)) - side.transactionsBefore) / (fetches * rounds);
      console.log(
        `${side.name}: Users CPU-µs per fetch by round, cold ${side.cpuMicros.cold.join(", ")}; warm ${side.cpuMicros.warm.join(", ")}; ` +
          (gapMs > 0 ? `idle, per gap: ${side.cpuMicros.idle.join(", ")}; ` : "") +
          `SQL transactions per cold fetch ${sql.toFixed(2)}`,
      );
    }
  } finally {
    client.close();
    for (const side of sides) {
      await stopChild(side.users);
      side.redis.disconnect();
      side.redisServer.kill();
      await side.db.$disconnect();
      await dropUnlessKept(side.databaseUrl, keep);
    }
  }
}

runBench(main);

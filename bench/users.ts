/**
 * The Users subgraph alone over HTTP: profile entity fetches, logIn and refreshSession.
 *
 *   pnpm exec tsx bench/users.ts [--requests 400] [--concurrency 8] [--logins 200] [--refreshes 1000] [--keep]
 *     [--nobody 2000] [--entities-only] [--assertion-rounds 4] [--profile DIR]
 *
 * Users runs as its own process (built, as deployed; BENCH_RUN=source: node --import tsx subgraphs/users/src/index.ts) on a database of
 * its own, with `requests` × 50 people seeded with SQL, all with the same argon2id password hash
 * (hashPassword's parameters). `concurrency` clients in a closed loop, each phase a fixed count:
 *
 * - `_entities` for a page of 50 Users (displayName, age, bio, interests: what the gateway sends
 *   Users for a page of people), signed in as one of 20 viewers. Cold: `requests` pages never asked
 *   for before (the profile cache misses, one SQL statement per page); warm: the same pages again
 *   (all 50 from Redis); then one User a request (warm): what a single profile read costs.
 * - The gateway's fetch of one public profile (`_entities` of 1 User, displayName, no token: the
 *   user cache's fetch as nobody, gateway/src/public-user-cache.ts): `nobody` people never asked
 *   for (the profile cache misses: what a first-seen sender costs Users), then the same again warm.
 * - One User a request (warm) signed in, in `assertion-rounds` interleaved rounds: as the gateway
 *   sends it with its revocation assertion (kit/src/auth/revocation-assertions.ts: Users skips its
 *   revocation MGET) and without (Users asks Redis); each round's CPU per request both ways, and
 *   the MGETs Redis ran meanwhile (INFO commandstats: every client's, this bench's Users among them).
 * - logIn: `logins` logins, each to an account and from an address (X-Forwarded-For, trusted from
 *   loopback) of its own, so the per-account and per-address budgets are not what is measured.
 * - refreshSession: `refreshes` rotations, each client spending its session's newest refresh token.
 *
 * `--entities-only` skips logIn and refreshSession; `--profile DIR` writes a V8 CPU profile of Users
 * (DIR/users-<run>/) when it stops.
 *
 * Reported per phase: operations per second, the round trip p50/p99 and the Users process's CPU
 * time per operation (all its threads: argon2 runs on libuv's pool); PostgreSQL and Redis are not
 * included.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import {
  accessTokenDigest,
  createAccessTokenIssuer,
  generateSigningKeyJwk,
  loadUsersConfig,
  REVOCATION_ASSERTION_HEADER,
  revocationAssertions,
} from "@hv/kit";
import { createUsersDb } from "@hv/users/src/db";
import { Redis } from "ioredis";
import { hashPassword } from "@hv/users/src/modules/passwords";
import { freePort } from "../test/support/ports";
import { flag } from "./support/args";
import {
  benchDatabase,
  closedLoop,
  describeLoop,
  expectData,
  jsonClient,
  printHeader,
  startChild,
  stopChild,
  dropUnlessKept,
  runBench,
  syscallsOf,
} from "./support/service";

const PAGE = 50;
const PASSWORD = "bench password, long enough";

/** What the gateway sends Users for a page of people (bench/nearby-gateway.ts's query, Users' part). */
const PROFILES = `query($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on User { displayName age bio interests } }
}`;
/** The gateway's fetch of a sender as nobody (the planner's text for `sender { displayName }`). */
const PUBLIC_SENDER = `query ChatMyEvents__users__2($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;
const LOG_IN = `mutation($input: LogInInput!) {
  logIn(input: $input) { accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt user { id displayName } }
}`;
const REFRESH = `mutation($refreshToken: String!) {
  refreshSession(refreshToken: $refreshToken) { accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt }
}`;

interface Session {
  accessToken: string;
  refreshToken: string;
}

async function main(): Promise<void> {
  const requests = flag("requests", 400);
  const concurrency = flag("concurrency", 8);
  const logins = flag("logins", 200);
  const refreshes = flag("refreshes", 1000);
  const nobody = flag("nobody", 2000);
  const assertionRounds = flag("assertion-rounds", 4);
  const entitiesOnly = process.argv.includes("--entities-only");
  const profileIndex = process.argv.indexOf("--profile");
  const profileDir = profileIndex < 0 ? undefined : process.argv[profileIndex + 1];
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  printHeader("users.ts");

  const databaseUrl = await benchDatabase("users", "users", stamp);
  const db = createUsersDb(databaseUrl);
  const client = jsonClient(concurrency);
  let child: ChildProcess | undefined;
  try {
    // The pages' people first, then `nobody` people of the public fetches' own.
    const people = Math.max(requests * PAGE, logins) + nobody;
    const passwordHash = await hashPassword(PASSWORD);
    await db.$executeRawUnsafe(
      `INSERT INTO users (id, email, password_hash, email_verified_at, display_name, bio, birth_date, gender, genders_of_interest, interests, updated_at)
       SELECT gen_random_uuid(), 'bench-${stamp}-' || i || '@example.test', $1, now(), 'Person ' || i, 'likes long walks',
              date '1970-01-01' + (i % 15000), (CASE WHEN i % 2 = 0 THEN 'WOMAN' ELSE 'MAN' END)::"Gender",
              '{MAN,WOMAN}'::"Gender"[], '{hiking,jazz}', now()
       FROM generate_series(1, ${people}) i`,
      passwordHash,
    );
    await db.$executeRawUnsafe(`VACUUM ANALYZE users`);
    const rows = await db.$queryRawUnsafe<Array<{ id: string; email: string }>>(
      `SELECT id::text AS id, email FROM users ORDER BY email`,
    );
    console.log(`seeded ${rows.length.toLocaleString("en")} people`);

    const port = await freePort();
    const env = {
      USERS_DATABASE_URL: databaseUrl,
      USERS_PORT: String(port),
      SUBGRAPH_HOST: "127.0.0.1",
      EVENTS_PREFIX: `hvbenchusers${stamp}`,
      AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("bench-users")]),
      AUTH_REVOCATION_ASSERTION_SECRET: randomBytes(32).toString("base64url"),
    };
    const assertions = revocationAssertions(env.AUTH_REVOCATION_ASSERTION_SECRET);
    const config = loadUsersConfig({ ...process.env, ...env });
    const issuer = createAccessTokenIssuer({
      keys: config.accessTokens.signingKeys,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      ttlSeconds: config.accessTokens.ttlSeconds,
    });
    child = await startChild(
      "subgraphs/users/src/index.ts",
      env,
      `http://127.0.0.1:${port}/readyz`,
      profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `users-${stamp}`)}`] : [],
    );
    const pid = child.pid!;
    const url = `http://127.0.0.1:${port}/graphql`;
    const viewers: string[] = [];
    for (let i = 0; i < 20; i += 1)
      viewers.push(
        (await issuer.issue({ userId: rows[i]!.id, sessionId: randomUUID(), role: "USER" })).token,
      );

    // The gateway's public fetch of one sender, as nobody: cold (never asked for), then warm.
    const strangers = rows.slice(rows.length - nobody);
    const publicSender = async (i: number) => {
      const data = expectData(
        await client.post<{ data?: { _entities: Array<{ displayName: string } | null> } }>(url, {
          query: PUBLIC_SENDER,
          variables: { representations: [{ __typename: "User", id: strangers[i]!.id }] },
        }),
      );
      if (!data._entities[0]) throw new Error(`stranger ${i}: no profile`);
    };
    for (const phase of nobody > 0 ? ["cold", "warm"] : []) {
      const syscalls = syscallsOf(pid);
      const loop = await closedLoop(nobody, concurrency, pid, publicSender);
      const perFetch = (syscallsOf(pid) - syscalls) / nobody;
      const label = `_entities, 1 User as nobody, profile cache ${phase}, ${concurrency} clients`;
      console.log(
        `${describeLoop(label, loop, "Users")}; ${perFetch.toFixed(1)} read + write system calls each`,
      );
    }

    const pages = Array.from({ length: requests }, (_, page) =>
      rows.slice(page * PAGE, (page + 1) * PAGE).map((row) => ({ __typename: "User", id: row.id })),
    );
    const profiles = async (page: number, size = PAGE, vouched = false) => {
      const token = viewers[page % viewers.length]!;
      const data = expectData(
        await client.post<{ data?: { _entities: Array<{ displayName: string } | null> } }>(
          url,
          { query: PROFILES, variables: { representations: pages[page]!.slice(0, size) } },
          {
            authorization: `Bearer ${token}`,
            ...(vouched
              ? { [REVOCATION_ASSERTION_HEADER]: assertions.sign(accessTokenDigest(token), Date.now()) }
              : {}),
          },
        ),
      );
      if (data._entities.filter(Boolean).length !== size)
        throw new Error(`page ${page}: not ${size} profiles`);
    };
    // Warm-up on people outside the measured pages' range is not possible (every person is in a
    // page), so it uses the first `concurrency` pages, which the cold phase then skips.
    const warmUp = Math.min(concurrency, Math.floor(requests / 4));
    for (let page = 0; page < warmUp; page += 1) await profiles(page);

    const cold = await closedLoop(requests - warmUp, concurrency, pid, (i) => profiles(warmUp + i));
    console.log(
      describeLoop(`_entities, ${PAGE} Users, profile cache cold, ${concurrency} clients`, cold, "Users"),
    );
    const warm = await closedLoop(requests - warmUp, concurrency, pid, (i) => profiles(warmUp + i));
    console.log(
      describeLoop(`_entities, ${PAGE} Users, profile cache warm, ${concurrency} clients`, warm, "Users"),
    );
    // One profile (a match, a conversation's other member, a message's sender), warm: the floor of a request.
    const single = await closedLoop(requests - warmUp, concurrency, pid, (i) => profiles(warmUp + i, 1));
    console.log(
      describeLoop(`_entities, 1 User, profile cache warm, ${concurrency} clients`, single, "Users"),
    );
    // The same, with and without the gateway's revocation assertion, in interleaved rounds.
    const perRequest: Record<string, string[]> = { "without the assertion": [], "with the assertion": [] };
    const mgetsPerRequest: Record<string, string[]> = {
      "without the assertion": [],
      "with the assertion": [],
    };
    const stats = new Redis(config.redis.url);
    const mgets = async () =>
      Number(/cmdstat_mget:calls=(\d+)/.exec(await stats.info("commandstats"))?.[1] ?? 0);
    const measured = requests - warmUp;
    for (let round = 0; round < assertionRounds; round += 1) {
      // Which goes first alternates by round; each loop asks every measured page 5 times.
      for (const vouched of round % 2 ? [true, false] : [false, true]) {
        const mgetsBefore = await mgets();
        const loop = await closedLoop(measured * 5, concurrency, pid, (i) =>
          profiles(warmUp + (i % measured), 1, vouched),
        );
        const mgetsRun = (await mgets()) - mgetsBefore;
        if (loop.failed) throw new Error(`assertion round: ${loop.errors.join(" | ")}`);
        const key = vouched ? "with the assertion" : "without the assertion";
        perRequest[key]!.push(((loop.cpuSeconds * 1e6) / loop.done).toFixed(0));
        mgetsPerRequest[key]!.push((mgetsRun / loop.done).toFixed(2));
      }
    }
    stats.disconnect();
    for (const [key, values] of Object.entries(perRequest))
      console.log(
        `_entities, 1 User, warm, ${key}: Users CPU µs per request by round ${values.join(", ")}; Redis MGETs per request ${mgetsPerRequest[key]!.join(", ")}`,
      );

    if (entitiesOnly) return;
    // logIn: account i from address 10.x.y.z of its own (a random /16 per run: the budgets live in
    // the shared Redis for 15 minutes).
    const net = randomBytes(1)[0]!;
    const address = (i: number) => `10.${net}.${(i >> 8) & 255}.${i & 255}`;
    const sessions: Session[] = [];
    const login = await closedLoop(logins, concurrency, pid, async (i) => {
      const data = expectData(
        await client.post<{ data?: { logIn: Session } }>(
          url,
          { query: LOG_IN, variables: { input: { email: rows[i]!.email, password: PASSWORD } } },
          { "x-forwarded-for": address(i) },
        ),
      );
      sessions.push(data.logIn);
    });
    console.log(describeLoop(`logIn (argon2id), ${concurrency} clients`, login, "Users"));

    // refreshSession: client c spends its own session's refresh tokens, one after the other.
    const chains = sessions.slice(0, concurrency);
    if (chains.length < concurrency) throw new Error("fewer sessions than clients: raise --logins");
    const free = [...chains]; // a chain is used by one client at a time
    const refresh = await closedLoop(refreshes, concurrency, pid, async () => {
      const session = free.pop()!;
      try {
        const data = expectData(
          await client.post<{ data?: { refreshSession: Session } }>(
            url,
            { query: REFRESH, variables: { refreshToken: session.refreshToken } },
            { "x-forwarded-for": "10.255.0.1" },
          ),
        );
        session.refreshToken = data.refreshSession.refreshToken;
      } finally {
        free.push(session);
      }
    });
    console.log(describeLoop(`refreshSession (rotation), ${concurrency} clients`, refresh, "Users"));
  } finally {
    client.close();
    await stopChild(child);
    await db.$disconnect();
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);

/**
 * Nearby through the gateway: the first page of 50 with each person's distance (Discovery),
 * profile (Users) and photos (Media), as a phone asks for it, over HTTP.
 *
 *   pnpm exec tsx bench/nearby-gateway.ts [--users 1000000] [--viewers 200] [--concurrency 16] [--seconds 15] [--processes] [--keep]
 *
 * Creates databases of its own for the four subgraphs, seeds the same people in Discovery
 * (bench/support/city.ts) and Users (SQL), clusters the locations (db:cluster-locations), starts
 * the whole system in this process (test/support/system.ts: four subgraphs, the media worker and
 * the gateway on free ports), and measures: latency p50/p99 of the request as the client sees it,
 * and the SQL statements each subgraph sent per request (Users and Discovery count every statement
 * their clients send; Media's are counted by PostgreSQL, pg_stat_database.xact_commit, which also
 * counts its own background work, so it is an upper bound), for a page of 10 and a page of 50,
 * with the Users profile cache cold (first visit of a page) and warm (the same viewer again); then
 * throughput with `--concurrency` clients for `--seconds`, and the Node CPU time per request.
 *
 * `--processes`: the deployment shape instead — Users, Discovery, Media and the gateway each a
 * process of its own (built, as deployed; BENCH_RUN=source: node --import tsx <package>/src/index.ts, as `npm start` runs them), this
 * process only the client. Latency and the services' CPU (from /proc) are measured; SQL
 * statements are not counted in this mode (the observers live in the services' processes).
 */
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";
import { createUsersDb } from "@hv/users/src/db";
import {
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
} from "@hv/prisma";
import { generateSigningKeyJwk, SUBGRAPH_NAMES, type SubgraphName } from "@hv/kit";
import { graphqlRequest, startSystem } from "../test/support/system";
import { benchPersonIdSql, seedCity } from "./support/city";
import { flag, percentile } from "./support/args";
import {
  benchTokenIssuer,
  cpuSecondsOf,
  freePort,
  printHeader,
  startChild,
  stopChild,
} from "./support/service";

const NEARBY_WITH_PROFILES = `query Nearby($first: Int) {
  nearby(first: $first) {
    edges { node { id distance { kilometres lessThanOneKilometre } displayName age bio interests photos { id } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

async function main(): Promise<void> {
  const users = flag("users", 1_000_000);
  const viewers = flag("viewers", 200);
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  const urls = Object.fromEntries(
    SUBGRAPH_NAMES.map((name) => {
      const url = new URL(process.env[databaseUrlEnvVar(name)] ?? defaultDatabaseUrl(name));
      url.pathname = `/hv_bench_gw_${stamp}_${name}`;
      return [name, url.toString()];
    }),
  ) as Record<SubgraphName, string>;
  printHeader("nearby-gateway.ts");
  for (const name of SUBGRAPH_NAMES) {
    await ensureDatabase(urls[name]);
    await migrateDeploy(name, urls[name]);
  }
  const discoveryDb = createDiscoveryDb(urls.discovery);
  const usersDb = createUsersDb(urls.users);
  const separate = process.argv.includes("--processes");
  let stop: (() => Promise<void>) | undefined;
  try {
    const started = performance.now();
    await seedCity(discoveryDb, users);
    await usersDb.$executeRawUnsafe(`
      INSERT INTO users (id, email, password_hash, display_name, bio, birth_date, gender, genders_of_interest, interests, updated_at)
      SELECT ${benchPersonIdSql("i")}, 'bench-' || i || '@example.test', '!seeded', 'Person ' || i, 'likes long walks',
             date '1970-01-01' + (i % 15000), (CASE WHEN i % 2 = 0 THEN 'WOMAN' ELSE 'MAN' END)::"Gender", '{MAN,WOMAN}'::"Gender"[],
             '{hiking,jazz}', now()
      FROM generate_series(1, ${users}) i`);
    await usersDb.$executeRawUnsafe(`VACUUM ANALYZE users`);
    const { seconds } = await clusterLocations(discoveryDb);
    // The seeding left gigabytes of dirty pages: flush them now, not during the measurement.
    await discoveryDb.$executeRawUnsafe(`CHECKPOINT`);
    console.log(
      `seeded ${users.toLocaleString("en")} people in Discovery and Users in ${((performance.now() - started) / 1000).toFixed(1)} s (clustering ${seconds.toFixed(1)} s)`,
    );

    const sample = await discoveryDb.$queryRawUnsafe<Array<{ id: string }>>(`
      SELECT p.user_id::text AS id FROM discovery_profiles p JOIN user_locations l USING (user_id)
      WHERE l.updated_at >= now() - interval '24 hours' AND p.visible AND NOT p.banned AND p.gender IS NOT NULL
      ORDER BY random() LIMIT ${viewers}`);
    const running = separate ? await startProcesses(urls, stamp) : await startInProcess(urls, stamp);
    stop = running.stop;
    const tokens = new Map<string, string>();
    for (const { id } of sample) tokens.set(id, await running.issueToken(id));
    const mediaCommits = async () => {
      const [row] = await discoveryDb.$queryRawUnsafe<Array<{ n: bigint }>>(
        `SELECT xact_commit AS n FROM pg_stat_database WHERE datname = '${new URL(urls.media).pathname.slice(1)}'`,
      );
      return Number(row?.n ?? 0);
    };
    const request = async (viewerId: string, first: number) => {
      const usersBefore = running.usersQueries?.length ?? 0;
      const discoveryBefore = running.discoveryQueries?.length ?? 0;
      const mediaBefore = await mediaCommits();
      const t0 = performance.now();
      const response = await graphqlRequest<{ nearby: { edges: unknown[] } }>(
        running.gatewayUrl,
        NEARBY_WITH_PROFILES,
        { first },
        { authorization: `Bearer ${tokens.get(viewerId)}` },
      );
      const ms = performance.now() - t0;
      if (response.body.errors) throw new Error(JSON.stringify(response.body.errors));
      return {
        ms,
        people: response.body.data?.nearby.edges.length ?? 0,
        users: (running.usersQueries?.length ?? 0) - usersBefore,
        discovery: (running.discoveryQueries?.length ?? 0) - discoveryBefore,
        // pg_stat_database is updated when a backend reports (at most every 500 ms on PG 15): read later.
        mediaBefore,
      };
    };

    // Warm-up (plans, JWKS, pools, the JIT of every process) on viewers the rounds below never ask for.
    for (let pass = 0; pass < 3; pass += 1) for (const { id } of sample.slice(0, 10)) await request(id, 50);
    for (const first of [10, 50]) {
      for (const cache of ["cold", "warm"] as const) {
        const times: number[] = [];
        const counts = { users: [] as number[], discovery: [] as number[], people: [] as number[] };
        const mediaStart = await mediaCommits();
        // "cold": viewers not asked for before at this page size (their people's profiles mostly
        // not in Users' cache); "warm": the same viewers again.
        const viewersOfRound =
          first === 10
            ? sample.slice(10, Math.floor(sample.length / 2) + 5)
            : sample.slice(Math.floor(sample.length / 2) + 5);
        for (const { id } of viewersOfRound) {
          const result = await request(id, first);
          times.push(result.ms);
          counts.users.push(result.users);
          counts.discovery.push(result.discovery);
          counts.people.push(result.people);
        }
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        const mediaPerRequest = ((await mediaCommits()) - mediaStart) / viewersOfRound.length;
        times.sort((a, b) => a - b);
        const statements = running.usersQueries
          ? `SQL per request: Discovery ${mean(counts.discovery).toFixed(2)} (max ${Math.max(...counts.discovery)}), ` +
            `Users ${mean(counts.users).toFixed(2)} (max ${Math.max(...counts.users)}), Media ≤ ${mediaPerRequest.toFixed(2)}`
          : `SQL statements not counted (--processes); Media commits ≤ ${mediaPerRequest.toFixed(2)} per request`;
        console.log(
          `first: ${first}, Users cache ${cache}, ${viewersOfRound.length} viewers, mean people ${mean(counts.people).toFixed(1)}: ` +
            `p50 ${percentile(times, 50).toFixed(1)} ms  p99 ${percentile(times, 99).toFixed(1)} ms; ${statements}`,
        );
      }
    }
    // Throughput: `--concurrency` clients asking for pages of 20 for `--seconds`, warm caches; the
    // services' Node CPU time per request (in-process: this whole process, the client included).
    const concurrency = flag("concurrency", 16);
    const runSeconds = flag("seconds", 15);
    const viewerIds = sample.map((row) => row.id);
    const cpuBefore = running.cpuSeconds();
    const startedAt = performance.now();
    const deadline = startedAt + runSeconds * 1000;
    const times: number[] = [];
    let failures = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, client) => {
        for (let i = client; performance.now() < deadline; i += concurrency) {
          try {
            times.push((await request(viewerIds[i % viewerIds.length]!, 20)).ms);
          } catch {
            failures += 1;
          }
        }
      }),
    );
    const wallSeconds = (performance.now() - startedAt) / 1000;
    const usedSeconds = running.cpuSeconds() - cpuBefore;
    times.sort((a, b) => a - b);
    console.log(
      `throughput, ${concurrency} concurrent clients, first: 20, ${runSeconds} s: ${(times.length / wallSeconds).toFixed(0)} requests/s ` +
        `(${failures} failed), p50 ${percentile(times, 50).toFixed(1)} ms  p99 ${percentile(times, 99).toFixed(1)} ms; ` +
        `Node CPU ${(usedSeconds / wallSeconds).toFixed(2)} cores = ${((usedSeconds * 1000) / Math.max(1, times.length)).toFixed(1)} CPU-ms per request ` +
        `(${running.cpuCounts}; PostgreSQL and Redis not included)`,
    );
  } finally {
    await stop?.();
    await discoveryDb.$disconnect();
    await usersDb.$disconnect();
    if (keep) console.log(`kept ${Object.values(urls).join(" ")}`);
    else for (const name of SUBGRAPH_NAMES) await dropDatabase(urls[name]);
  }
}

/** What the measurement needs of the running system, in either mode. */
interface BenchSystem {
  gatewayUrl: string;
  issueToken(userId: string): Promise<string>;
  /** Every SQL statement Users / Discovery sent (in-process only). */
  usersQueries?: string[];
  discoveryQueries?: string[];
  /** CPU seconds used so far by what `cpuCounts` says. */
  cpuSeconds(): number;
  cpuCounts: string;
  stop(): Promise<void>;
}

/** The whole system in this process (test/support/system.ts), with statement observers. */
async function startInProcess(urls: Record<SubgraphName, string>, stamp: string): Promise<BenchSystem> {
  const system = await startSystem({
    USERS_DATABASE_URL: urls.users,
    DISCOVERY_DATABASE_URL: urls.discovery,
    CHAT_DATABASE_URL: urls.chat,
    MEDIA_DATABASE_URL: urls.media,
    EVENTS_PREFIX: `hvbench_${stamp}`,
    LOG_LEVEL: "warn",
  });
  return {
    gatewayUrl: system.gatewayUrl,
    issueToken: async (userId) =>
      (await system.accessTokens.issue({ userId, sessionId: crypto.randomUUID(), role: "USER" })).token,
    usersQueries: system.usersQueries,
    discoveryQueries: system.discoveryQueries,
    cpuSeconds: () => {
      const used = process.cpuUsage();
      return (used.user + used.system) / 1e6;
    },
    cpuCounts: "gateway, subgraphs and client in one process",
    stop: () => system.stop(),
  };
}

/** Users, Discovery, Media and the gateway as processes of their own, as deployed. */
async function startProcesses(urls: Record<SubgraphName, string>, stamp: string): Promise<BenchSystem> {
  const key = generateSigningKeyJwk("bench-nearby");
  const ports = {
    users: await freePort(),
    discovery: await freePort(),
    media: await freePort(),
    files: await freePort(),
    gateway: await freePort(),
    metrics: await freePort(),
  };
  const env = {
    LOG_LEVEL: "warn",
    HOST: "127.0.0.1",
    AUTH_SIGNING_KEYS: JSON.stringify([key]),
    AUTH_JWKS_URL: `http://127.0.0.1:${ports.users}/.well-known/jwks.json`,
    EVENTS_PREFIX: `hvbench_${stamp}`,
    USERS_DATABASE_URL: urls.users,
    DISCOVERY_DATABASE_URL: urls.discovery,
    CHAT_DATABASE_URL: urls.chat,
    MEDIA_DATABASE_URL: urls.media,
    USERS_PORT: String(ports.users),
    DISCOVERY_PORT: String(ports.discovery),
    MEDIA_PORT: String(ports.media),
    MEDIA_FILES_PORT: String(ports.files),
    MEDIA_LOCAL_DIR: path.join(os.tmpdir(), `hv-bench-media-${stamp}`),
    GATEWAY_PORT: String(ports.gateway),
    GATEWAY_METRICS_PORT: String(ports.metrics),
    USERS_URL: `http://127.0.0.1:${ports.users}/graphql`,
    DISCOVERY_URL: `http://127.0.0.1:${ports.discovery}/graphql`,
    MEDIA_URL: `http://127.0.0.1:${ports.media}/graphql`,
    // Not started: the nearby query does not reach Chat.
    CHAT_URL: "http://127.0.0.1:9/graphql",
    // The load comes from one address: measure the system, not the edge's budgets.
    GATEWAY_RATE_LIMIT_IP: "100000000/1m",
    GATEWAY_RATE_LIMIT_USER: "100000000/1m",
  };
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    for (const child of [...children].reverse()) await stopChild(child);
  };
  try {
    const readyz = (port: number) => `http://127.0.0.1:${port}/readyz`;
    children.push(await startChild("subgraphs/users/src/index.ts", env, readyz(ports.users)));
    children.push(await startChild("subgraphs/discovery/src/index.ts", env, readyz(ports.discovery)));
    children.push(await startChild("subgraphs/media/src/index.ts", env, readyz(ports.media)));
    children.push(await startChild("gateway/src/index.ts", env, readyz(ports.gateway)));
  } catch (error) {
    await stopAll();
    throw error;
  }
  const issuer = benchTokenIssuer(key);
  return {
    gatewayUrl: `http://127.0.0.1:${ports.gateway}/graphql`,
    issueToken: async (userId) =>
      (await issuer.issue({ userId, sessionId: crypto.randomUUID(), role: "USER" })).token,
    cpuSeconds: () => children.reduce((sum, child) => sum + cpuSecondsOf(child.pid!), 0),
    cpuCounts: "gateway, Users, Discovery and Media processes; the client not included",
    stop: stopAll,
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

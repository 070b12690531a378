/**
 * The latency one client adds on issue #18's `user(id)` through our gateway over calling the Users
 * subgraph directly, and the gateway's CPU and system calls per request meanwhile: one Users
 * process, one gateway in front of it (two with `--compare DIR`: this checkout's, "after", and
 * DIR's, "before"), one client asking each in turn, the order rotating every request.
 *
 *   pnpm exec tsx bench/gateway-latency.ts [--users 2000] [--requests 2000] [--compare /other/checkout] [--client text|apq|safelist] [--chrt 10] [--private-redis] [--hold 0] [--profile DIR] [--timeline]
 *
 * `--client apq` sends the gateways the query's persisted hash alone (`extensions.persistedQuery`,
 * registered once with its text first), as Apollo's APQ link does; `safelist` runs the gateways with
 * `GATEWAY_OPERATIONS=safelist` and sends the manifest's `MyBlockedUsers` (a Users-only query) by
 * its id alone; `text` (default) sends the text.
 *
 * `--chrt N` (root) runs Users, the gateways and this client under SCHED_FIFO priority N for the
 * measured requests only (`chrt -a -f -p`), then puts them back: on a shared machine, latency
 * without it is the scheduler's. `--private-redis` gives Users and the gateways a `redis-server` of
 * their own (under `--chrt` too), so the admission's round trip is not the shared Redis's queue. `--hold S` keeps asking once a second for S seconds after the
 * measurement, printing the gateways' pids, so `strace -f -tt -p <pid>` can watch single requests.
 * `--profile DIR` writes each gateway's V8 CPU profile to DIR/gateway-<name>-<stamp>/ when it exits
 * (bench/support/profile-summary.ts reads them). `--timeline` loads bench/support/request-timeline.ts
 * into each gateway and prints the median time of each step of a request (from its arrival) over
 * the measured requests; its marks cost CPU, so CPU figures of a `--timeline` run are not the gateway's.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { generateSigningKeyJwk } from "@hv/kit";
import { dropDatabase } from "@hv/prisma";
import pg from "pg";
import { startRedisServer, type RedisServer } from "../test/support/redis-server";
import { argument, flag, percentile } from "./support/args";
import { benchPersonIdSql } from "./support/city";
import {
  benchDatabase,
  benchTokenIssuer,
  cpuSecondsOf,
  freePort,
  jsonClient,
  loadAverage,
  printHeader,
  ROOT,
  sleep,
  startChild,
  stopChild,
  subgraphsEnv,
  syscallsOf,
  threadStatsOf,
} from "./support/service";

const QUERY = `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`;
const PERSISTED = {
  persistedQuery: { version: 1, sha256Hash: createHash("sha256").update(QUERY).digest("hex") },
};

/** SCHED_FIFO at `priority` (or back to SCHED_OTHER with 0) for every thread of each process. */
function schedule(pids: number[], priority: number): void {
  for (const pid of pids) {
    execFileSync(
      "chrt",
      priority > 0 ? ["-a", "-f", "-p", String(priority), String(pid)] : ["-a", "-o", "-p", "0", String(pid)],
    );
  }
}

/** Intervals between a request's marks (bench/support/request-timeline.ts), in the order they usually come. */
const TIMELINE_STEPS: Array<[from: string, to: string]> = [
  ["received", "bodyRead"],
  ["bodyRead", "admissionSent"],
  ["admissionSent", "redisWrite"],
  ["redisWrite", "admissionAnswered"],
  ["admissionSent", "admissionAnswered"],
  ["admissionSent", "context"],
  ["context", "executorStart"],
  ["executorStart", "fetchCreated"],
  ["executorStart", "admissionAnswered"],
  ["admissionAnswered", "fetchCreated"],
  ["admissionAnswered", "assertionSigned"],
  ["assertionSigned", "fetchCreated"],
  ["fetchCreated", "fetchWrite"],
  ["fetchCreated", "fetchWritten"],
  ["fetchWritten", "fetchHeaders"],
  ["fetchHeaders", "fetchDone"],
  ["fetchDone", "answerEnd"],
  ["answerEnd", "answerWrite"],
  ["answerEnd", "finished"],
  ["received", "answerWrite"],
  ["received", "finished"],
];

/** Median of each mark (ms after the request arrived) and of each interval of TIMELINE_STEPS. */
function printTimeline(name: string, file: string): void {
  const requests = JSON.parse(readFileSync(file, "utf8")) as Array<Record<string, number>>;
  const median = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  const marks = [...new Set(requests.flatMap((marks) => Object.keys(marks)))];
  const at = marks
    .map((mark) => {
      const values = requests.flatMap((marks) => (marks[mark] === undefined ? [] : [marks[mark]]));
      return { mark, median: median(values), share: values.length / requests.length };
    })
    .sort((a, b) => a.median - b.median);
  console.log(
    `timeline of ${name}, ${requests.length} requests (median ms after arrival; share of requests with the mark):`,
  );
  for (const { mark, median: ms, share } of at) {
    console.log(
      `    ${mark.padEnd(18)} ${ms.toFixed(3)}${share < 1 ? ` (${(share * 100).toFixed(0)}%)` : ""}`,
    );
  }
  console.log(`  intervals (median ms; p90):`);
  for (const [from, to] of TIMELINE_STEPS) {
    const values = requests.flatMap((marks) =>
      marks[from] === undefined || marks[to] === undefined ? [] : [marks[to] - marks[from]],
    );
    if (values.length === 0) continue;
    const sorted = [...values].sort((a, b) => a - b);
    console.log(
      `    ${`${from} → ${to}`.padEnd(40)} ${percentile(sorted, 50).toFixed(3)}; ${percentile(sorted, 90).toFixed(3)}`,
    );
  }
}

async function main(): Promise<void> {
  const users = flag("users", 2_000);
  const requests = flag("requests", 2_000);
  const hold = flag("hold", 0);
  const priority = flag("chrt", 0);
  const compareWith = argument("compare") === undefined ? undefined : path.resolve(argument("compare")!);
  const profileDir = argument("profile");
  const timeline = process.argv.includes("--timeline");
  const clientMode = argument("client") ?? "text";
  const privateRedis = process.argv.includes("--private-redis");
  if (clientMode !== "text" && clientMode !== "apq" && clientMode !== "safelist")
    throw new Error("--client is text, apq or safelist");
  const safelisted = (
    JSON.parse(readFileSync(path.join(ROOT, "operations/persisted-query-manifest.json"), "utf8")) as {
      operations: Array<{ id: string; name: string; body: string }>;
    }
  ).operations.find((operation) => operation.name === "MyBlockedUsers")!;
  const stamp = Date.now().toString(36);
  printHeader("gateway-latency.ts");
  const usersUrl = await benchDatabase("users", "lat_users", stamp);
  const children: ChildProcess[] = [];
  const client = jsonClient(4);
  let redisServer: RedisServer | undefined;
  try {
    if (privateRedis) redisServer = await startRedisServer();
    const seed = new pg.Client({ connectionString: usersUrl });
    await seed.connect();
    await seed.query(`
      INSERT INTO users (id, email, password_hash, display_name, bio, birth_date, gender, genders_of_interest, interests, updated_at)
      SELECT ${benchPersonIdSql("i")}, 'bench-' || i || '@example.test', '!seeded', 'Person ' || i, 'likes long walks',
             date '1970-01-01' + (i % 15000), (CASE WHEN i % 2 = 0 THEN 'WOMAN' ELSE 'MAN' END)::"Gender", '{MAN,WOMAN}'::"Gender"[],
             '{hiking,jazz}', now()
      FROM generate_series(1, ${users}) i`);
    await seed.query(`VACUUM ANALYZE users`);
    const { rows: sample } = await seed.query<{ id: string }>(
      `SELECT id::text FROM users ORDER BY random() LIMIT 100`,
    );
    await seed.end();

    const key = generateSigningKeyJwk("bench-latency");
    const url = (port: number) => `http://127.0.0.1:${port}/graphql`;
    const readyz = (port: number) => `http://127.0.0.1:${port}/readyz`;
    const ports = {
      users: await freePort(),
      discovery: await freePort(),
      media: await freePort(),
      chat: await freePort(),
      files: await freePort(),
    };
    const env = {
      ...subgraphsEnv({
        // Only Users runs: the other subgraphs' URLs are never fetched by `user(id)`.
        urls: { users: usersUrl, discovery: usersUrl, media: usersUrl, chat: usersUrl },
        ports,
        signingKeys: JSON.stringify([key]),
        eventsPrefix: `hvlat_${stamp}`,
        mediaDir: path.join(os.tmpdir(), `hv-bench-media-${stamp}`),
      }),
      USERS_URL: url(ports.users),
      DISCOVERY_URL: url(ports.discovery),
      MEDIA_URL: url(ports.media),
      CHAT_URL: url(ports.chat),
      // One client from one address: measure the gateway, not the edge's budgets.
      GATEWAY_RATE_LIMIT_IP: "100000000/1m",
      GATEWAY_RATE_LIMIT_USER: "100000000/1m",
      ...(redisServer ? { REDIS_URL: `redis://127.0.0.1:${redisServer.port}` } : {}),
    };
    const usersChild = await startChild("subgraphs/users/src/index.ts", env, readyz(ports.users));
    children.push(usersChild);
    const gateways: Array<{ name: string; url: string; pid: number; timelineFile: string }> = [];
    for (const [name, from] of [["after", ROOT], ...(compareWith ? [["before", compareWith]] : [])] as Array<
      [string, string]
    >) {
      const port = await freePort();
      const timelineFile = path.join(os.tmpdir(), `hv-bench-timeline-${stamp}-${name}.json`);
      const child = await startChild(
        path.join(from, "gateway", "src", "index.ts"),
        {
          ...env,
          GATEWAY_PORT: String(port),
          ...(clientMode === "safelist" ? { GATEWAY_OPERATIONS: "safelist" } : {}),
          GATEWAY_METRICS_PORT: String(await freePort()),
          BENCH_TIMELINE_FILE: timelineFile,
        },
        readyz(port),
        [
          // BENCH_NODE_ARGS (space-separated) go on each gateway's command line, e.g. --trace-gc
          // with BENCH_SERVICE_STDOUT=inherit.
          ...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
          ...(profileDir
            ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `gateway-${name}-${stamp}`)}`]
            : []),
          ...(timeline
            ? [
                "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
                "--import",
                path.join(ROOT, "bench/support/request-timeline.ts"),
              ]
            : []),
        ],
      );
      children.push(child);
      gateways.push({ name: compareWith ? name : "ours", url: url(port), pid: child.pid!, timelineFile });
    }

    const issuer = benchTokenIssuer(key);
    const tokens = await Promise.all(
      sample.map(async ({ id }) => ({
        id,
        token: (await issuer.issue({ userId: id, sessionId: crypto.randomUUID(), role: "USER" })).token,
      })),
    );
    const byHash = new Set(clientMode === "apq" ? gateways.map((gateway) => gateway.url) : []);
    const bySafelistedId = new Set(clientMode === "safelist" ? gateways.map((gateway) => gateway.url) : []);
    const askSafelisted = async (target: string, index: number) => {
      const viewer = tokens[index % tokens.length]!;
      const reply = await client.post<{ data?: { myBlockedUserIds?: unknown }; errors?: unknown }>(
        target,
        bySafelistedId.has(target)
          ? { extensions: { persistedQuery: { version: 1, sha256Hash: safelisted.id } } }
          : { query: safelisted.body },
        { authorization: `Bearer ${viewer.token}` },
      );
      if (reply.status !== 200 || reply.body.errors || !Array.isArray(reply.body.data?.myBlockedUserIds)) {
        throw new Error(`${target} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      }
    };
    const ask = async (target: string, index: number, registering = false) => {
      if (clientMode === "safelist") return askSafelisted(target, index);
      const viewer = tokens[index % tokens.length]!;
      const other = tokens[(index + 1) % tokens.length]!;
      const variables = { id: other.id };
      const reply = await client.post<{ data?: { user?: { id?: string } }; errors?: unknown }>(
        target,
        !byHash.has(target)
          ? { query: QUERY, variables }
          : registering
            ? { query: QUERY, extensions: PERSISTED, variables }
            : { extensions: PERSISTED, variables },
        { authorization: `Bearer ${viewer.token}` },
      );
      if (reply.status !== 200 || reply.body.errors || reply.body.data?.user?.id !== other.id) {
        throw new Error(`${target} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      }
    };
    const targets = [{ name: "direct", url: url(ports.users), pid: usersChild.pid! }, ...gateways];
    // APQ: each gateway registers the text once (stored after its answer), then gets the hash alone.
    for (const gateway of byHash) await ask(gateway, 0, true);
    await sleep(200);
    for (let i = 0; i < 300; i += 1) for (const target of targets) await ask(target.url, i);

    const times = new Map<string, number[]>(targets.map((target) => [target.name, []]));
    const pids = [
      process.pid,
      ...children.map((child) => child.pid!),
      ...(redisServer ? [redisServer.pid] : []),
    ];
    const cpuBefore = targets.map((target) => cpuSecondsOf(target.pid));
    const callsBefore = targets.map((target) => syscallsOf(target.pid));
    const wakeupsBefore = targets.map((target) => threadStatsOf(target.pid).mainVoluntary);
    console.log(
      `measuring ${requests} requests each, load average ${loadAverage()}${priority > 0 ? `, SCHED_FIFO ${priority}` : ""}`,
    );
    // The probe starts its marks over on SIGUSR2 and writes them on the next one.
    if (timeline) for (const gateway of gateways) process.kill(gateway.pid, "SIGUSR2");
    if (priority > 0) schedule(pids, priority);
    try {
      for (let i = 0; i < requests; i += 1) {
        for (let k = 0; k < targets.length; k += 1) {
          const target = targets[(i + k) % targets.length]!;
          const at = performance.now();
          await ask(target.url, i);
          times.get(target.name)!.push(performance.now() - at);
        }
      }
    } finally {
      if (priority > 0) schedule(pids, 0);
    }
    console.log(`load average after ${loadAverage()}`);
    for (const list of times.values()) list.sort((a, b) => a - b);
    const p = (name: string, q: number) => percentile(times.get(name)!, q);
    targets.forEach((target, index) => {
      const cpuMs = ((cpuSecondsOf(target.pid) - cpuBefore[index]!) * 1000) / requests;
      const calls = (syscallsOf(target.pid) - callsBefore[index]!) / requests;
      const wakeups = (threadStatsOf(target.pid).mainVoluntary - wakeupsBefore[index]!) / requests;
      const added =
        target.name === "direct"
          ? ""
          : ` (added p50 +${(p(target.name, 50) - p("direct", 50)).toFixed(2)}, p99 +${(p(target.name, 99) - p("direct", 99)).toFixed(2)})`;
      console.log(
        `  ${target.name.padEnd(6)} p50 ${p(target.name, 50).toFixed(2)} ms, p90 ${p(target.name, 90).toFixed(2)}, p99 ${p(target.name, 99).toFixed(2)}${added}; ` +
          `CPU ${cpuMs.toFixed(3)} ms/request, read+write syscalls ${calls.toFixed(1)}/request, ` +
          `main thread's sleeps ${wakeups.toFixed(2)}/request`,
      );
    });
    if (timeline) {
      for (const gateway of gateways) process.kill(gateway.pid, "SIGUSR2");
      await sleep(500);
      for (const gateway of gateways) printTimeline(gateway.name, gateway.timelineFile);
    }
    if (hold > 0) {
      console.log(
        `holding ${hold} s, one request a second to each; pids: ${targets.map((t) => `${t.name} ${t.pid}`).join(", ")}`,
      );
      for (let s = 0; s < hold; s += 1) {
        for (const target of gateways) await ask(target.url, s);
        await sleep(1000);
      }
    }
  } finally {
    client.close();
    for (const child of [...children].reverse()) await stopChild(child);
    await redisServer?.stop();
    await dropDatabase(usersUrl);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * Our gateway against Grafbase's (a Rust engine) on the same subgraphs and the same subgraph SDL:
 * gateway CPU per request from /proc, in interleaved rounds, for `user(id)` (one subgraph) and the
 * app's nearby page of 50 (Discovery, Users, Media); then the latency one client adds on
 * `user(id)` through each gateway over calling the Users subgraph directly (requests interleaved).
 *
 *   pnpm exec tsx bench/query-gateway-vs-grafbase.ts --grafbase /path/to/grafbase [--users 20000] [--rounds 4] [--requests 400] [--concurrency 16] [--latency 500] [--profile DIR]
 *
 * The Grafbase CLI ships in an npm package: `npm pack @grafbase/cli-x86_64-unknown-linux-musl`,
 * untar it outside the repo and pass `package/grafbase`; it runs as `grafbase dev` with a
 * grafbase.toml (written to the OS temp dir) naming each subgraph's URL and schema.graphql, and
 * forwarding Authorization. Seeding as bench/nearby-gateway.ts (bench/support/city.ts).
 * `--profile DIR` writes a V8 CPU profile of our gateway (DIR/gateway-<stamp>/) when it exits
 * (read it with bench/support/profile-summary.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";
import { createUsersDb } from "@hv/users/src/db";
import { dropDatabase } from "@hv/prisma";
import { createAccessTokenIssuer, generateSigningKeyJwk } from "@hv/kit";
import { benchPersonIdSql, seedCity } from "./support/city";
import { flag, percentile } from "./support/args";
import {
  benchDatabase,
  closedLoop,
  freePort,
  jsonClient,
  loadAverage,
  printHeader,
  ROOT,
  sleep,
  startChild,
  stopChild,
} from "./support/service";

const QUERIES = {
  "user(id)": `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`,
  "nearby 50": `query Nearby($first: Int) {
  nearby(first: $first) {
    edges { node { id distance { kilometres lessThanOneKilometre } displayName age bio interests photos { id } } }
    pageInfo { hasNextPage endCursor }
  }
}`,
} as const;
type QueryName = keyof typeof QUERIES;

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? undefined : process.argv[index + 1];
}

async function main(): Promise<void> {
  const grafbase = argument("grafbase");
  if (!grafbase) throw new Error("--grafbase <path to the grafbase CLI binary> is required");
  const users = flag("users", 20_000);
  const rounds = flag("rounds", 4);
  const requests = flag("requests", 400);
  const concurrency = flag("concurrency", 16);
  const latencyRequests = flag("latency", 500);
  const profileDir = argument("profile");
  const stamp = Date.now().toString(36);
  printHeader("query-gateway-vs-grafbase.ts");
  const urls = {
    users: await benchDatabase("users", "gb_users", stamp),
    discovery: await benchDatabase("discovery", "gb_discovery", stamp),
    media: await benchDatabase("media", "gb_media", stamp),
  };
  const discoveryDb = createDiscoveryDb(urls.discovery);
  const usersDb = createUsersDb(urls.users);
  const children: ChildProcess[] = [];
  const client = jsonClient(concurrency * 2);
  try {
    await seedCity(discoveryDb, users);
    await usersDb.$executeRawUnsafe(`
      INSERT INTO users (id, email, password_hash, display_name, bio, birth_date, gender, genders_of_interest, interests, updated_at)
      SELECT ${benchPersonIdSql("i")}, 'bench-' || i || '@example.test', '!seeded', 'Person ' || i, 'likes long walks',
             date '1970-01-01' + (i % 15000), (CASE WHEN i % 2 = 0 THEN 'WOMAN' ELSE 'MAN' END)::"Gender", '{MAN,WOMAN}'::"Gender"[],
             '{hiking,jazz}', now()
      FROM generate_series(1, ${users}) i`);
    await usersDb.$executeRawUnsafe(`VACUUM ANALYZE users`);
    await clusterLocations(discoveryDb);
    const sample = await discoveryDb.$queryRawUnsafe<Array<{ id: string }>>(`
      SELECT p.user_id::text AS id FROM discovery_profiles p JOIN user_locations l USING (user_id)
      WHERE l.updated_at >= now() - interval '24 hours' AND p.visible AND NOT p.banned AND p.gender IS NOT NULL
      ORDER BY random() LIMIT 100`);

    const key = generateSigningKeyJwk("bench-grafbase");
    const ports = {
      users: await freePort(),
      discovery: await freePort(),
      media: await freePort(),
      files: await freePort(),
      gateway: await freePort(),
      metrics: await freePort(),
      grafbase: await freePort(),
    };
    const subgraphUrl = (port: number) => `http://127.0.0.1:${port}/graphql`;
    const env = {
      AUTH_SIGNING_KEYS: JSON.stringify([key]),
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.users}/.well-known/jwks.json`,
      EVENTS_PREFIX: `hvbench_${stamp}`,
      USERS_DATABASE_URL: urls.users,
      DISCOVERY_DATABASE_URL: urls.discovery,
      MEDIA_DATABASE_URL: urls.media,
      USERS_PORT: String(ports.users),
      DISCOVERY_PORT: String(ports.discovery),
      MEDIA_PORT: String(ports.media),
      MEDIA_FILES_PORT: String(ports.files),
      MEDIA_LOCAL_DIR: path.join(os.tmpdir(), `hv-bench-media-${stamp}`),
      GATEWAY_PORT: String(ports.gateway),
      GATEWAY_METRICS_PORT: String(ports.metrics),
      USERS_URL: subgraphUrl(ports.users),
      DISCOVERY_URL: subgraphUrl(ports.discovery),
      MEDIA_URL: subgraphUrl(ports.media),
      // Not started: neither query reaches Chat.
      CHAT_URL: "http://127.0.0.1:9/graphql",
      // The load comes from one address: measure the gateways, not the edge's budgets.
      GATEWAY_RATE_LIMIT_IP: "100000000/1m",
      GATEWAY_RATE_LIMIT_USER: "100000000/1m",
    };
    const readyz = (port: number) => `http://127.0.0.1:${port}/readyz`;
    children.push(await startChild("subgraphs/users/src/index.ts", env, readyz(ports.users)));
    children.push(await startChild("subgraphs/discovery/src/index.ts", env, readyz(ports.discovery)));
    children.push(await startChild("subgraphs/media/src/index.ts", env, readyz(ports.media)));
    const ours = await startChild(
      "gateway/src/index.ts",
      env,
      readyz(ports.gateway),
      profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `gateway-${stamp}`)}`] : [],
    );
    children.push(ours);
    const theirs = await startGrafbase(grafbase, ports.grafbase, {
      users: ports.users,
      discovery: ports.discovery,
      media: ports.media,
      chat: 9,
    });
    children.push(theirs.child);

    const issuer = createAccessTokenIssuer({
      keys: [key],
      issuer: "haiyvee",
      audience: "haiyvee-api",
      ttlSeconds: 900,
    });
    const tokens = await Promise.all(
      sample.map(async ({ id }) => ({
        id,
        token: (await issuer.issue({ userId: id, sessionId: crypto.randomUUID(), role: "USER" })).token,
      })),
    );
    const gateways = [
      { name: "ours", url: subgraphUrl(ports.gateway), pid: ours.pid! },
      { name: "grafbase", url: theirs.url, pid: theirs.child.pid! },
    ];
    const ask = async (url: string, query: QueryName, index: number) => {
      const viewer = tokens[index % tokens.length]!;
      const other = tokens[(index + 1) % tokens.length]!;
      const variables = query === "user(id)" ? { id: other.id } : { first: 50 };
      const reply = await client.post<{ data?: unknown; errors?: unknown }>(
        url,
        { query: QUERIES[query], variables },
        { authorization: `Bearer ${viewer.token}` },
      );
      if (reply.status !== 200 || reply.body.errors)
        throw new Error(`${reply.status} ${JSON.stringify(reply.body.errors)}`);
      return reply.body.data;
    };
    // Same answers from both (and warm-up: plans, pools, JIT).
    for (const query of Object.keys(QUERIES) as QueryName[]) {
      for (let i = 0; i < 20; i += 1) {
        const [a, b] = [await ask(gateways[0]!.url, query, i), await ask(gateways[1]!.url, query, i)];
        if (JSON.stringify(a) !== JSON.stringify(b))
          throw new Error(`${query}: the gateways answered differently`);
      }
    }
    console.log(
      `answers identical on ${Object.keys(QUERIES).length} queries x 20 viewers; load average ${loadAverage()}`,
    );

    const cpuMs: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round += 1) {
      for (const query of Object.keys(QUERIES) as QueryName[]) {
        const order = round % 2 === 0 ? gateways : [...gateways].reverse();
        for (const gateway of order) {
          const result = await closedLoop(requests, concurrency, gateway.pid, async (index) => {
            await ask(gateway.url, query, index);
          });
          if (result.failed) throw new Error(`${gateway.name} ${query}: ${result.errors.join("; ")}`);
          (cpuMs[`${query}|${gateway.name}`] ??= []).push((result.cpuSeconds * 1000) / result.done);
        }
      }
    }
    console.log(
      `gateway CPU-ms per request, ${concurrency} clients, ${rounds} interleaved rounds of ${requests} (median of rounds):`,
    );
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
    for (const query of Object.keys(QUERIES) as QueryName[]) {
      const a = median(cpuMs[`${query}|ours`] ?? []);
      const b = median(cpuMs[`${query}|grafbase`] ?? []);
      console.log(`  ${query}: ours ${a.toFixed(2)}, grafbase ${b.toFixed(2)}, ratio ${(a / b).toFixed(2)}x`);
    }

    // One client, `user(id)`: direct to Users, through ours, through Grafbase, interleaved.
    const times: Record<string, number[]> = { direct: [], ours: [], grafbase: [] };
    const targets = { direct: subgraphUrl(ports.users), ours: gateways[0]!.url, grafbase: gateways[1]!.url };
    for (let i = 0; i < latencyRequests; i += 1) {
      for (const [name, url] of Object.entries(targets)) {
        const at = performance.now();
        await ask(url, "user(id)", i);
        times[name]!.push(performance.now() - at);
      }
    }
    for (const list of Object.values(times)) list.sort((a, b) => a - b);
    const p = (name: string, q: number) => percentile(times[name]!, q);
    console.log(
      `user(id) at one client, ${latencyRequests} requests each: direct p50 ${p("direct", 50).toFixed(2)} ms p99 ${p("direct", 99).toFixed(2)} ms`,
    );
    for (const name of ["ours", "grafbase"]) {
      console.log(
        `  ${name}: p50 ${p(name, 50).toFixed(2)} ms (+${(p(name, 50) - p("direct", 50)).toFixed(2)}), p99 ${p(name, 99).toFixed(2)} ms (+${(p(name, 99) - p("direct", 99)).toFixed(2)})`,
      );
    }
    console.log(`load average at the end ${loadAverage()}`);
  } finally {
    client.close();
    for (const child of [...children].reverse()) await stopChild(child);
    await discoveryDb.$disconnect();
    await usersDb.$disconnect();
    for (const url of Object.values(urls)) await dropDatabase(url);
  }
}

/** `grafbase dev` on the subgraphs' SDL and URLs, Authorization forwarded; ready once it answers. */
async function startGrafbase(
  binary: string,
  port: number,
  subgraphPorts: Record<"users" | "discovery" | "media" | "chat", number>,
): Promise<{ child: ChildProcess; url: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hv-bench-grafbase-"));
  const config = [
    ...Object.entries(subgraphPorts).map(
      ([name, subgraphPort]) =>
        `[subgraphs.${name}]\nurl = "http://127.0.0.1:${subgraphPort}/graphql"\nschema_path = "${path.join(ROOT, "subgraphs", name, "src", "schema.graphql")}"\n`,
    ),
    `[[headers]]\nrule = "forward"\nname = "authorization"\n`,
  ].join("\n");
  writeFileSync(path.join(dir, "grafbase.toml"), config);
  const child = spawn(
    binary,
    ["dev", "-c", path.join(dir, "grafbase.toml"), "--listen-address", `127.0.0.1:${port}`],
    {
      cwd: dir,
      env: { ...process.env, HOME: dir, GRAFBASE_DISABLE_TELEMETRY: "1", DO_NOT_TRACK: "1" },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const url = `http://127.0.0.1:${port}/graphql`;
  for (let attempt = 0; attempt < 1200; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`grafbase exited (${child.exitCode}) before it was ready`);
    const answered = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    }).catch(() => null);
    if (answered?.status === 200) return { child, url };
    await sleep(100);
  }
  throw new Error("grafbase never became ready");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * Our gateway against Grafbase's (a Rust engine) on the same subgraphs and the same subgraph SDL,
 * on issue #18's four queries: `user(id)` (one subgraph), the app's nearby page of 50
 * (operations/discovery/Nearby.graphql: Discovery, Users, Media), a nearby page of 50 with profile
 * fields and 150 signed photo URLs (three READY profile photos each, UserPhotos.graphql's
 * GalleryMedia fields plus `blurhash` and `url`: Discovery, Users, Media and Chat's read grants) and
 * the app's matches (operations/discovery/Matches.graphql, 20 a viewer, each with a conversation and
 * a message: Discovery, Users, Chat). Per query: each gateway's CPU per request and each subgraph's
 * CPU and read + write system calls (its round trips: HTTP, SQL, Redis) per request while that
 * gateway ran it, and the CPU of the PostgreSQL backends serving its database, from /proc, in
 * interleaved rounds; then the latency one
 * client adds on `user(id)` through each gateway over calling the Users subgraph directly.
 * CPU is each thread's runtime from /proc/<pid>/task/<tid>/schedstat (nanoseconds; /proc/<pid>/stat
 * counts 10 ms ticks, a few ticks a round at Grafbase's `user(id)`). Each query's ratio is printed as
 * the ratio of the medians, the median and range of the rounds' own ratios (a round's two figures
 * were taken one after the other) and the ratio of the totals, with every round's figures.
 *
 *   pnpm exec tsx bench/query-gateway-vs-grafbase.ts --grafbase /path/to/grafbase [--users 20000] [--rounds 4] [--requests 400] [--concurrency 16] [--latency 500] [--only "matches 20,photos 150"] [--subgraphs-from /other/checkout | --compare /other/checkout] [--profile DIR] [--print-slots]
 *
 * `--compare DIR` puts no Grafbase in: two of our systems, this checkout's gateway and subgraphs
 * ("after") and DIR's ("before", e.g. main's), on the same databases and seed, in the same
 * interleaved rounds: a before/after of gateway or subgraph changes from one run.
 * `--latency 0` skips the latency part. `--subgraphs-from` runs the four subgraphs from another
 * checkout of this repository (e.g. main's, for a before/after with the same bench); `--profile DIR`
 * writes each subgraph's V8 CPU profile there, and our gateway's in DIR/gateway-<label>-<stamp>/,
 * when they exit (bench/support/profile-summary.ts reads them). `--gateway-node-args "FLAGS"` starts
 * this checkout's gateway with these Node flags (with `--compare`: an A/B of a flag). `--print-slots`
 * prints a line as each slot starts and ends: with BENCH_SERVICE_STDOUT=inherit and
 * `--gateway-node-args "--trace-gc-nvp"` the gateway's GCs fall between its slot's two lines.
 *
 * The Grafbase CLI ships in an npm package: `npm pack @grafbase/cli-x86_64-unknown-linux-musl`,
 * untar it outside the repo and pass `package/grafbase`; it runs as `grafbase dev` with a
 * grafbase.toml (written to the OS temp dir) naming each subgraph's URL and schema.graphql, and
 * forwarding Authorization. Seeding as bench/nearby-gateway.ts (bench/support/city.ts), plus
 * photos (Media) and matches with conversations (Discovery, Chat) in SQL. Before the rounds each
 * query goes through each gateway unmeasured (every viewer, at least a round and 500 requests), so
 * no round pays first sightings (a token's signature check in each process, a viewer's people
 * missing from the gateway's user cache) or unoptimised code. A round's slot in which requests
 * failed (PostgreSQL out of connections on a shared machine) is run again, its figures dropped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createDiscoveryDb } from "@hv/discovery/src/db";
import { clusterLocations } from "@hv/discovery/src/maintenance/cluster-locations";
import { createUsersDb } from "@hv/users/src/db";
import { dropDatabase } from "@hv/prisma";
import { generateSigningKeyJwk } from "@hv/kit";
import { photoListKey } from "@hv/media/src/modules/photo-cache";
import { Redis } from "ioredis";
import pg from "pg";
import { benchPersonIdSql, seedCity } from "./support/city";
import { argument, flag, percentile } from "./support/args";
import {
  benchDatabase,
  benchTokenIssuer,
  closedLoop,
  cpuSecondsSince,
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
  threadRuntimesOf,
} from "./support/service";

const operation = (file: string) => readFileSync(path.join(ROOT, "operations", file), "utf8");
const GALLERY_MEDIA = operation("profile/UserPhotos.graphql").slice(
  operation("profile/UserPhotos.graphql").indexOf("fragment GalleryMedia"),
);

/** Each query and the variables it is asked with (`other`: a person other than the viewer). */
const QUERIES = {
  "user(id)": {
    query: `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`,
    variables: (other: string) => ({ id: other }),
  },
  "nearby 50": { query: operation("discovery/Nearby.graphql"), variables: () => ({ first: 50 }) },
  "photos 150": {
    query: `query NearbyProfiles($first: Int) {
  nearby(first: $first) {
    edges { node { id displayName age bio interests distance { kilometres lessThanOneKilometre } photos { ...GalleryMedia blurhash url } } }
    pageInfo { hasNextPage endCursor }
  }
}
${GALLERY_MEDIA}`,
    variables: () => ({ first: 50 }),
  },
  "matches 20": { query: operation("discovery/Matches.graphql"), variables: () => ({ first: 20 }) },
} as const;
type QueryName = keyof typeof QUERIES;
const SUBGRAPHS = ["users", "discovery", "media", "chat"] as const;
type Subgraph = (typeof SUBGRAPHS)[number];
/** Profile photos per person: a page of 50 holds 150. */
const PHOTOS_EACH = 3;
const MATCHES_EACH = 20;
const IDLE_SECONDS = 10;
/** Times a round's slot is run when requests fail in it (its figures are then not kept). */
const MAX_ATTEMPTS = 5;
/** Requests per query and gateway before the measured rounds (at least every viewer once, and a round). */
const WARM_UP_REQUESTS = 500;

/**
 * Three READY profile photos for each of the `users` people, with the worker's two variants; ids
 * derived from the person's like theirs, so a list another run left in Redis names the same rows.
 */
async function seedPhotos(mediaUrl: string, users: number): Promise<void> {
  const client = new pg.Client({ connectionString: mediaUrl });
  await client.connect();
  try {
    await client.query(`
      INSERT INTO media (id, owner_id, kind, status, purpose, position, width, height, blurhash, variants, processed_at, updated_at)
      SELECT m.id, m.owner_id, 'IMAGE', 'READY', 'PROFILE_PHOTO', m.position, 640, 800, 'LEHV6nWB2yk8pyo0adR*.7kCMdnj',
             jsonb_build_array(
               jsonb_build_object('name', '640.jpg', 'contentType', 'image/jpeg', 'width', 640, 'height', 800, 'byteSize', 1000,
                                  'key', 'media/' || m.owner_id || '/' || m.id || '/640.jpg'),
               jsonb_build_object('name', '640.webp', 'contentType', 'image/webp', 'width', 640, 'height', 800, 'byteSize', 800,
                                  'key', 'media/' || m.owner_id || '/' || m.id || '/640.webp')),
             now(), now()
      FROM (SELECT md5('hv-bench-photo-' || i || '-' || p)::uuid AS id, ${benchPersonIdSql("i")} AS owner_id, p AS position
            FROM generate_series(1, ${users}) i, generate_series(0, ${PHOTOS_EACH - 1}) p) m`);
    await client.query(`VACUUM ANALYZE media`);
  } finally {
    await client.end();
  }
}

/**
 * `MATCHES_EACH` active matches for each viewer (Discovery), and the conversation each opened in
 * Chat with both members and one message, as match.created and a send would leave them.
 */
async function seedMatches(
  discoveryUrl: string,
  chatUrl: string,
  viewers: string[],
  users: number,
): Promise<void> {
  const discovery = new pg.Client({ connectionString: discoveryUrl });
  const chat = new pg.Client({ connectionString: chatUrl });
  await discovery.connect();
  await chat.connect();
  try {
    const { rows } = await discovery.query<{ id: string; a: string; b: string }>(
      `INSERT INTO matches (id, user_a_id, user_b_id, created_at)
       SELECT gen_random_uuid(), LEAST(v.id, o.id), GREATEST(v.id, o.id), now() - k * interval '1 hour'
       FROM unnest($1::uuid[]) WITH ORDINALITY v(id, n), generate_series(1, ${MATCHES_EACH}) k,
            LATERAL (SELECT ${benchPersonIdSql(`((v.n * 97 + k * 13) % ${users}) + 1`)} AS id) o
       WHERE o.id <> v.id
       ON CONFLICT DO NOTHING
       RETURNING id::text, user_a_id::text AS a, user_b_id::text AS b`,
      [viewers],
    );
    await discovery.query(`ANALYZE matches`);
    await chat.query(
      `WITH c AS (
         INSERT INTO conversations (id, kind, direct_key, match_id, last_seq, version, last_activity_at, created_at)
         SELECT gen_random_uuid(), 'DIRECT', a || ':' || b, m, 1, 1, now(), now()
         FROM unnest($1::uuid[], $2::text[], $3::text[]) x(m, a, b)
         RETURNING id, split_part(direct_key, ':', 1)::uuid AS a, split_part(direct_key, ':', 2)::uuid AS b),
       members AS (
         INSERT INTO conversation_members (conversation_id, user_id, last_read_seq, delivered_seq, joined_at)
         SELECT id, a, 1, 1, now() FROM c UNION ALL SELECT id, b, 0, 1, now() FROM c)
       INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, text, version, created_at)
       SELECT gen_random_uuid(), id, 1, a, 'bench-' || id, 'hello there', 1, now() FROM c`,
      [rows.map((row) => row.id), rows.map((row) => row.a), rows.map((row) => row.b)],
    );
    await chat.query(`VACUUM ANALYZE conversations`);
    await chat.query(`VACUUM ANALYZE conversation_members`);
    await chat.query(`VACUUM ANALYZE messages`);
  } finally {
    await discovery.end();
    await chat.end();
  }
}

/** `benchPersonIdSql` in JavaScript: md5 as a UUID. */
function benchPersonId(i: number): string {
  const hex = createHash("md5").update(`hv-bench-${i}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Deletes the people's cached photo lists (Redis is shared with other runs, which seed other photos). */
async function forgetPhotoLists(users: number): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
  try {
    for (let first = 1; first <= users; first += 1000) {
      const keys = Array.from({ length: Math.min(1000, users - first + 1) }, (_, offset) =>
        photoListKey(benchPersonId(first + offset)),
      );
      await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const grafbase = argument("grafbase");
  const compareWith = argument("compare") === undefined ? undefined : path.resolve(argument("compare")!);
  if (!grafbase && !compareWith)
    throw new Error("--grafbase <path to the grafbase CLI binary> (or --compare <checkout>) is required");
  const users = flag("users", 20_000);
  const rounds = flag("rounds", 4);
  const requests = flag("requests", 400);
  const concurrency = flag("concurrency", 16);
  const latencyRequests = Number(argument("latency") ?? 500);
  const only = argument("only")?.split(",");
  const queryNames = (Object.keys(QUERIES) as QueryName[]).filter((name) => !only || only.includes(name));
  const subgraphsFrom = path.resolve(argument("subgraphs-from") ?? ROOT);
  const profileDir = argument("profile");
  /** --gateway-node-args "ARGS": Node flags for this checkout's gateway only (e.g. a V8 heap flag, A/B'd with --compare). */
  const gatewayNodeArgs = argument("gateway-node-args")?.split(" ").filter(Boolean) ?? [];
  /** --print-slots: a line as each slot starts and ends (between a traced gateway's lines, e.g. --trace-gc). */
  const printSlots = process.argv.includes("--print-slots");
  const stamp = Date.now().toString(36);
  printHeader("query-gateway-vs-grafbase.ts");
  console.log(`subgraphs from ${subgraphsFrom}`);
  const urls = {
    users: await benchDatabase("users", "gb_users", stamp),
    discovery: await benchDatabase("discovery", "gb_discovery", stamp),
    media: await benchDatabase("media", "gb_media", stamp),
    chat: await benchDatabase("chat", "gb_chat", stamp),
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
    await seedPhotos(urls.media, users);
    await forgetPhotoLists(users);
    const sample = await discoveryDb.$queryRawUnsafe<Array<{ id: string }>>(`
      SELECT p.user_id::text AS id FROM discovery_profiles p JOIN user_locations l USING (user_id)
      WHERE l.updated_at >= now() - interval '24 hours' AND p.visible AND NOT p.banned AND p.gender IS NOT NULL
      ORDER BY random() LIMIT 100`);
    await seedMatches(
      urls.discovery,
      urls.chat,
      sample.map(({ id }) => id),
      users,
    );

    const key = generateSigningKeyJwk("bench-grafbase");
    const subgraphUrl = (port: number) => `http://127.0.0.1:${port}/graphql`;
    const readyz = (port: number) => `http://127.0.0.1:${port}/readyz`;
    /** The four subgraphs of a checkout and our gateway in front of them, on ports of their own. */
    const startSystem = async (from: string, label: string) => {
      const ports = {
        users: await freePort(),
        discovery: await freePort(),
        media: await freePort(),
        chat: await freePort(),
        files: await freePort(),
        gateway: await freePort(),
        metrics: await freePort(),
      };
      const env = {
        ...subgraphsEnv({
          urls,
          ports,
          signingKeys: JSON.stringify([key]),
          eventsPrefix: `hvbench_${stamp}`,
          mediaDir: path.join(os.tmpdir(), `hv-bench-media-${stamp}`),
        }),
        GATEWAY_PORT: String(ports.gateway),
        GATEWAY_METRICS_PORT: String(ports.metrics),
        USERS_URL: subgraphUrl(ports.users),
        DISCOVERY_URL: subgraphUrl(ports.discovery),
        MEDIA_URL: subgraphUrl(ports.media),
        CHAT_URL: subgraphUrl(ports.chat),
        // The load comes from one address: measure the gateways, not the edge's budgets.
        GATEWAY_RATE_LIMIT_IP: "100000000/1m",
        GATEWAY_RATE_LIMIT_USER: "100000000/1m",
      };
      const pids = {} as Record<Subgraph, number>;
      for (const name of SUBGRAPHS) {
        const profile = profileDir
          ? [
              "--cpu-prof",
              "--cpu-prof-dir",
              path.resolve(profileDir),
              "--cpu-prof-name",
              `${name}-${label}.cpuprofile`,
            ]
          : [];
        const child = await startChild(
          path.join(from, "subgraphs", name, "src", "index.ts"),
          env,
          readyz(ports[name]),
          profile,
        );
        children.push(child);
        pids[name] = child.pid!;
      }
      // Compared systems are whole: the "before" gateway runs from DIR too.
      const gateway = await startChild(
        compareWith ? path.join(from, "gateway", "src", "index.ts") : "gateway/src/index.ts",
        env,
        readyz(ports.gateway),
        [
          ...(label === "before" ? [] : gatewayNodeArgs),
          ...(profileDir
            ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `gateway-${label}-${stamp}`)}`]
            : []),
        ],
      );
      children.push(gateway);
      return { ports, pids, url: subgraphUrl(ports.gateway), pid: gateway.pid! };
    };
    const ours = await startSystem(compareWith ? ROOT : subgraphsFrom, compareWith ? "after" : "ours");
    let other: { name: string; url: string; pid: number; pids: Record<Subgraph, number> };
    if (compareWith) {
      const before = await startSystem(compareWith, "before");
      other = { name: "before", url: before.url, pid: before.pid, pids: before.pids };
    } else {
      const theirs = await startGrafbase(grafbase!, await freePort(), {
        users: ours.ports.users,
        discovery: ours.ports.discovery,
        media: ours.ports.media,
        chat: ours.ports.chat,
      });
      children.push(theirs.child);
      // Grafbase in front of our subgraphs: theirs are the same processes.
      other = { name: "grafbase", url: theirs.url, pid: theirs.child.pid!, pids: ours.pids };
    }
    const ports = ours.ports;

    const issuer = benchTokenIssuer(key);
    const tokens = await Promise.all(
      sample.map(async ({ id }) => ({
        id,
        token: (await issuer.issue({ userId: id, sessionId: crypto.randomUUID(), role: "USER" })).token,
      })),
    );
    const gateways = [
      { name: compareWith ? "after" : "ours", url: ours.url, pid: ours.pid, pids: ours.pids },
      other,
    ];
    const ask = async (url: string, query: QueryName, index: number) => {
      const viewer = tokens[index % tokens.length]!;
      const other = tokens[(index + 1) % tokens.length]!;
      const reply = await client.post<{ data?: unknown; errors?: unknown }>(
        url,
        { query: QUERIES[query].query, variables: QUERIES[query].variables(other.id) },
        { authorization: `Bearer ${viewer.token}` },
      );
      if (reply.status !== 200 || reply.body.errors)
        throw new Error(`${reply.status} ${JSON.stringify(reply.body.errors)}`);
      return reply.body.data;
    };
    // Same answers from both (and warm-up: plans, pools, JIT); what each page holds.
    for (const query of queryNames) {
      let size = "";
      const people: number[] = [];
      for (let i = 0; i < 20; i += 1) {
        const [a, b] = [await ask(gateways[0]!.url, query, i), await ask(gateways[1]!.url, query, i)];
        // Two Media processes sign a URL each (expiry, signature): compared up to the query string.
        const same = (data: unknown) =>
          JSON.stringify(data).replace(/"http:\/\/127\.0\.0\.1:\d+(\/[^"?]*)\?[^"]*"/g, '"$1"');
        if (same(a) !== same(b)) {
          const dump = path.join(os.tmpdir(), `hv-bench-answers-${stamp}.json`);
          writeFileSync(dump, JSON.stringify({ [gateways[0]!.name]: a, [gateways[1]!.name]: b }, null, 1));
          throw new Error(`${query}: the gateways answered differently (both answers in ${dump})`);
        }
        if (i === 0) size = describeAnswer(a);
        people.push((JSON.stringify(a).match(/"displayName"/g) ?? []).length);
      }
      people.sort((x, y) => x - y);
      console.log(
        `${query}: ${size} (the first viewer's page); people per page over the 20 viewers: min ${people[0]}, median ${people[10]}, max ${people[19]}`,
      );
    }
    console.log(
      `answers identical on ${queryNames.length} queries x 20 viewers; load average ${loadAverage()}`,
    );
    // Unmeasured requests (every viewer, at least a round) through each gateway, so that no round is
    // the first to meet a token (each process verifies its signature once), a viewer's people (the
    // gateway's user cache) or code V8 has not yet optimised.
    for (const query of queryNames) {
      for (const gateway of gateways) {
        const warm = await closedLoop(
          Math.max(tokens.length, requests, WARM_UP_REQUESTS),
          concurrency,
          gateway.pid,
          async (index) => {
            await ask(gateway.url, query, index);
          },
        );
        if (warm.failed === warm.done + warm.failed)
          throw new Error(`${gateway.name} ${query}: ${warm.errors.join("; ")}`);
        if (warm.failed)
          console.log(
            `warm-up ${gateway.name} ${query}: ${warm.failed} failed (${warm.errors[0]?.slice(0, 200)})`,
          );
      }
    }
    // What each subgraph spends with no request at all (timers, pollers): part of every figure below.
    const idleMsPerSecond = new Map<number, number>();
    const allPids = [
      ...new Set(gateways.flatMap((gateway) => [gateway.pid, ...Object.values(gateway.pids)])),
    ];
    const idleBefore = allPids.map((pid) => threadRuntimesOf(pid));
    await sleep(IDLE_SECONDS * 1000);
    allPids.forEach((pid, index) =>
      idleMsPerSecond.set(pid, (cpuSecondsSince(pid, idleBefore[index]!) * 1000) / IDLE_SECONDS),
    );
    for (const gateway of gateways) {
      console.log(
        `idle CPU-ms per second over ${IDLE_SECONDS} s: gateway ${gateway.name} ${idleMsPerSecond.get(gateway.pid)!.toFixed(1)}; behind it ${SUBGRAPHS.map((name) => `${name} ${idleMsPerSecond.get(gateway.pids[name])!.toFixed(1)}`).join(", ")}`,
      );
    }

    // PostgreSQL's CPU for each subgraph's database: its backends' /proc CPU (one system runs at a time).
    const databaseNames = Object.fromEntries(
      SUBGRAPHS.map((name) => [name, new URL(urls[name]).pathname.slice(1)]),
    ) as Record<Subgraph, string>;
    const postgresCpu = async (): Promise<Record<Subgraph, Map<number, number>>> => {
      const backends = await usersDb.$queryRawUnsafe<Array<{ pid: number; datname: string }>>(
        `SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()`,
        Object.values(databaseNames),
      );
      const byDatabase = Object.fromEntries(SUBGRAPHS.map((name) => [name, new Map<number, number>()]));
      for (const name of SUBGRAPHS) {
        for (const { pid } of backends.filter((backend) => backend.datname === databaseNames[name])) {
          try {
            byDatabase[name]!.set(pid, cpuSecondsSince(pid, new Map()));
          } catch {
            // ended meanwhile
          }
        }
      }
      return byDatabase as Record<Subgraph, Map<number, number>>;
    };
    const cpuMs: Record<string, number[]> = {};
    /** Each gateway's CPU seconds over all measured rounds: schedstat's clock and /proc/<pid>/stat's ticks. */
    const totals = new Map(gateways.map((gateway) => [gateway.name, { precise: 0, ticks: 0 }]));
    for (let round = 0; round < rounds; round += 1) {
      for (const query of queryNames) {
        const order = round % 2 === 0 ? gateways : [...gateways].reverse();
        for (let attempt = 1, slot = 0; slot < order.length; attempt += 1) {
          const gateway = order[slot]!;
          const pids = gateway.pids;
          const before = Object.fromEntries(SUBGRAPHS.map((name) => [name, threadRuntimesOf(pids[name])]));
          const callsBefore = Object.fromEntries(SUBGRAPHS.map((name) => [name, syscallsOf(pids[name])]));
          const postgresBefore = await postgresCpu();
          const gatewayBefore = threadRuntimesOf(gateway.pid);
          if (printSlots) console.log(`slot start: round ${round + 1} ${gateway.name} ${query}`);
          const result = await closedLoop(requests, concurrency, gateway.pid, async (index) => {
            await ask(gateway.url, query, index);
          });
          const gatewaySeconds = cpuSecondsSince(gateway.pid, gatewayBefore);
          if (printSlots)
            console.log(
              `slot end: round ${round + 1} ${gateway.name} ${query} ${((gatewaySeconds * 1000) / result.done).toFixed(2)} CPU-ms per request`,
            );
          if (result.failed) {
            // A failed request (e.g. PostgreSQL out of connections on the shared machine): the whole slot again.
            if (attempt >= MAX_ATTEMPTS)
              throw new Error(`${gateway.name} ${query}: ${result.errors.join("; ")}`);
            console.log(
              `round ${round + 1} ${gateway.name} ${query}: ${result.failed} failed (${result.errors[0]?.slice(0, 200)}); measured again`,
            );
            await sleep(2000);
            continue;
          }
          attempt = 0;
          slot += 1;
          totals.get(gateway.name)!.precise += gatewaySeconds;
          totals.get(gateway.name)!.ticks += result.cpuSeconds;
          (cpuMs[`${query}|${gateway.name}`] ??= []).push((gatewaySeconds * 1000) / result.done);
          (cpuMs[`${query}|${gateway.name}|ticks`] ??= []).push((result.cpuSeconds * 1000) / result.done);
          const postgresAfter = await postgresCpu();
          let idleMs = 0;
          for (const name of SUBGRAPHS) {
            // A backend that started during the loop counts from zero; one that ended is not counted.
            let postgresSeconds = 0;
            for (const [pid, seconds] of postgresAfter[name])
              postgresSeconds += seconds - (postgresBefore[name].get(pid) ?? 0);
            (cpuMs[`${query}|${gateway.name}|${name}|postgres`] ??= []).push(
              (postgresSeconds * 1000) / result.done,
            );
            (cpuMs[`${query}|${gateway.name}|${name}`] ??= []).push(
              (cpuSecondsSince(pids[name], before[name]!) * 1000) / result.done,
            );
            (cpuMs[`${query}|${gateway.name}|${name}|syscalls`] ??= []).push(
              (syscallsOf(pids[name]) - callsBefore[name]!) / result.done,
            );
            idleMs += idleMsPerSecond.get(pids[name])! * result.seconds;
          }
          (cpuMs[`${query}|${gateway.name}|idle`] ??= []).push(idleMs / result.done);
        }
      }
    }
    console.log(
      `CPU-ms per request (threads' schedstat runtime), ${concurrency} clients, ${rounds} interleaved rounds of ${requests} (median of rounds); load average ${loadAverage()}:`,
    );
    const median = (values: number[] = []) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
    const sum = (values: number[] = []) => values.reduce((total, value) => total + value, 0);
    for (const query of queryNames) {
      const [first, second] = [gateways[0]!.name, gateways[1]!.name];
      const firstRounds = cpuMs[`${query}|${first}`]!;
      const secondRounds = cpuMs[`${query}|${second}`]!;
      const a = median(firstRounds);
      const b = median(secondRounds);
      // Each round's two figures were taken one after the other: their ratio is paired in time.
      const ratios = firstRounds.map((value, round) => value / secondRounds[round]!);
      console.log(
        `  ${query}: gateway ${first} ${a.toFixed(2)}, ${second} ${b.toFixed(2)}, ratio ${(a / b).toFixed(2)}x ` +
          `(rounds' ratios: median ${median(ratios).toFixed(2)}x, ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}x; ` +
          `of the totals ${(sum(firstRounds) / sum(secondRounds)).toFixed(2)}x)`,
      );
      const byTicks = (name: string) => cpuMs[`${query}|${name}|ticks`]!;
      console.log(
        `    by round: ${first} ${firstRounds.map((value) => value.toFixed(2)).join(" ")}; ${second} ${secondRounds.map((value) => value.toFixed(2)).join(" ")}; ` +
          `by 10 ms ticks: ${first} ${byTicks(first)
            .map((value) => value.toFixed(2))
            .join(" ")}; ${second} ${byTicks(second)
            .map((value) => value.toFixed(2))
            .join(" ")}, ` +
          `ratio of the medians ${(median(byTicks(first)) / median(byTicks(second))).toFixed(2)}x`,
      );
      for (const gateway of gateways) {
        const parts = SUBGRAPHS.map(
          (name) => [name, median(cpuMs[`${query}|${gateway.name}|${name}`])] as const,
        );
        const subgraphs = parts.reduce((sum, [, value]) => sum + value, 0);
        const gatewayMs = median(cpuMs[`${query}|${gateway.name}`]);
        const idle = median(cpuMs[`${query}|${gateway.name}|idle`]);
        console.log(
          `    behind ${gateway.name}: ${parts.map(([name, value]) => `${name} ${value.toFixed(2)}`).join(", ")}; ` +
            `subgraphs ${subgraphs.toFixed(2)}, end to end ${(subgraphs + gatewayMs).toFixed(2)} ` +
            `(of which the subgraphs' idle rate ${idle.toFixed(2)})`,
        );
        const calls = SUBGRAPHS.map(
          (name) => `${name} ${median(cpuMs[`${query}|${gateway.name}|${name}|syscalls`]).toFixed(1)}`,
        );
        console.log(`      read + write system calls per request: ${calls.join(", ")}`);
        const postgres = SUBGRAPHS.map(
          (name) => `${name} ${median(cpuMs[`${query}|${gateway.name}|${name}|postgres`]).toFixed(2)}`,
        );
        console.log(`      PostgreSQL CPU-ms per request, by subgraph database: ${postgres.join(", ")}`);
      }
    }

    for (const [name, total] of totals)
      console.log(
        `gateway ${name}: ${total.precise.toFixed(3)} CPU-s over the rounds by schedstat, ${total.ticks.toFixed(2)} by /proc/<pid>/stat's 10 ms ticks`,
      );

    if (!compareWith && latencyRequests > 0 && queryNames.includes("user(id)")) {
      // One client, `user(id)`: direct to Users, through ours, through Grafbase, interleaved.
      const times: Record<string, number[]> = { direct: [], ours: [], grafbase: [] };
      const targets = {
        direct: subgraphUrl(ports.users),
        ours: gateways[0]!.url,
        grafbase: gateways[1]!.url,
      };
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

/** What one answer holds: people, photos, URLs, conversations (to see the page is the real one). */
function describeAnswer(data: unknown): string {
  const text = JSON.stringify(data);
  const count = (pattern: RegExp) => (text.match(pattern) ?? []).length;
  return `${count(/"displayName"/g)} people, ${count(/"url":"http/g)} photo URLs, ${count(/"lastMessage":\{/g)} conversations with a message, ${text.length} bytes`;
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

/**
 * Chat through the gateway: many phones subscribed over graphql-ws, messages sent at a fixed rate.
 *
 *   pnpm exec tsx bench/chat-gateway.ts [--connections 10000] [--rate 1000[,300,...]] [--seconds 20] [--group 100]
 *     [--idle-seconds 10] [--settle-seconds 5] [--profile DIR] [--keep] [--trimmed] [--trace] [--sockets] [--send-over http|socket]
 *     [--strace SECONDS]
 *
 * Users, Chat and the gateway run as separate processes (built, as deployed; BENCH_RUN=source: node --import tsx <package>/src/index.ts)
 * on databases of their own, so each one's memory can be read (/proc/<pid>/status VmRSS). The
 * gateway reaches Users through a counting proxy in this process, which counts the entity fetches
 * that arrive at Users. This process is the load generator: it opens `connections` graphql-ws
 * connections to the gateway (one person each, subscribed with the app's own ChatMyEvents),
 * pairs them into conversations, then sends `rate` messages per second
 * for `seconds` through the gateway (the app's ChatSendMessage over HTTP, each to a pair: the sender and the other
 * member both receive it), and measures send-to-receive latency at the other member. A last phase
 * sends to one group of `group` subscribed members, to show the fetches per message do not grow
 * with the subscribers (the gateway keeps users' public fields until they change: a sender already
 * seen costs none). On this machine the load generator shares the 2 cores with the servers.
 *
 * Memory per connection is read `settle-seconds` (default 5) after the last connection opened, each
 * service's after a full collection; V8's young generation, grown by the connect burst, is printed
 * beside it; BENCH_REDUCE_MEMORY=1 reads RSS after a memory-reducing collection too (which gives
 * those pages back; it leaves a small young generation to the phases that follow, and the usual RSS
 * figures then compare an unreduced reading with a reduced baseline: read the reduced line).
 * Before the load, the services' CPU is measured idle (subscribed, no traffic) for `idle-seconds`.
 * `--rate 30,100,300` runs one load phase per rate on the same connections. Every phase reports
 * CPU-ms per message of each service and of PostgreSQL (the backends connected to the bench's
 * databases, from /proc), commits per message, and each service's event-loop delay and GC
 * (bench/support/loop-probe.ts, loaded into each service process).
 *
 * Every phase also prints the kernel's TCP counters that moved (the machine's, not only the bench's).
 * `--send-over socket` sends each message over the sender's own graphql-ws connection (the one its
 * feed runs on) instead of an HTTP POST (`http`, the default).
 * `--strace SECONDS` attaches strace to the gateway and Chat for that long, 3 s into the first phase,
 * and prints their socket reads and writes per message by peer (bench/support/syscall-trace.ts;
 * strace slows them: counts, not CPU).
 * Every probe line ends with the JS heap's allocation (collected or not) per message, or per second
 * idle; BENCH_ALLOC_PROFILE_DIR=DIR writes each service's sampling allocation profile per phase
 * there (summarize one with `pnpm exec tsx bench/support/alloc-summary.ts FILE --per N`).
 * `--sockets` looks at the bench's sockets (`ss`) every 2 s of a phase: which hold unread data, see
 * a zero window, retransmitted. `--trace` runs the services with OpenTelemetry on, exporting to a
 * receiver in this process, starts every send's trace here (`traceparent`), and prints per phase
 * each stage's p50/p99 and the slowest sends span by span (tracing costs CPU: not for CPU figures).
 *
 * BENCH_NODE_ARGS (space-separated) go on each service's node command line, to compare V8 flags
 * (e.g. `--min-semi-space-size=16`); BENCH_GATEWAY_NODE_ARGS, BENCH_CHAT_NODE_ARGS and BENCH_USERS_NODE_ARGS
 * go on that one service's only, after them. The probes print each service's young-generation size.
 * BENCH_LOOP_DELAY=off leaves the probes' loop-delay histogram out: its 10 ms timer wakes every
 * service 100 times a second, which the idle CPU and the low rates otherwise include. The idle
 * phase runs twice: first with those timers stopped (the services' own idle burn), then with them
 * (the figure earlier rounds printed, and the rate the phases' "beyond the idle rate" takes off).
 * Every phase also prints, per service and per message, the main thread's CPU against the other
 * threads' (V8's GC and compiler workers), and how often the main thread slept and was preempted.
 *
 * The operations are the app's (operations/chat/ChatMyEvents.graphql, ChatSendMessage.graphql: the
 * sender's displayName, the event's actor, the invitation's inviter, reactions with `reactedByMe`);
 * `--trimmed` runs the small feed and send of earlier rounds instead, for comparison.
 *
 * `--target reference` runs the minimal one-process server (bench/reference-chat-server.ts) instead
 * of users + chat + gateway, seeded with the same people and conversations: it is measured, and
 * printed, as "gateway"; chat and users do not run and read as 0 (bench/support/reference-target.ts).
 * `--target reference-checks` runs it with our contract's checks (bench/reference-checks.ts), on
 * Chat's database seeded as for our path.
 */
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { generateSigningKeyJwk } from "@hv/kit";
import { createChatDb } from "@hv/chat/src/db";
import { createUsersDb } from "@hv/users/src/db";
import {
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
} from "@hv/prisma";
import { createClient, type Client } from "graphql-ws";
import { flag, percentile } from "./support/args";
import type { ReferenceChecksOptions } from "./reference-checks";
import { referenceDatabaseUrl, seedGroup, seedReference, startReference } from "./support/reference-target";
import {
  benchTokenIssuer,
  cpuSecondsOf,
  freePort,
  loadAverage,
  printHeader,
  ROOT,
  rssKb as rssKbOf,
  sleep,
  startChild,
  syscallsOf as syscallsOfPid,
  threadStatsOf as threadStatsOfPid,
  type ThreadStats,
} from "./support/service";
import WebSocket from "ws";
import { LoopWindow, type ProbeReport } from "./support/loop-probe";
import { describePeerCounts, traceSocketCalls } from "./support/syscall-trace";
import {
  describeSocketGroups,
  describeTcpDelta,
  mergeSocketGroups,
  socketGroups,
  tcpCounters,
  type SocketGroup,
} from "./support/tcp-counters";
import {
  describeTraces,
  epochMs,
  startTraceCollector,
  tracingEnv,
  type TracedRequest,
} from "./support/trace-collector";

/** A service that does not run (pid 0: chat and users under --target reference) used no CPU, memory or calls. */
const cpuSeconds = (pid: number) => (pid ? cpuSecondsOf(pid) : 0);
const rssKb = (pid: number) => (pid ? rssKbOf(pid) : 0);
const syscallsOf = (pid: number) => (pid ? syscallsOfPid(pid) : 0);
const threadStatsOf = (pid: number): ThreadStats =>
  pid
    ? threadStatsOfPid(pid)
    : { mainCpu: 0, otherCpu: 0, mainVoluntary: 0, mainInvoluntary: 0, otherSwitches: 0 };
const pidOf = (child: ChildProcess | undefined) => child?.pid ?? 0;

/** The feed and the send the phones run, and whether a send's answer is complete. */
interface Operations {
  name: string;
  feed: string;
  send: string;
  answered(data: Record<string, any> | undefined): boolean;
}

/** The app's own documents: everything the phone selects, the sender's profile in the send's answer included. */
function appOperations(): Operations {
  const read = (name: string) => readFileSync(path.join(ROOT, "operations/chat", name), "utf8");
  return {
    name: "the app's (operations/chat/ChatMyEvents.graphql, ChatSendMessage.graphql)",
    feed: read("ChatMyEvents.graphql"),
    send: read("ChatSendMessage.graphql"),
    answered: (data) =>
      typeof data?.sendMessage?.seq === "number" &&
      String(data.sendMessage.sender?.displayName).startsWith("Person "),
  };
}

/** The operations of rounds 1–5: the feed without actor, invitation and reactions, the send answering `seq`. */
const TRIMMED_OPERATIONS: Operations = {
  name: "trimmed (--trimmed)",
  feed: `subscription Feed { myChatEvents { kind conversationId seq message { id text sender { id displayName } } } }`,
  send: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }`,
  answered: (data) => typeof data?.sendMessage?.seq === "number",
};

/** Forwards to Users and counts the entity fetches (`_entities`) that reach it. */
async function countingProxy(target: string) {
  /**
   * `events`: fetches for subscription events, told from the sends' answers by the name the
   * planner gives a fetch (`ChatSendMessage__users__1`): since round 7 the gateway's user cache
   * sends a send's missing sender as nobody too.
   */
  const counts = { entities: 0, events: 0, representations: 0, warming: 0, warmed: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const targetUrl = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (body.includes("_entities")) {
        counts.entities += 1;
        // The gateway's user cache sends the misses of one loop turn together: users per fetch.
        const representations = (
          JSON.parse(body.toString("utf8")) as { variables?: { representations?: unknown } }
        ).variables?.representations;
        if (Array.isArray(representations)) counts.representations += representations.length;
        // The gateway's user cache warming its subscribers (`WarmPublicUsers`), counted apart.
        if (body.includes("WarmPublicUsers")) {
          counts.warming += 1;
          if (Array.isArray(representations)) counts.warmed += representations.length;
        } else if (!body.includes("ChatSendMessage__")) counts.events += 1;
      }
      const upstream = http.request(
        {
          host: targetUrl.hostname,
          port: targetUrl.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: targetUrl.host },
          agent,
        },
        (response) => {
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
        },
      );
      upstream.on("error", () => {
        res.statusCode = 502;
        res.end();
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    counts,
    close: () => server.close(),
  };
}

interface Phone {
  userId: string;
  token: string;
  client: Client;
}

async function main(): Promise<void> {
  const connections = flag("connections", 10_000);
  const rates = (() => {
    const index = process.argv.indexOf("--rate");
    const list = index < 0 ? "1000" : (process.argv[index + 1] ?? "");
    const parsed = list.split(",").map(Number);
    if (parsed.some((r) => !Number.isInteger(r) || r <= 0))
      throw new Error("--rate needs positive integers, comma-separated");
    return parsed;
  })();
  const idleSeconds = flag("idle-seconds", 10);
  const settleSeconds = flag("settle-seconds", 5);
  /** --profile DIR: V8 CPU profiles of each service process (DIR/<service>-<run>/), written when it exits. */
  const profileIndex = process.argv.indexOf("--profile");
  const profileDir = profileIndex < 0 ? undefined : process.argv[profileIndex + 1];
  const seconds = flag("seconds", 20);
  const groupSize = Math.min(flag("group", 100), connections);
  const keep = process.argv.includes("--keep");
  const operations = process.argv.includes("--trimmed") ? TRIMMED_OPERATIONS : appOperations();
  /** Diagnostics: subscribe straight to Chat instead of through the gateway. */
  const direct = process.argv.includes("--direct");
  const collector = process.argv.includes("--trace") ? await startTraceCollector() : undefined;
  const lookAtSockets = process.argv.includes("--sockets");
  const straceSeconds = flag("strace", 0);
  const sendOverIndex = process.argv.indexOf("--send-over");
  const sendOver = sendOverIndex < 0 ? "http" : process.argv[sendOverIndex + 1];
  if (sendOver !== "http" && sendOver !== "socket") throw new Error("--send-over takes http or socket");
  const targetIndex = process.argv.indexOf("--target");
  const target = targetIndex < 0 ? undefined : process.argv[targetIndex + 1];
  if (target !== undefined && target !== "reference" && target !== "reference-checks")
    throw new Error("--target takes reference or reference-checks (or leave it out)");
  const reference = target !== undefined;
  /** The reference with our contract's checks, on Chat's migrated database (bench/reference-checks.ts). */
  const referenceChecks = target === "reference-checks";
  const stamp = Date.now().toString(36);
  printHeader("chat-gateway.ts");
  console.log(
    `operations: ${operations.name}; sends over ${sendOver === "socket" ? "the sender's graphql-ws connection" : "HTTP POST"}`,
  );
  if (reference)
    console.log(
      `--target ${target}: the one-process reference server (bench/reference-chat-server.ts${referenceChecks ? " with the checks of bench/reference-checks.ts" : ""}) runs as "gateway"; chat and users do not run (0)`,
    );

  const urls = Object.fromEntries(
    (["users", "chat"] as const).map((name) => {
      const url = new URL(process.env[databaseUrlEnvVar(name)] ?? defaultDatabaseUrl(name));
      url.pathname = `/hv_bench_chat_${stamp}_${name}`;
      return [name, url.toString()];
    }),
  ) as Record<"users" | "chat", string>;
  for (const name of ["users", "chat"] as const) {
    await ensureDatabase(urls[name]);
    await migrateDeploy(name, urls[name]);
  }
  const referenceUrl = referenceChecks ? urls.chat : referenceDatabaseUrl(stamp);
  /** The reference's database when it is one of its own. */
  const referenceOwn = reference && !referenceChecks ? [referenceUrl] : [];
  /** The databases whose PostgreSQL backends and commits each phase counts. */
  const benchDatabases = [...Object.values(urls), ...referenceOwn].map((u) => new URL(u).pathname.slice(1));

  const key = generateSigningKeyJwk("bench-chat");
  const ports = { users: await freePort(), chat: await freePort(), gateway: await freePort() };
  const common = {
    LOG_LEVEL: "warn",
    AUTH_SIGNING_KEYS: JSON.stringify([key]),
    AUTH_JWKS_URL: `http://127.0.0.1:${ports.users}/.well-known/jwks.json`,
    EVENTS_PREFIX: `hvbench${stamp}`,
    USERS_DATABASE_URL: urls.users,
    CHAT_DATABASE_URL: urls.chat,
    USERS_PORT: String(ports.users),
    CHAT_PORT: String(ports.chat),
    GATEWAY_PORT: String(ports.gateway),
    HOST: "127.0.0.1",
    CHAT_SEND_BURST: "10000",
    CHAT_SEND_SUSTAINED: "1000000",
    CHAT_GROUP_MAX_MEMBERS: String(Math.max(256, groupSize)),
    // Members who have not matched the owner are invited and accept (setup, not measured).
    CHAT_INVITATIONS_PER_DAY: "100000",
    CHAT_PENDING_INVITATIONS_MAX: "100000",
    // The load comes from one address and measures throughput, not the edge's budgets.
    GATEWAY_RATE_LIMIT_IP: "100000000/1m",
    GATEWAY_RATE_LIMIT_USER: "100000000/1m",
    GATEWAY_RATE_LIMIT_SEND_MESSAGE: "100000000/1m",
    GATEWAY_RATE_LIMIT_SUBSCRIBE: "100000000/1m",
    GATEWAY_WS_MAX_PER_ADDRESS: String(connections + 1000),
    // As production runs (infra/k8s/config.yaml): each pool opened whole at start-up. DATABASE_POOL_MIN=0 in the bench's environment: opened on demand.
    DATABASE_POOL_MIN: process.env.DATABASE_POOL_MIN ?? "10",
    ...(collector ? tracingEnv(collector.endpoint) : {}),
  };
  const children: ChildProcess[] = [];
  const usersDb = createUsersDb(urls.users);
  const chatDb = createChatDb(urls.chat);
  let proxy: Awaited<ReturnType<typeof countingProxy>> | undefined;
  const phones: Phone[] = [];
  try {
    // People: rows in Users (SQL, fast), tokens minted with the same key Users signs with.
    const ids = Array.from({ length: connections }, () => randomUUID());
    await usersDb.$executeRawUnsafe(
      `INSERT INTO users (id, email, password_hash, display_name, birth_date, updated_at)
       SELECT id::uuid, 'bench-' || id || '@example.test', '!seeded', 'Person ' || n, date '1990-01-01', now()
       FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
      ids,
    );
    // Chat's copy of each account, as Users' user.profile_changed would have made it (invitable).
    const chatDb = createChatDb(urls.chat);
    await chatDb.$executeRawUnsafe(
      `INSERT INTO people (user_id, visible, banned, event_at) SELECT id::uuid, true, false, now() FROM unnest($1::text[]) AS t(id)`,
      ids,
    );
    await chatDb.$disconnect();
    const issuer = benchTokenIssuer(key);
    const tokens = await Promise.all(
      ids.map((userId) =>
        issuer.issue({ userId, sessionId: randomUUID(), role: "USER" }).then((t) => t.token),
      ),
    );

    const probeFile = (name: string) => path.join(os.tmpdir(), `hv-bench-chat-${stamp}-${name}.json`);
    const nodeArgs = (name: string) => [
      "--expose-gc",
      // The probe is TypeScript with import syntax, run by Node's own type stripping.
      "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
      "--import",
      path.join(ROOT, "bench/support/loop-probe.ts"),
      // One folder per service: tsx's loader thread writes a profile of its own beside the main thread's.
      ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `${name}-${stamp}`)}`] : []),
      ...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      ...(process.env[`BENCH_${name.toUpperCase()}_NODE_ARGS`]?.split(" ").filter(Boolean) ?? []),
    ];
    const probeEnv = (name: string) => ({ ...common, BENCH_PROBE_FILE: probeFile(name) });
    // In reference mode nothing reaches Users' counting proxy: its counts stay 0.
    proxy = await countingProxy(`http://127.0.0.1:${ports.users}/graphql`);
    let services: { gateway: ChildProcess; chat?: ChildProcess; users?: ChildProcess };
    if (reference) {
      const gateway = await startReference(
        referenceUrl,
        {
          REFERENCE_CHANNEL_PREFIX: `hvbench${stamp}`,
          ...(referenceChecks
            ? {
                // The budgets as this bench sets them for the gateway and Chat (common, above).
                REFERENCE_CHECKS: JSON.stringify({
                  eventsPrefix: common.EVENTS_PREFIX,
                  budgets: {
                    address: 100_000_000,
                    user: 100_000_000,
                    sendMessage: 100_000_000,
                    subscribe: 100_000_000,
                    sendBurst: Number(common.CHAT_SEND_BURST),
                    sendSustained: Number(common.CHAT_SEND_SUSTAINED),
                  },
                } satisfies ReferenceChecksOptions),
              }
            : {}),
          AUTH_SIGNING_KEYS: common.AUTH_SIGNING_KEYS,
          BENCH_PROBE_FILE: probeFile("gateway"),
        },
        ports.gateway,
        nodeArgs("gateway"),
      );
      children.push(gateway);
      services = { gateway };
    } else {
      const users = await startChild(
        "subgraphs/users/src/index.ts",
        probeEnv("users"),
        `http://127.0.0.1:${ports.users}/readyz`,
        nodeArgs("users"),
      );
      children.push(users);
      const chat = await startChild(
        "subgraphs/chat/src/index.ts",
        probeEnv("chat"),
        `http://127.0.0.1:${ports.chat}/readyz`,
        nodeArgs("chat"),
      );
      children.push(chat);
      const gatewayEnv = {
        ...common,
        USERS_URL: proxy.url,
        CHAT_URL: `http://127.0.0.1:${ports.chat}/graphql`,
        DISCOVERY_URL: "http://127.0.0.1:9/graphql",
        MEDIA_URL: "http://127.0.0.1:9/graphql",
      };
      const gateway = await startChild(
        "gateway/src/index.ts",
        { ...gatewayEnv, BENCH_PROBE_FILE: probeFile("gateway") },
        `http://127.0.0.1:${ports.gateway}/readyz`,
        nodeArgs("gateway"),
      );
      children.push(gateway);
      services = { users, chat, gateway };
    }
    const { users: usersProc, chat: chatProc, gateway: gatewayProc } = services;
    const gatewayHttp = `http://127.0.0.1:${ports.gateway}/graphql`;
    /** Which process listens on a port, to name the bench's sockets. */
    const socketRoles: Record<number, string> = {
      [ports.gateway]: "gateway",
      [ports.chat]: "chat",
      [ports.users]: "users",
      [Number(new URL(proxy.url).port)]: "users proxy",
      6379: "redis",
      5432: "postgres",
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const post = (query: string, variables: Record<string, unknown>, token: string, traceparent?: string) =>
      new Promise<{ data?: Record<string, any>; errors?: unknown[] }>((resolve, reject) => {
        const body = JSON.stringify({ query, variables });
        const req = http.request(
          gatewayHttp,
          {
            method: "POST",
            agent,
            headers: {
              "content-type": "application/json",
              authorization: `Bearer ${token}`,
              "content-length": Buffer.byteLength(body),
              ...(traceparent ? { traceparent } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
          },
        );
        req.on("error", reject);
        req.end(body);
      });

    /**
     * Sends in flight over the sockets at once, as the HTTP agent's `maxSockets` caps those over
     * HTTP (the rest wait here): without it an overloaded machine times every send out at once.
     */
    const socketSlots = { free: 256, waiting: [] as Array<() => void> };
    const takeSocketSlot = async () => {
      if (socketSlots.free > 0) socketSlots.free -= 1;
      else await new Promise<void>((resolve) => socketSlots.waiting.push(resolve));
    };
    const giveSocketSlot = () => {
      const next = socketSlots.waiting.shift();
      if (next) next();
      else socketSlots.free += 1;
    };
    /** One operation over person `from`'s graphql-ws connection: its one result. */
    const overSocket = async (query: string, variables: Record<string, unknown>, from: number) => {
      await takeSocketSlot();
      try {
        return await overSocketNow(query, variables, from);
      } finally {
        giveSocketSlot();
      }
    };
    const overSocketNow = (query: string, variables: Record<string, unknown>, from: number) =>
      new Promise<{ data?: Record<string, any>; errors?: unknown[] }>((resolve) => {
        let answer: { data?: Record<string, any>; errors?: unknown[] } = { errors: ["no result"] };
        const client = phones[from]?.client;
        if (!client) return resolve({ errors: [`no connection for person ${from}`] });
        client.subscribe(
          { query, variables },
          {
            next: (result) => (answer = result as typeof answer),
            error: (error) => resolve({ errors: Array.isArray(error) ? error : [String(error)] }),
            complete: () => resolve(answer),
          },
        );
      });
    /** A message from person `from`, over HTTP POST or over its socket (--send-over). */
    const send = (variables: Record<string, unknown>, from: number, traceparent?: string) =>
      sendOver === "socket"
        ? overSocket(operations.send, variables, from)
        : post(operations.send, variables, tokens[from]!, traceparent);

    // Conversations: pairs (0,1), (2,3), … seeded with SQL, and one group of `groupSize` made through the gateway.
    const pairs: Array<{ conversationId: string; a: number; b: number }> = [];
    const createGroup = async (owner: number, members: number[]) => {
      // A shared, busy machine can time a set-up call out: try again (a duplicate group is harmless here).
      let id: string | undefined;
      for (let attempt = 1; !id; attempt += 1) {
        const response = await post(
          `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id } }`,
          { input: { title: "bench", memberIds: members.map((m) => ids[m]) } },
          tokens[owner]!,
        ).catch((error: unknown) => ({ errors: [String(error)], data: undefined }));
        id = response.data?.createGroupConversation?.id as string | undefined;
        if (id) break;
        if (attempt >= 5)
          throw new Error(`createGroupConversation failed: ${JSON.stringify(response.errors)}`);
        await sleep(1_000);
      }
      // Each member was invited (no match with the owner): they accept.
      for (const member of members) {
        const invitations = await post(
          `query { myInvitations(first: 50) { edges { node { id conversationId } } } }`,
          {},
          tokens[member]!,
        );
        const edges = (invitations.data?.myInvitations?.edges ?? []) as Array<{
          node: { id: string; conversationId: string };
        }>;
        const invitation = edges.find((edge) => edge.node.conversationId === id)?.node.id;
        const accepted = invitation
          ? await post(
              `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id } }`,
              { i: invitation },
              tokens[member]!,
            )
          : null;
        if (!accepted?.data?.acceptInvitation)
          throw new Error(
            `acceptInvitation failed: ${JSON.stringify(accepted?.errors ?? invitations.errors)}`,
          );
      }
      return id;
    };
    const started = performance.now();
    // The pairs are seeded with SQL (two-member GROUP conversations, as createGroupConversation
    // made them before): set-up through the gateway took minutes on a busy machine and measured nothing.
    for (let a = 0; a + 1 < connections; a += 2) pairs.push({ conversationId: randomUUID(), a, b: a + 1 });
    await chatDb.$executeRawUnsafe(
      `INSERT INTO conversations (id, kind, title) SELECT id::uuid, 'GROUP', 'bench' FROM unnest($1::text[]) AS t(id)`,
      pairs.map((p) => p.conversationId),
    );
    await chatDb.$executeRawUnsafe(
      `INSERT INTO conversation_members (conversation_id, user_id, role)
       SELECT c::uuid, u::uuid, 'MEMBER' FROM unnest($1::text[], $2::text[]) AS t(c, u)`,
      pairs.flatMap((p) => [p.conversationId, p.conversationId]),
      pairs.flatMap((p) => [ids[p.a]!, ids[p.b]!]),
    );
    // The reference has no invitations: its group is seeded with SQL too (members 0…groupSize-1).
    const groupId = referenceChecks
      ? await seedGroup(chatDb, ids.slice(0, groupSize))
      : reference
        ? randomUUID()
        : await createGroup(
            0,
            Array.from({ length: groupSize - 1 }, (_, i) => i + 1),
          );
    // With checks only the names are the reference's own (ref_users): conversations are Chat's.
    if (referenceChecks) await seedReference(referenceUrl, ids, []);
    else if (reference)
      await seedReference(referenceUrl, ids, [
        ...pairs.map((p) => ({ id: p.conversationId, members: [ids[p.a]!, ids[p.b]!] })),
        { id: groupId, members: ids.slice(0, groupSize) },
      ]);
    console.log(
      `made ${pairs.length} pair conversations and a group of ${groupSize} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    await sleep(2_000);
    const generatorLoop = new LoopWindow();
    /** Each service's memory after a full collection (loop-probe.ts; this also restarts its windows). */
    const askProbes = async (
      quiet = false,
    ): Promise<Record<"gateway" | "chat" | "users", ProbeReport | undefined>> => {
      const named = Object.fromEntries(
        Object.entries({ gateway: gatewayProc, chat: chatProc, users: usersProc }).filter(
          ([, child]) => child,
        ),
      ) as Record<string, ChildProcess>;
      for (const [name, child] of Object.entries(named)) {
        rmSync(probeFile(name), { force: true });
        if (quiet) writeFileSync(`${probeFile(name)}.quiet`, "");
        else rmSync(`${probeFile(name)}.quiet`, { force: true });
        child.kill("SIGUSR2");
      }
      // A busy process answers late (its full collection included): wait for every report, 20 s at most.
      for (
        let waited = 0;
        waited < 20_000 && Object.keys(named).some((name) => !existsSync(probeFile(name)));
        waited += 100
      ) {
        await sleep(100);
      }
      await sleep(100);
      const read = (name: string) => {
        try {
          return JSON.parse(readFileSync(probeFile(name), "utf8")) as ProbeReport;
        } catch {
          return undefined;
        }
      };
      return { gateway: read("gateway"), chat: read("chat"), users: read("users") };
    };
    const memoryAfterCollection = async () => {
      const reports = await askProbes();
      const memory = (name: "gateway" | "chat" | "users") =>
        reports[name]?.memory ?? {
          rssKb: NaN,
          heapUsedKb: NaN,
          heapTotalKb: NaN,
          newSpaceKb: NaN,
          externalKb: NaN,
          collected: false,
        };
      return { gateway: memory("gateway"), chat: memory("chat"), users: memory("users") };
    };
    const heapBaseline = await memoryAfterCollection();
    const baseline = {
      gateway: rssKb(pidOf(gatewayProc)),
      chat: rssKb(pidOf(chatProc)),
      users: rssKb(pidOf(usersProc)),
    };

    // Connections: every phone opens one graphql-ws connection and subscribes to its feed.
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let received = 0;
    let groupReceived = 0;
    let errors = 0;
    const feed = operations.feed;
    const opened = performance.now();
    const connectFetches = { ...proxy.counts };
    const connectCpu = { gateway: cpuSeconds(pidOf(gatewayProc)), users: cpuSeconds(pidOf(usersProc)) };
    let acked = 0;
    for (let i = 0; i < connections; i += 500) {
      const batch: Array<Promise<void>> = [];
      for (let n = i; n < Math.min(i + 500, connections); n += 1) {
        batch.push(
          new Promise<void>((resolve, reject) => {
            let joined = false;
            const client = createClient({
              url: `ws://127.0.0.1:${direct ? ports.chat : ports.gateway}/graphql`,
              webSocketImpl: WebSocket,
              connectionParams: { authorization: `Bearer ${tokens[n]}` },
              lazy: false,
              // A starved machine can miss the 3 s connection_init deadline (4408) while 10,000
              // sockets open: retried then; once everyone is in, a drop is counted, not hidden.
              retryAttempts: 3,
              shouldRetry: () => acked < connections,
              onNonLazyError: (error) =>
                reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
              on: {
                connected: () => {
                  if (!joined) acked += 1;
                  joined = true;
                  resolve();
                },
              },
            });
            const userId = ids[n]!;
            phones[n] = { userId, token: tokens[n]!, client };
            client.subscribe(
              { query: feed },
              {
                next: (result) => {
                  const event = (
                    result.data as {
                      myChatEvents?: {
                        kind: string;
                        conversationId: string;
                        message: { text: string | null; sender: { id: string; displayName: string } } | null;
                      };
                    }
                  )?.myChatEvents;
                  if (result.errors) errors += 1;
                  if (event?.kind !== "MESSAGE_ADDED" || !event.message?.text) return;
                  if (event.message.sender.id === userId) return; // the sender's own echo
                  if (!event.message.sender.displayName.startsWith("Person ")) errors += 1;
                  if (event.conversationId === groupId) {
                    groupReceived += 1;
                    return;
                  }
                  const at = sentAt.get(event.message.text);
                  if (at !== undefined) {
                    latencies.push(performance.now() - at);
                    received += 1;
                  }
                },
                error: () => (errors += 1),
                complete: () => undefined,
              },
            );
          }),
        );
      }
      await Promise.all(batch);
    }
    // Subscribed means the upstream subscription exists: wait until Chat answers live for the last pair.
    console.log(
      `opened ${acked} graphql-ws connections in ${((performance.now() - opened) / 1000).toFixed(1)} s`,
    );
    await sleep(settleSeconds * 1000);
    console.log(
      `connect burst (opening to ${settleSeconds} s after): Users entity fetches ${proxy.counts.entities - connectFetches.entities} (${proxy.counts.warming - connectFetches.warming} warming ${proxy.counts.warmed - connectFetches.warmed} users); CPU-ms gateway ${((cpuSeconds(pidOf(gatewayProc)) - connectCpu.gateway) * 1000).toFixed(0)}, users ${((cpuSeconds(pidOf(usersProc)) - connectCpu.users) * 1000).toFixed(0)}`,
    );
    const heapIdle = await memoryAfterCollection();
    const idle = {
      gateway: rssKb(pidOf(gatewayProc)),
      chat: rssKb(pidOf(chatProc)),
      users: rssKb(pidOf(usersProc)),
    };
    const perConnection = (name: "gateway" | "chat") =>
      ((idle[name] - baseline[name]) / connections).toFixed(1);
    const collectedPerConnection = (
      name: "gateway" | "chat",
      field: "rssKb" | "heapUsedKb" | "heapTotalKb" | "newSpaceKb",
    ) => ((heapIdle[name][field] - heapBaseline[name][field]) / connections).toFixed(1);
    console.log(
      `after a full collection: gateway RSS ${collectedPerConnection("gateway", "rssKb")} KB, JS heap ${collectedPerConnection("gateway", "heapUsedKb")} KB per connection; chat RSS ${collectedPerConnection("chat", "rssKb")} KB, JS heap ${collectedPerConnection("chat", "heapUsedKb")} KB per connection`,
    );
    // RSS = JS heap committed (used + unused, young generation included) + everything else (native).
    const split = (name: "gateway" | "chat") =>
      `${name} JS heap committed ${collectedPerConnection(name, "heapTotalKb")} KB (young generation ${collectedPerConnection(name, "newSpaceKb")} KB; ${(heapIdle[name].newSpaceKb / 1024).toFixed(0)} MiB in all), outside the JS heap ${((heapIdle[name].rssKb - heapIdle[name].heapTotalKb - (heapBaseline[name].rssKb - heapBaseline[name].heapTotalKb)) / connections).toFixed(1)} KB`;
    console.log(`  per connection, after a full collection: ${split("gateway")}; ${split("chat")}`);
    if (heapIdle.gateway.reducedRssKb !== undefined && heapBaseline.gateway.reducedRssKb !== undefined) {
      const reduced = (name: "gateway" | "chat") =>
        `${name} ${(((heapIdle[name].reducedRssKb ?? NaN) - (heapBaseline[name].reducedRssKb ?? NaN)) / connections).toFixed(1)} KB (the collection took ${(heapIdle[name].reducedGcMs ?? NaN).toFixed(0)} ms)`;
      console.log(
        `  RSS per connection after a memory-reducing collection (BENCH_REDUCE_MEMORY=1): ${reduced("gateway")}, ${reduced("chat")}`,
      );
    }
    console.log(
      `RSS before -> after ${connections} idle subscribed connections: gateway ${(baseline.gateway / 1024).toFixed(0)} -> ${(idle.gateway / 1024).toFixed(0)} MiB (${perConnection("gateway")} KB per connection), chat ${(baseline.chat / 1024).toFixed(0)} -> ${(idle.chat / 1024).toFixed(0)} MiB (${perConnection("chat")} KB per connection)`,
    );

    // What each phase measures: the services' CPU (/proc), PostgreSQL's (the backends serving the
    // bench databases), their commits, and each service's event-loop delay and GC (loop-probe.ts).
    const snapshot = async () => {
      const backends = await usersDb.$queryRawUnsafe<Array<{ pid: number }>>(
        `SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()`,
        benchDatabases,
      );
      const stats = await usersDb.$queryRawUnsafe<Array<{ commits: bigint; sessions: bigint }>>(
        `SELECT sum(xact_commit)::bigint AS commits, sum(sessions)::bigint AS sessions FROM pg_stat_database WHERE datname = ANY($1::text[])`,
        benchDatabases,
      );
      const postgres = new Map<number, number>();
      for (const { pid } of backends) {
        try {
          postgres.set(pid, cpuSeconds(pid));
        } catch {
          // ended meanwhile
        }
      }
      return {
        at: performance.now(),
        gateway: cpuSeconds(pidOf(gatewayProc)),
        chat: cpuSeconds(pidOf(chatProc)),
        users: cpuSeconds(pidOf(usersProc)),
        syscalls: { gateway: syscallsOf(pidOf(gatewayProc)), chat: syscallsOf(pidOf(chatProc)) },
        threads: {
          gateway: threadStatsOf(pidOf(gatewayProc)),
          chat: threadStatsOf(pidOf(chatProc)),
          users: threadStatsOf(pidOf(usersProc)),
        },
        bench: process.cpuUsage(),
        postgres,
        commits: Number(stats[0]?.commits ?? 0),
        /** Connections PostgreSQL accepted to the bench's databases so far (the bench's own included). */
        sessions: Number(stats[0]?.sessions ?? 0),
      };
    };
    type Snapshot = Awaited<ReturnType<typeof snapshot>>;
    const threadsSpent = (before: ThreadStats, after: ThreadStats): ThreadStats => ({
      mainCpu: after.mainCpu - before.mainCpu,
      otherCpu: after.otherCpu - before.otherCpu,
      mainVoluntary: after.mainVoluntary - before.mainVoluntary,
      mainInvoluntary: after.mainInvoluntary - before.mainInvoluntary,
      otherSwitches: after.otherSwitches - before.otherSwitches,
    });
    const spent = (before: Snapshot, after: Snapshot) => {
      let postgres = 0;
      for (const [pid, seconds] of after.postgres) postgres += seconds - (before.postgres.get(pid) ?? 0);
      const bench = process.cpuUsage(before.bench);
      return {
        seconds: (after.at - before.at) / 1000,
        gateway: after.gateway - before.gateway,
        chat: after.chat - before.chat,
        users: after.users - before.users,
        postgres,
        bench: (bench.user + bench.system) / 1e6,
        commits: after.commits - before.commits,
        sessions: after.sessions - before.sessions,
        syscalls: {
          gateway: after.syscalls.gateway - before.syscalls.gateway,
          chat: after.syscalls.chat - before.syscalls.chat,
        },
        threads: {
          gateway: threadsSpent(before.threads.gateway, after.threads.gateway),
          chat: threadsSpent(before.threads.chat, after.threads.chat),
          users: threadsSpent(before.threads.users, after.threads.users),
        },
      };
    };
    /** Per unit (a message, or a second when idle): each service's main-thread CPU-ms against its other threads', and its main thread's sleeps and preemptions. */
    const describeThreads = (threads: Record<"gateway" | "chat" | "users", ThreadStats>, units: number) =>
      Object.entries(threads)
        .map(
          ([name, t]) =>
            `${name} main ${((t.mainCpu * 1000) / units).toFixed(2)} + other threads ${((t.otherCpu * 1000) / units).toFixed(2)} CPU-ms, main thread ${(t.mainVoluntary / units).toFixed(1)} sleeps + ${(t.mainInvoluntary / units).toFixed(1)} preemptions, other threads ${(t.otherSwitches / units).toFixed(1)} switches`,
        )
        .join("; ");
    /**
     * Asks every service's probe for what it saw since the last call (and starts it over), and
     * reads the load generator's own loop: a stall here delays the sends and receipts it times.
     */
    const probes = async (quiet = false) => {
      const reports = await askProbes(quiet);
      return { ...reports, "load generator": generatorLoop.take() };
    };
    /** `per`: the phase's messages stored (allocation per message) or, idle, its seconds (per second). */
    const describeProbes = (
      reports: Awaited<ReturnType<typeof probes>>,
      per: { count: number; unit: string },
    ) =>
      Object.entries(reports)
        .map(([name, r]) =>
          r
            ? `${name} loop delay ${r.loopDelayMs.p50 === null || Number.isNaN(r.loopDelayMs.p50) ? "not measured (BENCH_LOOP_DELAY=off)" : `p50 ${r.loopDelayMs.p50.toFixed(1)} / p99 ${r.loopDelayMs.p99.toFixed(1)} / max ${r.loopDelayMs.max.toFixed(1)} ms`}, GC ${r.gc.minor} minor + ${r.gc.major} major = ${r.gc.totalMs.toFixed(0)} ms (longest ${r.gc.maxMs.toFixed(1)} ms, longest major ${r.gc.majorMaxMs.toFixed(1)} ms; young generation ${r.gc.newSpaceMb.min.toFixed(0)}–${r.gc.newSpaceMb.max.toFixed(0)} MiB); allocated ${(r.gc.allocatedKb / 1024).toFixed(1)} MiB = ${(r.gc.allocatedKb / per.count).toFixed(1)} KiB per ${per.unit}`
            : `${name} probe: no report`,
        )
        .join("\n  ");

    /**
     * Every probe report starts with a full collection; its background sweeping (tens of CPU-ms
     * in the next second for a heap of 200 MB) is the bench's doing, not the phase's work.
     */
    const settle = () => sleep(2_000);

    // Idle: subscribed, no traffic. All background work (timers, pings, pollers, relays) shows here.
    // First with the probes' loop-delay timers stopped (the services' own burn), then as before.
    await probes(true);
    await settle();
    const quietBefore = await snapshot();
    await sleep(idleSeconds * 1000);
    const quietSpent = spent(quietBefore, await snapshot());
    await probes();
    const quietPerSecond = (cpu: number) => ((cpu * 1000) / quietSpent.seconds).toFixed(1);
    console.log(
      `idle, the probes' loop-delay timers stopped, ${quietSpent.seconds.toFixed(1)} s: CPU-ms per second gateway ${quietPerSecond(quietSpent.gateway)}, chat ${quietPerSecond(quietSpent.chat)}, users ${quietPerSecond(quietSpent.users)} = ${quietPerSecond(quietSpent.gateway + quietSpent.chat + quietSpent.users)} together; read + write system calls per second gateway ${quietPerSecond(quietSpent.syscalls.gateway / 1000)}, chat ${quietPerSecond(quietSpent.syscalls.chat / 1000)}; load average ${loadAverage()}\n  per second: ${describeThreads(quietSpent.threads, quietSpent.seconds)}`,
    );
    await settle();
    const idleBefore = await snapshot();
    await sleep(idleSeconds * 1000);
    const idleSpent = spent(idleBefore, await snapshot());
    const idleProbes = await probes();
    const perSecond = (cpu: number) => ((cpu * 1000) / idleSpent.seconds).toFixed(1);
    console.log(
      `idle with ${connections} subscribed connections, ${idleSpent.seconds.toFixed(1)} s: CPU-ms per second gateway ${perSecond(idleSpent.gateway)}, chat ${perSecond(idleSpent.chat)}, users ${perSecond(idleSpent.users)} = ${perSecond(idleSpent.gateway + idleSpent.chat + idleSpent.users)} together; PostgreSQL backends ${perSecond(idleSpent.postgres)} (${perSecond(idleSpent.commits / 1000)} commits per second); read + write system calls per second gateway ${perSecond(idleSpent.syscalls.gateway / 1000)}, chat ${perSecond(idleSpent.syscalls.chat / 1000)}; load average ${loadAverage()}\n  per second: ${describeThreads(idleSpent.threads, idleSpent.seconds)}\n  ${describeProbes(idleProbes, { count: idleSpent.seconds, unit: "second" })}`,
    );

    // Steady load, one phase per rate: `rate` messages a second, each to a random pair, through the gateway.
    let phaseNumber = 0;
    /** Who has sent in this run: only their first message can miss the gateway's cache of users' public fields. */
    const senders = new Set<number>();
    for (const rate of rates) {
      phaseNumber += 1;
      const fetchesBefore = { ...proxy.counts };
      let newSenders = 0;
      received = 0;
      latencies.length = 0;
      sentAt.clear();
      await probes();
      await settle();
      const before = await snapshot();
      const tcpBefore = tcpCounters();
      const traced: TracedRequest[] = [];
      collector?.clear();
      const socketLooks: Array<Promise<Map<string, SocketGroup> | undefined>> = [];
      const socketTimer = lookAtSockets
        ? setInterval(() => socketLooks.push(socketGroups(socketRoles).catch(() => undefined)), 2_000)
        : undefined;
      const total = rate * seconds;
      let sent = 0;
      let sendErrors = 0;
      const sendLatencies: number[] = [];
      /** Round trips by the second of the phase they were sent in: a warm-up or a one-off stall shows as one slow second. */
      const bySecond: number[][] = [];
      const pending: Array<Promise<unknown>> = [];
      const tick = 10;
      const loadStarted = performance.now();
      // The services' CPU second by second (/proc): what each second's messages cost, warm-up included.
      const servicesCpu = () =>
        cpuSeconds(pidOf(gatewayProc)) + cpuSeconds(pidOf(chatProc)) + cpuSeconds(pidOf(usersProc));
      const cpuBySecond: Array<{ cpu: number; sent: number }> = [];
      let lastCpu = { cpu: servicesCpu(), sent: 0 };
      const cpuTimer = setInterval(() => {
        const now = { cpu: servicesCpu(), sent };
        cpuBySecond.push({ cpu: now.cpu - lastCpu.cpu, sent: now.sent - lastCpu.sent });
        lastCpu = now;
      }, 1_000);
      const straced =
        straceSeconds > 0 && phaseNumber === 1
          ? (async () => {
              await sleep(3_000);
              const from = sent;
              const [gateway, chat] = await Promise.all([
                traceSocketCalls(
                  pidOf(gatewayProc),
                  straceSeconds,
                  socketRoles,
                  `/tmp/strace-gateway-${stamp}`,
                ),
                chatProc
                  ? traceSocketCalls(pidOf(chatProc), straceSeconds, socketRoles, `/tmp/strace-chat-${stamp}`)
                  : undefined,
              ]);
              return { gateway, chat, messages: sent - from };
            })()
          : undefined;
      await new Promise<void>((resolve) => {
        let due = 0;
        const timer = setInterval(() => {
          due = Math.min(total, Math.floor(((performance.now() - loadStarted) / 1000) * rate));
          while (sent < due) {
            const pair = pairs[Math.floor(Math.random() * pairs.length)]!;
            const from = Math.random() < 0.5 ? pair.a : pair.b;
            if (!senders.has(from)) {
              senders.add(from);
              newSenders += 1;
            }
            const text = `b${phaseNumber}-${sent}`;
            const at = performance.now();
            sentAt.set(text, at);
            sent += 1;
            const trace = collector?.newTrace();
            const tracedAt = epochMs();
            const request = send(
              { input: { conversationId: pair.conversationId, clientMessageId: randomUUID(), text } },
              from,
              trace?.traceparent,
            )
              .then((r) => {
                sendLatencies.push(performance.now() - at);
                const second = Math.floor((at - loadStarted) / 1000);
                (bySecond[second] ??= []).push(performance.now() - at);
                if (trace)
                  traced.push({
                    label: text,
                    traceId: trace.traceId,
                    sentAt: tracedAt,
                    answeredAt: epochMs(),
                    spans: collector!.spansOf(trace.traceId),
                  });
                if (r.errors || !operations.answered(r.data)) {
                  sendErrors += 1;
                  if (sendErrors <= 3)
                    console.log(`send error: ${JSON.stringify(r.errors?.[0] ?? r.data).slice(0, 200)}`);
                }
              })
              .catch((error: unknown) => {
                sendErrors += 1;
                if (sendErrors <= 3) console.log(`send failed: ${String(error)}`);
              });
            pending.push(request);
          }
          if (sent >= total) {
            clearInterval(timer);
            resolve();
          }
        }, tick);
      });
      const sendSeconds = (performance.now() - loadStarted) / 1000;
      // Every send answered (stored or refused), then what was stored reaches its receiver.
      await Promise.allSettled(pending);
      for (let attempt = 0; attempt < 600 && received + sendErrors < total; attempt += 1) await sleep(50);
      const loadSeconds = (performance.now() - loadStarted) / 1000;
      clearInterval(socketTimer);
      clearInterval(cpuTimer);
      const cpu = spent(before, await snapshot());
      const tcpAfter = tcpCounters();
      const loadProbes = await probes();
      const warmingFetches = proxy.counts.warming - fetchesBefore.warming;
      const pairFetches = proxy.counts.entities - fetchesBefore.entities - warmingFetches;
      const eventFetches = proxy.counts.events - fetchesBefore.events;
      const fetchedUsers = proxy.counts.representations - fetchesBefore.representations;
      latencies.sort((a, b) => a - b);
      sendLatencies.sort((a, b) => a - b);
      const stored = Math.max(1, sent - sendErrors);
      const perMessage = (seconds: number) => ((seconds * 1000) / stored).toFixed(2);
      console.log(`--- ${rate} messages/s for ${seconds} s`);
      console.log(
        `sendMessage round trip through the gateway: p50 ${percentile(sendLatencies, 50).toFixed(1)} ms, p99 ${percentile(sendLatencies, 99).toFixed(1)} ms`,
      );
      console.log(
        `  services' CPU-ms per message sent, by second: ${cpuBySecond
          .filter((second) => second.sent > 0)
          .map((second) => ((second.cpu * 1000) / second.sent).toFixed(1))
          .join(", ")}`,
      );
      console.log(
        `  by second of the phase, max / p50 ms: ${bySecond
          .map((list) => {
            list.sort((a, b) => a - b);
            return `${list.at(-1)!.toFixed(0)} / ${percentile(list, 50).toFixed(0)}`;
          })
          .join(", ")}`,
      );
      console.log(
        `offered ${sent} messages in ${sendSeconds.toFixed(1)} s (${(sent / sendSeconds).toFixed(0)}/s), ${sendErrors} refused or failed; ${sent - sendErrors} stored; received ${received} at the other member within ${loadSeconds.toFixed(1)} s (${(loadSeconds - sendSeconds).toFixed(1)} s after the last send), ${errors} subscription errors`,
      );
      console.log(
        `send-to-receive latency: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
      );
      console.log(
        `CPU seconds during the load (${loadSeconds.toFixed(1)} s wall, 2 cores): gateway ${cpu.gateway.toFixed(2)}, chat ${cpu.chat.toFixed(2)}, users ${cpu.users.toFixed(2)}, PostgreSQL backends ${cpu.postgres.toFixed(2)}, load generator ${cpu.bench.toFixed(2)}`,
      );
      console.log(
        `CPU-ms per message stored: gateway ${perMessage(cpu.gateway)} + chat ${perMessage(cpu.chat)} + users ${perMessage(cpu.users)} = ${perMessage(cpu.gateway + cpu.chat + cpu.users)} services; PostgreSQL ${perMessage(cpu.postgres)} (${(cpu.commits / stored).toFixed(2)} commits per message, ${cpu.sessions} connections opened); load average ${loadAverage()}`,
      );
      console.log(`  ${describeProbes(loadProbes, { count: stored, unit: "message" })}`);
      // The idle rate (keep-alive pings, timers, pollers) over the phase's wall time, taken off.
      const beyondIdle = (phase: number, idleTotal: number) =>
        (phase - (idleTotal * cpu.seconds) / idleSpent.seconds) / stored;
      console.log(
        `beyond the idle rate, per message: CPU-ms gateway ${(beyondIdle(cpu.gateway, idleSpent.gateway) * 1000).toFixed(2)} + chat ${(beyondIdle(cpu.chat, idleSpent.chat) * 1000).toFixed(2)} + users ${(beyondIdle(cpu.users, idleSpent.users) * 1000).toFixed(2)}`,
      );
      console.log(
        `read + write system calls per message stored: gateway ${(cpu.syscalls.gateway / stored).toFixed(1)} (${beyondIdle(cpu.syscalls.gateway, idleSpent.syscalls.gateway).toFixed(1)} beyond the idle rate), chat ${(cpu.syscalls.chat / stored).toFixed(1)} (${beyondIdle(cpu.syscalls.chat, idleSpent.syscalls.chat).toFixed(1)})`,
      );
      console.log(`threads per message stored: ${describeThreads(cpu.threads, stored)}`);
      console.log(`TCP counters (the machine's): ${describeTcpDelta(tcpBefore, tcpAfter)}`);
      const straceCounts = await straced;
      if (straceCounts) {
        console.log(describePeerCounts("gateway (strace)", straceCounts.gateway, straceCounts.messages));
        if (straceCounts.chat)
          console.log(describePeerCounts("chat (strace)", straceCounts.chat, straceCounts.messages));
      }
      if (lookAtSockets) {
        const looks = (await Promise.all(socketLooks)).filter((look) => look !== undefined);
        console.log(
          `the bench's sockets, largest figure of ${looks.length} looks (ss, every 2 s):\n    ${describeSocketGroups(mergeSocketGroups(looks))}`,
        );
      }
      if (collector) {
        // The services export every 500 ms: wait for the last batches, then read each send's spans.
        await sleep(2_000);
        for (const request of traced) request.spans = collector.spansOf(request.traceId);
        console.log(describeTraces(traced));
      }
      console.log(
        `Users entity fetches: ${pairFetches} for ${sent} pair messages (${(pairFetches / Math.max(1, sent)).toFixed(2)} per message; each delivered to 2 subscribers): ${eventFetches} for events (${(eventFetches / Math.max(1, sent)).toFixed(2)} per message; ${newSenders} senders sent for the first time in the run), ${pairFetches - eventFetches} for the sends' answers; ${fetchedUsers} users asked for in them; ${warmingFetches} warming fetches besides`,
      );
    }

    // Fan-out: one group with `groupSize` subscribed members, messages from different senders.
    // Past the 1 s share window; the gateway keeps users' public fields until they change, so a
    // sender seen in the pair phases costs no fetch here: at most 1 per message, whatever the group's size.
    await sleep(1_500);
    const groupMessages = 50;
    const groupFetchesBefore = proxy.counts.events;
    groupReceived = 0;
    let groupStored = 0;
    const groupStarted = performance.now();
    const groupCpuBefore = { gateway: cpuSeconds(pidOf(gatewayProc)), chat: cpuSeconds(pidOf(chatProc)) };
    for (let i = 0; i < groupMessages; i += 1) {
      const r = await send(
        { input: { conversationId: groupId, clientMessageId: randomUUID(), text: `g${i}` } },
        i % groupSize,
      );
      if (!r.errors) groupStored += 1;
    }
    console.log(`group sends stored: ${groupStored}/${groupMessages}`);
    const expected = groupStored * (groupSize - 1);
    for (let attempt = 0; attempt < 400 && groupReceived < expected; attempt += 1) await sleep(50);
    const groupFetches = proxy.counts.events - groupFetchesBefore;
    const groupCpuMs = (pid: number, before: number) =>
      (((cpuSeconds(pid) - before) * 1000) / Math.max(1, groupStored)).toFixed(2);
    console.log(
      `group of ${groupSize}, ${groupStored} sends one after the other, ${((performance.now() - groupStarted) / 1000).toFixed(1)} s: CPU-ms per message gateway ${groupCpuMs(pidOf(gatewayProc), groupCpuBefore.gateway)}, chat ${groupCpuMs(pidOf(chatProc), groupCpuBefore.chat)} (idle burn included); load average ${loadAverage()}`,
    );
    console.log(
      `group of ${groupSize}: ${groupStored} messages stored, ${groupReceived}/${expected} deliveries to other members, Users entity fetches for events ${groupFetches} (${(groupFetches / Math.max(1, groupStored)).toFixed(2)} per message)`,
    );
    console.log(
      `RSS at the end: gateway ${(rssKb(pidOf(gatewayProc)) / 1024).toFixed(0)} MiB, chat ${(rssKb(pidOf(chatProc)) / 1024).toFixed(0)} MiB`,
    );
  } finally {
    await Promise.all(phones.map((p) => p.client.dispose()));
    for (const child of children.reverse()) child.kill("SIGTERM");
    await sleep(1_000);
    // A service still draining 10,000 sockets on a starved machine must not outlive the bench.
    for (
      let waited = 0;
      waited < 10_000 && children.some((c) => c.exitCode === null && c.signalCode === null);
      waited += 250
    )
      await sleep(250);
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const name of ["gateway", "chat", "users"])
      for (const suffix of ["", ".quiet"])
        rmSync(path.join(os.tmpdir(), `hv-bench-chat-${stamp}-${name}.json${suffix}`), { force: true });
    proxy?.close();
    collector?.close();
    await usersDb.$disconnect();
    await chatDb.$disconnect();
    const databases = [...Object.values(urls), ...referenceOwn];
    if (keep) console.log(`kept ${databases.join(" ")}`);
    else
      for (const url of databases)
        await dropDatabase(url).catch((error: unknown) =>
          console.error(`could not drop ${url}: ${String(error)}`),
        );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

/**
 * What the single-process benchmarks share: the machine line, a service run as a child process
 * (its CPU time read from /proc), a database of the bench's own, a keep-alive JSON client, and a
 * bounded closed loop of concurrent clients.
 */
import { execFileSync, execSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import {
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  ensureDatabase,
  migrateDeploy,
  dropDatabase,
  withDatabaseName,
  type SchemaName,
} from "@hv/prisma";
import { createAccessTokenIssuer, type AccessTokenIssuer, type SigningKeyJwk } from "@hv/kit";
import { BUILT_PROCESSES } from "../../scripts/build/processes";
import { percentile } from "./args";

export const ROOT = path.resolve(__dirname, "..", "..");

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `uptime`'s three load averages. */
export const loadAverage = () =>
  os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(" ");

/** The `command:` and `machine:` lines every bench prints first. */
export function printHeader(script: string): void {
  console.log(`command: pnpm exec tsx bench/${script} ${process.argv.slice(2).join(" ")}`.trim());
  console.log(
    `machine: ${os.cpus()[0]?.model ?? "?"}, nproc ${execSync("nproc").toString().trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, services ${RUN_MODE === "built" ? "built (dist/, NODE_ENV=production)" : "from source (tsx, NODE_ENV=development)"}, load average ${loadAverage()}`,
  );
}

/** Resident memory of a process, in KiB (/proc/<pid>/status VmRSS). */
export const rssKb = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);

/** Read and write system calls a process made so far (/proc/<pid>/io syscr + syscw). */
export function syscallsOf(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  return Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN) + Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN);
}

/** What a process's threads did so far: the main thread's and the others' (V8's GC and compiler workers, libuv's pool). */
export interface ThreadStats {
  /** CPU seconds (utime + stime). */
  mainCpu: number;
  otherCpu: number;
  /** Times the main thread went to sleep (voluntary: an empty event loop) and was preempted (involuntary). */
  mainVoluntary: number;
  mainInvoluntary: number;
  /** Context switches of the other threads together (voluntary + involuntary). */
  otherSwitches: number;
}

/** Per-thread counters of a process (/proc/<pid>/task/<tid>/stat and status); threads ended meanwhile are not counted. */
export function threadStatsOf(pid: number): ThreadStats {
  const stats: ThreadStats = {
    mainCpu: 0,
    otherCpu: 0,
    mainVoluntary: 0,
    mainInvoluntary: 0,
    otherSwitches: 0,
  };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    let status: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpu = (Number(fields[11]) + Number(fields[12])) / 100;
    const voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const involuntary = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    if (Number(tid) === pid) {
      stats.mainCpu += cpu;
      stats.mainVoluntary += voluntary;
      stats.mainInvoluntary += involuntary;
    } else {
      stats.otherCpu += cpu;
      stats.otherSwitches += voluntary + involuntary;
    }
  }
  return stats;
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** User + system CPU seconds of a process so far, all its threads (libuv's pool included). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ 100
}

/** Each thread's time on a CPU so far, nanoseconds (/proc/<pid>/task/<tid>/schedstat), by thread id. */
export function threadRuntimesOf(pid: number): Map<number, number> {
  const runtimes = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const schedstat = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8");
      runtimes.set(Number(tid), Number(schedstat.slice(0, schedstat.indexOf(" "))));
    } catch {
      // ended meanwhile
    }
  }
  return runtimes;
}

/**
 * CPU seconds a process's threads ran since `before` (`threadRuntimesOf`), to the nanosecond
 * (`cpuSecondsOf` counts 10 ms ticks); a thread started meanwhile counts whole, one that ended
 * meanwhile not at all.
 */
export function cpuSecondsSince(pid: number, before: Map<number, number>): number {
  let nanoseconds = 0;
  for (const [tid, runtime] of threadRuntimesOf(pid)) nanoseconds += runtime - (before.get(tid) ?? 0);
  return nanoseconds / 1e9;
}

/** A migrated database of this bench run (hv_bench_<label>_<stamp>), on the subgraph's server. */
export async function benchDatabase(name: SchemaName, label: string, stamp: string): Promise<string> {
  const url = withDatabaseName(
    process.env[databaseUrlEnvVar(name)] ?? defaultDatabaseUrl(name),
    `hv_bench_${label}_${stamp}`,
  );
  await ensureDatabase(url);
  await migrateDeploy(name, url);
  return url;
}

/**
 * How the benches run a service, from BENCH_RUN: "built" (the default) is the way it is deployed,
 * `npm run build`'s dist/<process>/main.js under plain Node with NODE_ENV=production; "source" is
 * `node --import tsx <entry>` with NODE_ENV=development, as `npm start` runs it.
 */
export type RunMode = "built" | "source";
export const RUN_MODE: RunMode = process.env.BENCH_RUN === "source" ? "source" : "built";

/**
 * Secrets production refuses to start without, and the revocation assertions' one it is deployed
 * with, made for this bench run (the bench's own env wins).
 */
const PRODUCTION_ENV: Record<string, string> = {
  NODE_ENV: "production",
  AUTH_REVOCATION_ASSERTION_SECRET: randomBytes(32).toString("base64url"),
  MEDIA_GRANT_SECRET: randomBytes(32).toString("base64url"),
  MEDIA_URL_SECRET: randomBytes(32).toString("base64url"),
  MAIL_SMTP_URL: "smtp://127.0.0.1:9",
  APP_LINK_BASE_URL: "https://app.example",
};

const builtThisRun = new Set<string>();

/**
 * The built entry of the process whose source is `entry`, in the checkout that holds it (this one,
 * or another one's for a before/after comparison): built there once per bench run, with its own
 * build script.
 */
function builtEntryOf(entry: string): string {
  const absolute = path.resolve(ROOT, entry);
  const built = BUILT_PROCESSES.find((candidate) => absolute.endsWith(`${path.sep}${candidate.source}`));
  if (!built) throw new Error(`BENCH_RUN=built: ${entry} is not the source of a built process`);
  const checkout = absolute.slice(0, absolute.length - built.source.length - 1);
  const key = `${checkout}:${built.name}`;
  if (!builtThisRun.has(key)) {
    execFileSync(process.execPath, ["--import", "tsx", "scripts/build/build.ts", "--only", built.name], {
      cwd: checkout,
      stdio: ["ignore", "ignore", "inherit"],
    });
    builtThisRun.add(key);
  }
  return path.join(checkout, built.entry);
}

/**
 * A service's process (RUN_MODE says which file and NODE_ENV) with this environment added,
 * resolved once GET `readyUrl` answers 200. Its stderr is passed through. `nodeArgs` go before
 * the entry (e.g. `--cpu-prof`, an `--import` of a bench probe, which Node strips of its types).
 */
export async function startChild(
  entry: string,
  env: Record<string, string>,
  readyUrl: string,
  nodeArgs: string[] = [],
): Promise<ChildProcess> {
  const args =
    RUN_MODE === "built"
      ? [...nodeArgs, builtEntryOf(entry)]
      : ["--import", "tsx", ...nodeArgs, path.resolve(ROOT, entry)];
  const modeEnv = RUN_MODE === "built" ? PRODUCTION_ENV : { NODE_ENV: "development" };
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...modeEnv, LOG_LEVEL: "warn", HOST: "127.0.0.1", ...env },
    // BENCH_SERVICE_STDOUT=inherit shows what a V8 flag prints (e.g. BENCH_NODE_ARGS=--trace-gc).
    stdio: ["ignore", process.env.BENCH_SERVICE_STDOUT === "inherit" ? "inherit" : "ignore", "inherit"],
  });
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  for (let attempt = 0; ; attempt += 1) {
    if (exited !== undefined) throw new Error(`${entry} exited (${exited}) before it was ready`);
    const response = await fetch(readyUrl).catch(() => null);
    if (response?.status === 200) return child;
    if (attempt > 1200) throw new Error(`${entry} never became ready`);
    await sleep(50);
  }
}

/** SIGTERM, then waits (at most 15 s) for the process to exit. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(15_000)]);
}

export interface JsonReply<T> {
  status: number;
  body: T;
}

/** POSTs JSON over a keep-alive pool (no fetch: its streams cost the load generator CPU). */
export function jsonClient(maxSockets: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    post<T>(url: string, payload: unknown, headers: Record<string, string> = {}): Promise<JsonReply<T>> {
      const body = JSON.stringify(payload);
      return new Promise((resolve, reject) => {
        const req = http.request(
          url,
          {
            method: "POST",
            agent,
            headers: {
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
              ...headers,
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => {
              try {
                resolve({
                  status: res.statusCode ?? 0,
                  body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as T,
                });
              } catch (error) {
                reject(error instanceof Error ? error : new Error(String(error)));
              }
            });
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

export interface LoopResult {
  done: number;
  failed: number;
  /** The first few failures' messages, to print. */
  errors: string[];
  seconds: number;
  /** Latencies of the successful operations, ascending (ms). */
  latencies: number[];
  /** CPU seconds the watched process used during the loop. */
  cpuSeconds: number;
}

/**
 * `count` operations (operation i for i = 0…count-1) by `concurrency` clients, each starting the
 * next as soon as its previous one answered (closed loop); the watched process's CPU time over it.
 * `client` (0…concurrency-1) says which client runs the operation. An operation fails by throwing.
 */
export async function closedLoop(
  count: number,
  concurrency: number,
  watchedPid: number,
  operation: (index: number, client: number) => Promise<void>,
): Promise<LoopResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  let next = 0;
  const cpuBefore = cpuSecondsOf(watchedPid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async (_, client) => {
      for (let index = next++; index < count; index = next++) {
        const at = performance.now();
        try {
          await operation(index, client);
          latencies.push(performance.now() - at);
        } catch (error) {
          failed += 1;
          if (errors.length < 3) errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSecondsOf(watchedPid) - cpuBefore;
  latencies.sort((a, b) => a - b);
  return { done: latencies.length, failed, errors, seconds, latencies, cpuSeconds };
}

/** One line for a loop: operations/s, latency, CPU per operation and the load average. */
export function describeLoop(label: string, result: LoopResult, process = "the service"): string {
  const perOperation = (result.cpuSeconds * 1000) / Math.max(1, result.done);
  return (
    `${label}: ${result.done} in ${result.seconds.toFixed(1)} s = ${(result.done / result.seconds).toFixed(1)}/s` +
    `${result.failed ? ` (${result.failed} failed: ${result.errors.join(" | ")})` : ""}; ` +
    `p50 ${percentile(result.latencies, 50).toFixed(1)} ms, p99 ${percentile(result.latencies, 99).toFixed(1)} ms; ` +
    `${process} CPU ${result.cpuSeconds.toFixed(2)} s (${(result.cpuSeconds / result.seconds).toFixed(2)} cores) = ` +
    `${perOperation.toFixed(2)} CPU-ms each; load average ${loadAverage()}`
  );
}

/** Throws on a GraphQL reply with errors or a non-200 status. */
export function expectData<T>(
  reply: JsonReply<{ data?: T | null; errors?: Array<{ message?: string; extensions?: { code?: string } }> }>,
): T {
  const error = reply.body.errors?.[0];
  if (reply.status !== 200 || error || !reply.body.data)
    throw new Error(`HTTP ${reply.status}: ${error?.extensions?.code ?? ""} ${error?.message ?? "no data"}`);
  return reply.body.data;
}

/** The end of every bench: drops its database unless `--keep` (then prints it). */
export async function dropUnlessKept(databaseUrl: string, keep: boolean): Promise<void> {
  if (keep) {
    console.log(`kept ${databaseUrl}`);
    return;
  }
  await dropDatabase(databaseUrl).catch((error: unknown) =>
    console.error(`could not drop ${databaseUrl}: ${String(error)}`),
  );
}

/** Runs a bench's main and exits with its outcome (open sockets of clients do not hold the process). */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/** Access tokens as the services started with `key` (subgraphsEnv's signingKeys) verify them: 15 min. */
export function benchTokenIssuer(key: SigningKeyJwk): AccessTokenIssuer {
  return createAccessTokenIssuer({
    keys: [key],
    issuer: "haiyvee",
    audience: "haiyvee-api",
    ttlSeconds: 900,
  });
}

/** What the four subgraph processes need to start side by side: databases, ports, signing key, event prefix, media dir. */
export function subgraphsEnv(options: {
  urls: Record<"users" | "discovery" | "media" | "chat", string>;
  ports: Record<"users" | "discovery" | "media" | "chat" | "files", number>;
  signingKeys: string;
  eventsPrefix: string;
  mediaDir: string;
}): Record<string, string> {
  const { urls, ports } = options;
  return {
    AUTH_SIGNING_KEYS: options.signingKeys,
    AUTH_JWKS_URL: `http://127.0.0.1:${ports.users}/.well-known/jwks.json`,
    EVENTS_PREFIX: options.eventsPrefix,
    USERS_DATABASE_URL: urls.users,
    DISCOVERY_DATABASE_URL: urls.discovery,
    MEDIA_DATABASE_URL: urls.media,
    CHAT_DATABASE_URL: urls.chat,
    USERS_PORT: String(ports.users),
    DISCOVERY_PORT: String(ports.discovery),
    MEDIA_PORT: String(ports.media),
    CHAT_PORT: String(ports.chat),
    MEDIA_FILES_PORT: String(ports.files),
    MEDIA_LOCAL_DIR: options.mediaDir,
  };
}
